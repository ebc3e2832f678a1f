"""The Query API's cast, on a live server with boto3 as the client.

- ``admin``: an IAM user with ``AdministratorAccess`` and an imported access key, the way a
  test suite using Portcullis as its IAM configures fixed credentials.
- ``limited``: a user whose only policy allows ``iam:GetUser`` and ``iam:ListUsers``, to see
  AWS's ``AccessDenied`` for everything else.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.config import Config

from api.testdouble import import_access_key
from audit.context import Actor
from identity.models import Account
from policies import services as policy_services

ADMIN_KEY_ID = "AKIAADMIN0000000001"
ADMIN_SECRET = "admin-secret-key-0000000000000000000000"
LIMITED_KEY_ID = "AKIALIMITED00000001"
LIMITED_SECRET = "limited-secret-key-00000000000000000000"
NO_RETRIES = Config(retries={"total_max_attempts": 1})


@dataclass(frozen=True)
class Keys:
    access_key_id: str
    secret_access_key: str
    session_token: str | None = None


def client(service: str, live_server: Any, keys: Keys, **kwargs: Any) -> Any:
    return boto3.client(
        service,
        endpoint_url=live_server.url,
        region_name=kwargs.pop("region_name", "us-east-1"),
        aws_access_key_id=keys.access_key_id,
        aws_secret_access_key=keys.secret_access_key,
        aws_session_token=keys.session_token,
        config=NO_RETRIES.merge(kwargs.pop("config", Config())),
        **kwargs,
    )


def session_keys(credentials: dict[str, Any]) -> Keys:
    return Keys(
        credentials["AccessKeyId"], credentials["SecretAccessKey"], credentials["SessionToken"]
    )


@pytest.fixture
def api_account(transactional_db: None, account: Account) -> Account:
    return account


@pytest.fixture
def admin(api_account: Account) -> Keys:
    import_access_key(
        account_id=api_account.id,
        user_name="admin",
        access_key_id=ADMIN_KEY_ID,
        secret_access_key=ADMIN_SECRET,
    )
    policy_services.attach_user_policy(
        account=api_account,
        user_name="admin",
        policy_arn="arn:aws:iam::aws:policy/AdministratorAccess",
        actor=Actor.system("test"),
    )
    return Keys(ADMIN_KEY_ID, ADMIN_SECRET)


@pytest.fixture
def limited(api_account: Account) -> Keys:
    import_access_key(
        account_id=api_account.id,
        user_name="limited",
        access_key_id=LIMITED_KEY_ID,
        secret_access_key=LIMITED_SECRET,
    )
    policy_services.put_user_policy(
        account=api_account,
        user_name="limited",
        policy_name="read-users",
        policy_document=(
            '{"Version":"2012-10-17","Statement":[{"Effect":"Allow",'
            '"Action":["iam:GetUser","iam:ListUsers"],"Resource":"*"}]}'
        ),
        actor=Actor.system("test"),
    )
    return Keys(LIMITED_KEY_ID, LIMITED_SECRET)


@pytest.fixture
def iam(live_server: Any, admin: Keys) -> Any:
    return client("iam", live_server, admin)


@pytest.fixture
def sts(live_server: Any, admin: Keys) -> Any:
    return client("sts", live_server, admin)


def totp_step() -> int:
    """The current RFC 6238 time step (30 s) on the server's clock (the live server runs in
    this process, so it shares ``identity.passwords.clock``)."""
    from identity.passwords import clock

    return int(clock.timestamp()) // 30


def totp_code(seed_b32: bytes | str, step: int) -> str:
    """The code an authenticator app shows for ``seed_b32`` at time step ``step``: RFC 6238
    computed by django-otp's TOTP, independently of the server's verification code."""
    from django_otp.oath import TOTP

    seed = seed_b32.decode("ascii") if isinstance(seed_b32, bytes) else seed_b32
    totp = TOTP(base64.b32decode(seed), step=30, digits=6)
    totp.time = step * 30
    return f"{totp.token():06d}"

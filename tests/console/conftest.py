"""The console's cast, on top of tests/conftest.py's accounts.

- ``admin``: an IAM user of Alice's company with AdministratorAccess — may do everything.
- ``reader``: an IAM user with IAMReadOnlyAccess — sees every page, changes nothing.
- ``nobody``: an IAM user with no policy at all — every console page is a 403 for them.
- ``outsider``: an administrator of the other company — must never see Alice's objects.
Sample objects in Alice's account: user ``alice`` (in group ``devs``), role ``deployer``,
customer policy ``ListThings``.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.test import Client

from identity import services as identity_services
from identity.models import Account, User
from identity.request_context import (
    AUTHENTICATED_AT_SESSION_KEY,
    MFA_AUTHENTICATED_AT_SESSION_KEY,
)
from policies import services as policy_services
from policies.models import ManagedPolicy
from tests.conftest import actor_for

ADMIN = "arn:aws:iam::aws:policy/AdministratorAccess"
READONLY = "arn:aws:iam::aws:policy/IAMReadOnlyAccess"
LIST_THINGS = """{
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "iam:ListUsers", "Resource": "*"}]
}"""


def make_user(account: Account, name: str, *policy_arns: str) -> User:
    root = User.objects.get(account=account, is_root=True)
    actor = actor_for(root)
    user = identity_services.create_user(account=account, user_name=name, actor=actor)
    for arn in policy_arns:
        policy_services.attach_user_policy(
            account=account, user_name=name, policy_arn=arn, actor=actor
        )
    return user


def sign_in(client: Client, user: User, *, mfa: bool = True) -> Client:
    """A console session as sign-in would leave it (the sign-in issue tests sign-in itself)."""
    client.force_login(user)
    session = client.session
    now = datetime.now(UTC).isoformat()
    session[AUTHENTICATED_AT_SESSION_KEY] = now
    if mfa:
        session[MFA_AUTHENTICATED_AT_SESSION_KEY] = now
    session.save()
    return client


@pytest.fixture
def admin(account: Account) -> User:
    return make_user(account, "admin", ADMIN)


@pytest.fixture
def reader(account: Account) -> User:
    return make_user(account, "reader", READONLY)


@pytest.fixture
def nobody(account: Account) -> User:
    return make_user(account, "nobody")


@pytest.fixture
def outsider(other_account: Account) -> User:
    return make_user(other_account, "outsider", ADMIN)


@pytest.fixture
def objects(account: Account, root_actor) -> dict[str, object]:
    user = identity_services.create_user(account=account, user_name="alice", actor=root_actor)
    group = identity_services.create_group(account=account, group_name="devs", actor=root_actor)
    identity_services.add_user_to_group(
        account=account, group_name="devs", user_name="alice", actor=root_actor
    )
    role = identity_services.create_role(
        account=account,
        role_name="deployer",
        assume_role_policy_document=(
            '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": '
            '{"AWS": "arn:aws:iam::111111111111:root"}, "Action": "sts:AssumeRole"}]}'
        ),
        actor=root_actor,
    )
    policy = policy_services.create_policy(
        account=account, policy_name="ListThings", policy_document=LIST_THINGS, actor=root_actor
    )
    return {"user": user, "group": group, "role": role, "policy": policy}


@pytest.fixture
def admin_client(client: Client, admin: User) -> Client:
    return sign_in(client, admin)


def builtin(name: str) -> ManagedPolicy:
    return ManagedPolicy.objects.get(account_id="aws", name=name)

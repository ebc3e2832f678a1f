"""The sign-in cast.

- ``alice``: an IAM user of account 111111111111 with a console password and no device; she
  has the built-in self-management policy, as AWS's "manage your own credentials" example.
- ``mallory``: another user of the same account, whose MFA device must never complete Alice's
  sign-in.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.core.cache import cache
from django_otp.oath import hotp

from audit.context import Actor
from identity import mfa, passwords, services
from identity.models import Account, MFADevice, User
from tests.conftest import actor_for

ALICE_PASSWORD = "Correct-horse-battery-9"
MALLORY_PASSWORD = "Staple-lantern-meadow-7"


@pytest.fixture(autouse=True)
def _fresh_clock_and_cache() -> Iterator[None]:
    """Every test starts at the real time with no per-address throttle left over."""
    passwords.clock.offset = timedelta(0)
    cache.clear()
    yield
    passwords.clock.offset = timedelta(0)
    cache.clear()


def make_user(account: Account, actor: Actor, name: str, password: str, **kwargs: bool) -> User:
    services.create_user(account=account, user_name=name, actor=actor)
    passwords.create_login_profile(
        account=account, user_name=name, password=password, actor=actor, **kwargs
    )
    return User.objects.get(account=account, name=name)


@pytest.fixture
def alice(account: Account, root_actor: Actor) -> User:
    return make_user(account, root_actor, "alice", ALICE_PASSWORD)


@pytest.fixture
def mallory(account: Account, root_actor: Actor) -> User:
    return make_user(account, root_actor, "mallory", MALLORY_PASSWORD)


def code_at(seed_b32: str, offset_steps: int = 0) -> str:
    """The RFC 6238 code of ``seed_b32`` at the server's clock, ``offset_steps`` away."""
    counter = int(passwords.clock.timestamp()) // 30 + offset_steps
    return f"{hotp(base64.b32decode(seed_b32), counter):06d}"


def enrol(user: User, actor: Actor | None = None) -> tuple[MFADevice, str]:
    """Give ``user`` an enabled device; returns it and its seed (as the person's app holds it)."""
    actor = actor or actor_for(user)
    created = mfa.create_virtual_mfa_device(
        account=user.account, virtual_mfa_device_name=f"{user.name}-phone", actor=actor
    )
    seed = created.base32_string_seed
    device = mfa.enable_mfa_device(
        account=user.account,
        user_name=user.name,
        serial_number=created.serial_number,
        authentication_code1=code_at(seed, -1),
        authentication_code2=code_at(seed, 0),
        actor=actor,
        user=user,
    )
    return device, seed


SELF_MANAGE_ARN = "arn:aws:iam::aws:policy/PortcullisSelfManageCredentialsWithMFA"


@pytest.fixture
def self_managing_alice(alice: User, account: Account, root_actor: Actor, settings) -> User:
    """Alice with AWS's "manage your own credentials, MFA first" example policy attached.

    Decisions are read from PostgreSQL here (no propagation worker runs in these tests, so
    the Redis store never learns of the attachment); propagation has its own tests.
    """
    settings.REDIS_URL = ""
    from policies.services import attach_user_policy

    attach_user_policy(
        account=account, user_name="alice", policy_arn=SELF_MANAGE_ARN, actor=root_actor
    )
    return alice

"""The cast every test can use.

- ``account``: Alice's company, account 111111111111, with its root user (``root``). The root
  user can do everything, as in AWS.
- ``other_account``: a second company, 222222222222, whose people must never see the first's.
"""

from __future__ import annotations

import pytest

from audit.context import Actor, RequestMeta
from identity.bootstrap import create_account
from identity.models import Account, User
from policies.builtin import install_builtin_policies

# The real Celery worker fixture (``celery_worker``), shared by every app's tests.
pytest_plugins = ["tests.worker"]


@pytest.fixture
def builtin_policies(db: None) -> None:
    install_builtin_policies()


@pytest.fixture
def account(db: None, builtin_policies: None) -> Account:
    return create_account(
        root_email="root@alice.example", account_id="111111111111", password="Root-password-1!"
    ).account


@pytest.fixture
def root(account: Account) -> User:
    return User.objects.get(account=account, is_root=True)


@pytest.fixture
def root_actor(root: User) -> Actor:
    return actor_for(root)


@pytest.fixture
def other_account(db: None, builtin_policies: None) -> Account:
    return create_account(
        root_email="root@bob.example", account_id="222222222222", password="Root-password-2!"
    ).account


def actor_for(user: User, *, source_ip: str = "192.0.2.10") -> Actor:
    """An actor for a signed-in user, as the console or API would build it."""
    return Actor(
        arn=user.arn,
        account_id=user.account_id,
        kind="root" if user.is_root else "user",
        user=user,
        meta=RequestMeta(source_ip=source_ip, user_agent="pytest"),
    )

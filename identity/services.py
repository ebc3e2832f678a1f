"""Writes to the identity model, one IAM action each.

Every function is named after the IAM action it performs, takes keyword-only arguments and an
``actor``, runs in one transaction, and writes its audit event (and, where a decision can
change, its propagation outbox row) inside that transaction. Callers — the console, the Query
API, tasks and management commands — authorize *before* calling; services validate input and
enforce IAM's quotas and conflicts with IAM's error codes and messages.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.db import IntegrityError, transaction

from audit.context import Actor
from audit.services import record_event
from identity import naming, quotas
from identity.errors import DeleteConflict, EntityAlreadyExists, LimitExceeded, NoSuchEntity
from identity.models import Account, User
from policies.outbox import Kind, record_change


def user_snapshot(user: User) -> dict[str, Any]:
    """What the audit trail records of a user: never the password hash."""
    return {
        "UserName": user.name,
        "Path": user.path,
        "UserId": user.unique_id,
        "Arn": user.arn,
        "Tags": user.tags,
        "PermissionsBoundary": user.permissions_boundary.arn if user.permissions_boundary else None,
        "LoginProfile": user.has_login_profile,
    }


def get_user(*, account: Account, user_name: str) -> User:
    """The IAM user named ``user_name`` (case-insensitively), or ``NoSuchEntity``."""
    user = (
        User.objects.filter(account=account, is_root=False, name__iexact=user_name)
        .select_related("permissions_boundary")
        .first()
    )
    if user is None:
        raise NoSuchEntity(f"The user with name {user_name} cannot be found.")
    return user


def create_user(
    *,
    account: Account,
    user_name: str,
    path: str = "/",
    tags: Sequence[Mapping[str, str]] = (),
    actor: Actor,
) -> User:
    """``iam:CreateUser``: a user with no credentials and no permissions."""
    naming.validate_name(user_name, field="userName", max_length=64)
    naming.validate_path(path)
    clean_tags = naming.validate_tags(tags)
    with transaction.atomic():
        # Lock the account row so concurrent creates cannot both pass the quota check.
        Account.objects.select_for_update().filter(pk=account.pk).exists()
        if User.objects.filter(account=account, is_root=False).count() >= quotas.USERS_PER_ACCOUNT:
            raise LimitExceeded(
                f"Cannot exceed quota for UsersPerAccount: {quotas.USERS_PER_ACCOUNT}"
            )
        if User.objects.filter(account=account, is_root=False, name__iexact=user_name).exists():
            raise EntityAlreadyExists(f"User with name {user_name} already exists.")
        user = User(
            account=account,
            name=user_name,
            path=path,
            unique_id=naming.new_unique_id(naming.USER_ID_PREFIX),
            tags=clean_tags,
        )
        user.set_unusable_password()
        try:
            with transaction.atomic():
                user.save(force_insert=True)
        except IntegrityError as exc:
            raise EntityAlreadyExists(f"User with name {user_name} already exists.") from exc
        record_change(kind=Kind.USER, account_id=account.id, entity_id=user.unique_id)
        record_event(
            actor=actor,
            action="iam:CreateUser",
            resource_arn=user.arn,
            parameters={"UserName": user_name, "Path": path, "Tags": clean_tags},
            after=user_snapshot(user),
        )
    return user


def delete_user(*, account: Account, user_name: str, actor: Actor) -> None:
    """``iam:DeleteUser``. As in IAM, a user with a password, access keys, MFA devices, group
    memberships, attached or inline policies cannot be deleted: ``DeleteConflict``."""
    with transaction.atomic():
        user = get_user(account=account, user_name=user_name)
        user = User.objects.select_for_update().get(pk=user.pk)
        if (
            user.has_login_profile
            or user.access_keys.exists()
            or user.mfa_devices.exists()
            or user.memberships.exists()
            or user.policy_attachments.exists()
            or user.inline_policies.exists()
        ):
            raise DeleteConflict("Cannot delete entity, must remove referenced objects first.")
        before = user_snapshot(user)
        arn = user.arn
        record_change(
            kind=Kind.USER, account_id=account.id, entity_id=user.unique_id, priority=True
        )
        user.delete()
        record_event(
            actor=actor,
            action="iam:DeleteUser",
            resource_arn=arn,
            parameters={"UserName": user_name},
            before=before,
        )

"""Writes to the identity model, one IAM action each.

Every function is named after the IAM action it performs, takes keyword-only arguments and an
``actor``, runs in one transaction, and writes its audit event (and, where a decision can
change, its propagation outbox row) inside that transaction. Callers — the console, the Query
API, tasks and management commands — authorize *before* calling; services validate input and
enforce IAM's quotas and conflicts with IAM's error codes and messages.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from audit.context import Actor
from audit.services import record_event
from identity import crypto, mfa, naming, quotas
from identity.errors import (
    AccessDenied,
    DeleteConflict,
    EntityAlreadyExists,
    LimitExceeded,
    NoSuchEntity,
    ValidationError,
)
from identity.models import (
    AccessKey,
    Account,
    Group,
    GroupMembership,
    InstanceProfile,
    MFADevice,
    Role,
    User,
)
from identity.selectors import (
    access_key_by_id,
    group_by_name,
    instance_profile_by_name,
    role_by_name,
    user_by_name,
)
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
    permissions_boundary: str | None = None,
    actor: Actor,
) -> User:
    """``iam:CreateUser``: a user with no credentials and no permissions (and, when
    ``permissions_boundary`` names a managed policy, that boundary)."""
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
        boundary = None
        if permissions_boundary:
            boundary = _boundary_policy(account=account, policy_arn=permissions_boundary)
        user = User(
            account=account,
            name=user_name,
            path=path,
            unique_id=naming.new_unique_id(naming.USER_ID_PREFIX),
            tags=clean_tags,
            permissions_boundary=boundary,
        )
        user.set_unusable_password()
        try:
            with transaction.atomic():
                user.save(force_insert=True)
        except IntegrityError as exc:
            raise EntityAlreadyExists(f"User with name {user_name} already exists.") from exc
        if boundary is not None:
            _adjust_boundary_usage(boundary, +1)
        record_change(kind=Kind.USER, account_id=account.id, entity_id=user.unique_id)
        record_event(
            actor=actor,
            action="iam:CreateUser",
            resource_arn=user.arn,
            parameters={
                "UserName": user_name,
                "Path": path,
                "Tags": clean_tags,
                "PermissionsBoundary": permissions_boundary,
            },
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
        if user.permissions_boundary_id is not None:
            _adjust_boundary_usage(user.permissions_boundary, -1)
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


# --- shared helpers ----------------------------------------------------------------------


def _lock_account(account: Account) -> None:
    """Serialise account-wide quota checks: concurrent creates cannot both pass the count."""
    Account.objects.select_for_update().filter(pk=account.pk).exists()


def _lock(instance: Any) -> Any:
    """Re-read ``instance`` with its row locked until the transaction ends."""
    return type(instance).objects.select_for_update().get(pk=instance.pk)


def _validation(value: Any, field: str, constraint: str) -> ValidationError:
    return ValidationError(
        f"1 validation error detected: Value '{value}' at '{field}' failed to satisfy "
        f"constraint: {constraint}"
    )


def _tags_event(
    *,
    actor: Actor,
    action: str,
    arn: str,
    parameters: Mapping[str, Any],
    before: list[dict[str, str]],
    after: list[dict[str, str]],
) -> None:
    record_event(
        actor=actor,
        action=action,
        resource_arn=arn,
        parameters=parameters,
        before={"Tags": before},
        after={"Tags": after},
    )


def _boundary_policy(*, account: Account, policy_arn: str) -> Any:
    """The managed policy to use as a permissions boundary, row-locked (its usage count
    changes). Only a managed policy can be a boundary (IAM User Guide, "Permissions
    boundaries for IAM entities")."""
    from policies.selectors import policy_by_arn

    try:
        naming.parse_policy_arn(policy_arn)
    except Exception as exc:
        raise _validation(
            policy_arn, "permissionsBoundary", "Member must have length greater than or equal to 20"
        ) from exc
    return policy_by_arn(account=account, policy_arn=policy_arn, for_update=True)


def _adjust_boundary_usage(policy: Any, delta: int) -> None:
    type(policy).objects.filter(pk=policy.pk).update(
        permissions_boundary_usage_count=F("permissions_boundary_usage_count") + delta
    )


# --- users -------------------------------------------------------------------------------


def update_user(
    *,
    account: Account,
    user_name: str,
    new_user_name: str | None = None,
    new_path: str | None = None,
    actor: Actor,
) -> User:
    """``iam:UpdateUser``: rename and/or move a user. Its unique id stays, its ARN changes, so
    policies naming the old ARN stop matching (IAM User Guide, "Renaming an IAM user")."""
    if new_user_name is not None:
        naming.validate_name(new_user_name, field="newUserName", max_length=64)
    if new_path is not None:
        naming.validate_path(new_path, field="newPath")
    with transaction.atomic():
        user = user_by_name(account=account, user_name=user_name, for_update=True)
        before = user_snapshot(user)
        fields = []
        if new_user_name is not None and new_user_name != user.name:
            clash = (
                User.objects.filter(account=account, is_root=False, name__iexact=new_user_name)
                .exclude(pk=user.pk)
                .exists()
            )
            if clash:
                raise EntityAlreadyExists(f"User with name {new_user_name} already exists.")
            user.name = new_user_name
            fields.append("name")
        if new_path is not None and new_path != user.path:
            user.path = new_path
            fields.append("path")
        if fields:
            try:
                with transaction.atomic():
                    user.save(update_fields=fields)
            except IntegrityError as exc:
                raise EntityAlreadyExists(
                    f"User with name {new_user_name} already exists."
                ) from exc
            record_change(kind=Kind.USER, account_id=account.id, entity_id=user.unique_id)
        record_event(
            actor=actor,
            action="iam:UpdateUser",
            resource_arn=user.arn,
            parameters={"UserName": user_name, "NewUserName": new_user_name, "NewPath": new_path},
            before=before,
            after=user_snapshot(user),
        )
    return user


def tag_user(
    *, account: Account, user_name: str, tags: Sequence[Mapping[str, str]], actor: Actor
) -> User:
    """``iam:TagUser``: add tags, replacing the value of a key the user already has. Tags are
    visible to policies as ``aws:PrincipalTag/*``, so the change propagates."""
    naming.validate_tags(tags)
    with transaction.atomic():
        user = user_by_name(account=account, user_name=user_name, for_update=True)
        before = list(user.tags)
        user.tags = naming.merge_tags(user.tags, tags)
        user.save(update_fields=["tags"])
        record_change(kind=Kind.USER, account_id=account.id, entity_id=user.unique_id)
        _tags_event(
            actor=actor,
            action="iam:TagUser",
            arn=user.arn,
            parameters={"UserName": user_name, "Tags": list(tags)},
            before=before,
            after=user.tags,
        )
    return user


def untag_user(*, account: Account, user_name: str, tag_keys: Sequence[str], actor: Actor) -> User:
    """``iam:UntagUser``: remove tags by key (case-insensitive); absent keys are ignored."""
    keys = naming.validate_tag_keys(tag_keys)
    with transaction.atomic():
        user = user_by_name(account=account, user_name=user_name, for_update=True)
        before = list(user.tags)
        user.tags = naming.remove_tags(user.tags, keys)
        user.save(update_fields=["tags"])
        record_change(kind=Kind.USER, account_id=account.id, entity_id=user.unique_id)
        _tags_event(
            actor=actor,
            action="iam:UntagUser",
            arn=user.arn,
            parameters={"UserName": user_name, "TagKeys": keys},
            before=before,
            after=user.tags,
        )
    return user


def put_user_permissions_boundary(
    *, account: Account, user_name: str, permissions_boundary: str, actor: Actor
) -> User:
    """``iam:PutUserPermissionsBoundary``: set or replace the user's boundary."""
    with transaction.atomic():
        user = user_by_name(account=account, user_name=user_name, for_update=True)
        policy = _boundary_policy(account=account, policy_arn=permissions_boundary)
        before = user_snapshot(user)
        if user.permissions_boundary_id != policy.pk:
            if user.permissions_boundary is not None:
                _adjust_boundary_usage(user.permissions_boundary, -1)
            _adjust_boundary_usage(policy, +1)
            user.permissions_boundary = policy
            user.save(update_fields=["permissions_boundary"])
            record_change(kind=Kind.USER, account_id=account.id, entity_id=user.unique_id)
        record_event(
            actor=actor,
            action="iam:PutUserPermissionsBoundary",
            resource_arn=user.arn,
            parameters={"UserName": user_name, "PermissionsBoundary": permissions_boundary},
            before=before,
            after=user_snapshot(user),
        )
    return user


def delete_user_permissions_boundary(*, account: Account, user_name: str, actor: Actor) -> User:
    """``iam:DeleteUserPermissionsBoundary``."""
    with transaction.atomic():
        user = user_by_name(account=account, user_name=user_name, for_update=True)
        if user.permissions_boundary is None:
            raise NoSuchEntity(f"The user with name {user_name} has no permissions boundary.")
        before = user_snapshot(user)
        _adjust_boundary_usage(user.permissions_boundary, -1)
        user.permissions_boundary = None
        user.save(update_fields=["permissions_boundary"])
        record_change(kind=Kind.USER, account_id=account.id, entity_id=user.unique_id)
        record_event(
            actor=actor,
            action="iam:DeleteUserPermissionsBoundary",
            resource_arn=user.arn,
            parameters={"UserName": user_name},
            before=before,
            after=user_snapshot(user),
        )
    return user


# --- groups ------------------------------------------------------------------------------


def group_snapshot(group: Group) -> dict[str, Any]:
    return {
        "GroupName": group.name,
        "Path": group.path,
        "GroupId": group.unique_id,
        "Arn": group.arn,
    }


def create_group(*, account: Account, group_name: str, path: str = "/", actor: Actor) -> Group:
    """``iam:CreateGroup``."""
    naming.validate_name(group_name, field="groupName", max_length=128)
    naming.validate_path(path)
    with transaction.atomic():
        _lock_account(account)
        if Group.objects.filter(account=account).count() >= quotas.GROUPS_PER_ACCOUNT:
            raise LimitExceeded(
                f"Cannot exceed quota for GroupsPerAccount: {quotas.GROUPS_PER_ACCOUNT}"
            )
        if Group.objects.filter(account=account, name__iexact=group_name).exists():
            raise EntityAlreadyExists(f"Group with name {group_name} already exists.")
        group = Group(
            account=account,
            name=group_name,
            path=path,
            unique_id=naming.new_unique_id(naming.GROUP_ID_PREFIX),
        )
        try:
            with transaction.atomic():
                group.save(force_insert=True)
        except IntegrityError as exc:
            raise EntityAlreadyExists(f"Group with name {group_name} already exists.") from exc
        record_event(
            actor=actor,
            action="iam:CreateGroup",
            resource_arn=group.arn,
            parameters={"GroupName": group_name, "Path": path},
            after=group_snapshot(group),
        )
    return group


def update_group(
    *,
    account: Account,
    group_name: str,
    new_group_name: str | None = None,
    new_path: str | None = None,
    actor: Actor,
) -> Group:
    """``iam:UpdateGroup``: rename and/or move a group. Its members' policies are unchanged
    but policies naming the group's ARN change meaning, so the group propagates."""
    if new_group_name is not None:
        naming.validate_name(new_group_name, field="newGroupName", max_length=128)
    if new_path is not None:
        naming.validate_path(new_path, field="newPath")
    with transaction.atomic():
        group = group_by_name(account=account, group_name=group_name, for_update=True)
        before = group_snapshot(group)
        fields = []
        if new_group_name is not None and new_group_name != group.name:
            clash = (
                Group.objects.filter(account=account, name__iexact=new_group_name)
                .exclude(pk=group.pk)
                .exists()
            )
            if clash:
                raise EntityAlreadyExists(f"Group with name {new_group_name} already exists.")
            group.name = new_group_name
            fields.append("name")
        if new_path is not None and new_path != group.path:
            group.path = new_path
            fields.append("path")
        if fields:
            try:
                with transaction.atomic():
                    group.save(update_fields=fields)
            except IntegrityError as exc:
                raise EntityAlreadyExists(
                    f"Group with name {new_group_name} already exists."
                ) from exc
            record_change(kind=Kind.GROUP, account_id=account.id, entity_id=group.unique_id)
        record_event(
            actor=actor,
            action="iam:UpdateGroup",
            resource_arn=group.arn,
            parameters={
                "GroupName": group_name,
                "NewGroupName": new_group_name,
                "NewPath": new_path,
            },
            before=before,
            after=group_snapshot(group),
        )
    return group


def delete_group(*, account: Account, group_name: str, actor: Actor) -> None:
    """``iam:DeleteGroup``. As in IAM, a group with members, attached or inline policies
    cannot be deleted (``DeleteConflict``)."""
    with transaction.atomic():
        group = group_by_name(account=account, group_name=group_name, for_update=True)
        if group.memberships.exists():
            raise DeleteConflict("Cannot delete entity, must remove users from group first.")
        if group.policy_attachments.exists():
            raise DeleteConflict("Cannot delete entity, must detach all policies first.")
        if group.inline_policies.exists():
            raise DeleteConflict("Cannot delete entity, must delete policies first.")
        before = group_snapshot(group)
        arn = group.arn
        group.delete()
        record_event(
            actor=actor,
            action="iam:DeleteGroup",
            resource_arn=arn,
            parameters={"GroupName": group_name},
            before=before,
        )


def add_user_to_group(*, account: Account, group_name: str, user_name: str, actor: Actor) -> None:
    """``iam:AddUserToGroup``. A user belongs to at most 10 groups; the user row is locked so
    two concurrent adds cannot both pass the count. Adding a member again changes nothing."""
    with transaction.atomic():
        user = user_by_name(account=account, user_name=user_name, for_update=True)
        group = group_by_name(account=account, group_name=group_name)
        already = GroupMembership.objects.filter(group=group, user=user).exists()
        if not already:
            if GroupMembership.objects.filter(user=user).count() >= quotas.GROUPS_PER_USER:
                raise LimitExceeded(
                    f"Cannot exceed quota for GroupsPerUser: {quotas.GROUPS_PER_USER}"
                )
            GroupMembership.objects.create(group=group, user=user)
            record_change(kind=Kind.USER, account_id=account.id, entity_id=user.unique_id)
        record_event(
            actor=actor,
            action="iam:AddUserToGroup",
            resource_arn=group.arn,
            parameters={"GroupName": group_name, "UserName": user_name},
            before={"Member": already},
            after={"Member": True, "UserArn": user.arn},
        )


def remove_user_from_group(
    *, account: Account, group_name: str, user_name: str, actor: Actor
) -> None:
    """``iam:RemoveUserFromGroup``: access through the group's policies ends, so the change
    propagates first."""
    with transaction.atomic():
        user = user_by_name(account=account, user_name=user_name, for_update=True)
        group = group_by_name(account=account, group_name=group_name)
        deleted, _ = GroupMembership.objects.filter(group=group, user=user).delete()
        if not deleted:
            raise NoSuchEntity(f"The user with name {user_name} cannot be found.")
        record_change(
            kind=Kind.USER, account_id=account.id, entity_id=user.unique_id, priority=True
        )
        record_event(
            actor=actor,
            action="iam:RemoveUserFromGroup",
            resource_arn=group.arn,
            parameters={"GroupName": group_name, "UserName": user_name},
            before={"Member": True, "UserArn": user.arn},
            after={"Member": False},
        )


# --- roles -------------------------------------------------------------------------------

_DESCRIPTION_PATTERN = r"[\u0009\u000A\u000D\u0020-\u007E\u00A1-\u00FF]*"


def role_snapshot(role: Role) -> dict[str, Any]:
    return {
        "RoleName": role.name,
        "Path": role.path,
        "RoleId": role.unique_id,
        "Arn": role.arn,
        "Description": role.description,
        "MaxSessionDuration": role.max_session_duration,
        "AssumeRolePolicyDocument": role.assume_role_policy_document,
        "Tags": role.tags,
        "PermissionsBoundary": role.permissions_boundary.arn if role.permissions_boundary else None,
    }


def _validate_description(description: str) -> str:
    """A role description: up to 1,000 characters of IAM's allowed set (IAM API Reference,
    CreateRole ``Description``)."""
    if len(description) > 1000:
        raise _validation(
            description, "description", "Member must have length less than or equal to 1000"
        )
    if any(
        not (ch in "\t\n\r" or 0x20 <= ord(ch) <= 0x7E or 0xA1 <= ord(ch) <= 0xFF)
        for ch in description
    ):
        raise _validation(
            description,
            "description",
            f"Member must satisfy regular expression pattern: {_DESCRIPTION_PATTERN}",
        )
    return description


def _validate_max_session_duration(seconds: int) -> int:
    """3,600–43,200 seconds (IAM API Reference, CreateRole ``MaxSessionDuration``)."""
    if seconds < quotas.ROLE_MIN_SESSION_DURATION:
        raise _validation(
            seconds,
            "maxSessionDuration",
            f"Member must have value greater than or equal to {quotas.ROLE_MIN_SESSION_DURATION}",
        )
    if seconds > quotas.ROLE_MAX_SESSION_DURATION:
        raise _validation(
            seconds,
            "maxSessionDuration",
            f"Member must have value less than or equal to {quotas.ROLE_MAX_SESSION_DURATION}",
        )
    return seconds


def validate_trust_policy(document: str) -> str:
    """A role trust policy: at most 2,048 non-whitespace characters (IAM's ``ACLSizePerRole``
    quota) and a document the engine accepts as a trust policy; ``MalformedPolicyDocument``
    with AWS's message otherwise."""
    from policies.services import parse_document

    if quotas.policy_size(document) > quotas.ROLE_TRUST_POLICY_SIZE:
        raise LimitExceeded(
            f"Cannot exceed quota for ACLSizePerRole: {quotas.ROLE_TRUST_POLICY_SIZE}"
        )
    parse_document(document, trust=True)
    return document


def create_role(
    *,
    account: Account,
    role_name: str,
    assume_role_policy_document: str,
    path: str = "/",
    description: str = "",
    max_session_duration: int = 3600,
    permissions_boundary: str | None = None,
    tags: Sequence[Mapping[str, str]] = (),
    actor: Actor,
) -> Role:
    """``iam:CreateRole``: a role that principals named by its trust policy may assume."""
    naming.validate_name(role_name, field="roleName", max_length=64)
    naming.validate_path(path)
    _validate_description(description)
    _validate_max_session_duration(max_session_duration)
    clean_tags = naming.validate_tags(tags)
    validate_trust_policy(assume_role_policy_document)
    with transaction.atomic():
        _lock_account(account)
        if Role.objects.filter(account=account).count() >= quotas.ROLES_PER_ACCOUNT:
            raise LimitExceeded(
                f"Cannot exceed quota for RolesPerAccount: {quotas.ROLES_PER_ACCOUNT}"
            )
        if Role.objects.filter(account=account, name__iexact=role_name).exists():
            raise EntityAlreadyExists(f"Role with name {role_name} already exists.")
        boundary = None
        if permissions_boundary:
            boundary = _boundary_policy(account=account, policy_arn=permissions_boundary)
        role = Role(
            account=account,
            name=role_name,
            path=path,
            unique_id=naming.new_unique_id(naming.ROLE_ID_PREFIX),
            description=description,
            assume_role_policy_document=assume_role_policy_document,
            max_session_duration=max_session_duration,
            tags=clean_tags,
            permissions_boundary=boundary,
        )
        try:
            with transaction.atomic():
                role.save(force_insert=True)
        except IntegrityError as exc:
            raise EntityAlreadyExists(f"Role with name {role_name} already exists.") from exc
        if boundary is not None:
            _adjust_boundary_usage(boundary, +1)
        record_change(kind=Kind.ROLE, account_id=account.id, entity_id=role.unique_id)
        record_event(
            actor=actor,
            action="iam:CreateRole",
            resource_arn=role.arn,
            parameters={
                "RoleName": role_name,
                "Path": path,
                "AssumeRolePolicyDocument": assume_role_policy_document,
                "Description": description,
                "MaxSessionDuration": max_session_duration,
                "PermissionsBoundary": permissions_boundary,
                "Tags": clean_tags,
            },
            after=role_snapshot(role),
        )
    return role


def update_role(
    *,
    account: Account,
    role_name: str,
    description: str | None = None,
    max_session_duration: int | None = None,
    actor: Actor,
) -> Role:
    """``iam:UpdateRole``: description and/or maximum session duration. Sessions already
    issued keep their expiry (IAM User Guide, "Modifying a role")."""
    if description is not None:
        _validate_description(description)
    if max_session_duration is not None:
        _validate_max_session_duration(max_session_duration)
    with transaction.atomic():
        role = role_by_name(account=account, role_name=role_name, for_update=True)
        before = role_snapshot(role)
        fields = []
        if description is not None:
            role.description = description
            fields.append("description")
        if max_session_duration is not None:
            role.max_session_duration = max_session_duration
            fields.append("max_session_duration")
        if fields:
            role.save(update_fields=fields)
        record_event(
            actor=actor,
            action="iam:UpdateRole",
            resource_arn=role.arn,
            parameters={
                "RoleName": role_name,
                "Description": description,
                "MaxSessionDuration": max_session_duration,
            },
            before=before,
            after=role_snapshot(role),
        )
    return role


def update_role_description(
    *, account: Account, role_name: str, description: str, actor: Actor
) -> Role:
    """``iam:UpdateRoleDescription``."""
    _validate_description(description)
    with transaction.atomic():
        role = role_by_name(account=account, role_name=role_name, for_update=True)
        before = role_snapshot(role)
        role.description = description
        role.save(update_fields=["description"])
        record_event(
            actor=actor,
            action="iam:UpdateRoleDescription",
            resource_arn=role.arn,
            parameters={"RoleName": role_name, "Description": description},
            before=before,
            after=role_snapshot(role),
        )
    return role


def update_assume_role_policy(
    *, account: Account, role_name: str, policy_document: str, actor: Actor
) -> Role:
    """``iam:UpdateAssumeRolePolicy``: replace the trust policy (who may assume the role)."""
    validate_trust_policy(policy_document)
    with transaction.atomic():
        role = role_by_name(account=account, role_name=role_name, for_update=True)
        before = role_snapshot(role)
        role.assume_role_policy_document = policy_document
        role.save(update_fields=["assume_role_policy_document"])
        record_change(kind=Kind.ROLE, account_id=account.id, entity_id=role.unique_id)
        record_event(
            actor=actor,
            action="iam:UpdateAssumeRolePolicy",
            resource_arn=role.arn,
            parameters={"RoleName": role_name, "PolicyDocument": policy_document},
            before=before,
            after=role_snapshot(role),
        )
    return role


def delete_role(*, account: Account, role_name: str, actor: Actor) -> None:
    """``iam:DeleteRole``. As in IAM, a role with attached or inline policies or in an
    instance profile cannot be deleted (``DeleteConflict``); its STS sessions end with it."""
    with transaction.atomic():
        role = role_by_name(account=account, role_name=role_name, for_update=True)
        if role.instance_profiles.exists():
            raise DeleteConflict(
                "Cannot delete entity, must remove roles from instance profile first."
            )
        if role.policy_attachments.exists():
            raise DeleteConflict("Cannot delete entity, must detach all policies first.")
        if role.inline_policies.exists():
            raise DeleteConflict("Cannot delete entity, must delete policies first.")
        before = role_snapshot(role)
        arn = role.arn
        if role.permissions_boundary is not None:
            _adjust_boundary_usage(role.permissions_boundary, -1)
        record_change(
            kind=Kind.ROLE, account_id=account.id, entity_id=role.unique_id, priority=True
        )
        role.delete()
        record_event(
            actor=actor,
            action="iam:DeleteRole",
            resource_arn=arn,
            parameters={"RoleName": role_name},
            before=before,
        )


def tag_role(
    *, account: Account, role_name: str, tags: Sequence[Mapping[str, str]], actor: Actor
) -> Role:
    """``iam:TagRole`` (role tags are the session's ``aws:PrincipalTag/*``)."""
    naming.validate_tags(tags)
    with transaction.atomic():
        role = role_by_name(account=account, role_name=role_name, for_update=True)
        before = list(role.tags)
        role.tags = naming.merge_tags(role.tags, tags)
        role.save(update_fields=["tags"])
        record_change(kind=Kind.ROLE, account_id=account.id, entity_id=role.unique_id)
        _tags_event(
            actor=actor,
            action="iam:TagRole",
            arn=role.arn,
            parameters={"RoleName": role_name, "Tags": list(tags)},
            before=before,
            after=role.tags,
        )
    return role


def untag_role(*, account: Account, role_name: str, tag_keys: Sequence[str], actor: Actor) -> Role:
    """``iam:UntagRole``."""
    keys = naming.validate_tag_keys(tag_keys)
    with transaction.atomic():
        role = role_by_name(account=account, role_name=role_name, for_update=True)
        before = list(role.tags)
        role.tags = naming.remove_tags(role.tags, keys)
        role.save(update_fields=["tags"])
        record_change(kind=Kind.ROLE, account_id=account.id, entity_id=role.unique_id)
        _tags_event(
            actor=actor,
            action="iam:UntagRole",
            arn=role.arn,
            parameters={"RoleName": role_name, "TagKeys": keys},
            before=before,
            after=role.tags,
        )
    return role


def put_role_permissions_boundary(
    *, account: Account, role_name: str, permissions_boundary: str, actor: Actor
) -> Role:
    """``iam:PutRolePermissionsBoundary``."""
    with transaction.atomic():
        role = role_by_name(account=account, role_name=role_name, for_update=True)
        policy = _boundary_policy(account=account, policy_arn=permissions_boundary)
        before = role_snapshot(role)
        if role.permissions_boundary_id != policy.pk:
            if role.permissions_boundary is not None:
                _adjust_boundary_usage(role.permissions_boundary, -1)
            _adjust_boundary_usage(policy, +1)
            role.permissions_boundary = policy
            role.save(update_fields=["permissions_boundary"])
            record_change(kind=Kind.ROLE, account_id=account.id, entity_id=role.unique_id)
        record_event(
            actor=actor,
            action="iam:PutRolePermissionsBoundary",
            resource_arn=role.arn,
            parameters={"RoleName": role_name, "PermissionsBoundary": permissions_boundary},
            before=before,
            after=role_snapshot(role),
        )
    return role


def delete_role_permissions_boundary(*, account: Account, role_name: str, actor: Actor) -> Role:
    """``iam:DeleteRolePermissionsBoundary``."""
    with transaction.atomic():
        role = role_by_name(account=account, role_name=role_name, for_update=True)
        if role.permissions_boundary is None:
            raise NoSuchEntity(f"The role with name {role_name} has no permissions boundary.")
        before = role_snapshot(role)
        _adjust_boundary_usage(role.permissions_boundary, -1)
        role.permissions_boundary = None
        role.save(update_fields=["permissions_boundary"])
        record_change(kind=Kind.ROLE, account_id=account.id, entity_id=role.unique_id)
        record_event(
            actor=actor,
            action="iam:DeleteRolePermissionsBoundary",
            resource_arn=role.arn,
            parameters={"RoleName": role_name},
            before=before,
            after=role_snapshot(role),
        )
    return role


# --- instance profiles -------------------------------------------------------------------


def instance_profile_snapshot(profile: InstanceProfile) -> dict[str, Any]:
    return {
        "InstanceProfileName": profile.name,
        "Path": profile.path,
        "InstanceProfileId": profile.unique_id,
        "Arn": profile.arn,
        "Roles": [profile.role.arn] if profile.role else [],
        "Tags": profile.tags,
    }


def create_instance_profile(
    *,
    account: Account,
    instance_profile_name: str,
    path: str = "/",
    tags: Sequence[Mapping[str, str]] = (),
    actor: Actor,
) -> InstanceProfile:
    """``iam:CreateInstanceProfile``."""
    naming.validate_name(instance_profile_name, field="instanceProfileName", max_length=128)
    naming.validate_path(path)
    clean_tags = naming.validate_tags(tags)
    exists = f"Instance Profile {instance_profile_name} already exists."
    with transaction.atomic():
        _lock_account(account)
        count = InstanceProfile.objects.filter(account=account).count()
        if count >= quotas.INSTANCE_PROFILES_PER_ACCOUNT:
            raise LimitExceeded(
                "Cannot exceed quota for InstanceProfilesPerAccount: "
                f"{quotas.INSTANCE_PROFILES_PER_ACCOUNT}"
            )
        if InstanceProfile.objects.filter(
            account=account, name__iexact=instance_profile_name
        ).exists():
            raise EntityAlreadyExists(exists)
        profile = InstanceProfile(
            account=account,
            name=instance_profile_name,
            path=path,
            unique_id=naming.new_unique_id(naming.INSTANCE_PROFILE_ID_PREFIX),
            tags=clean_tags,
        )
        try:
            with transaction.atomic():
                profile.save(force_insert=True)
        except IntegrityError as exc:
            raise EntityAlreadyExists(exists) from exc
        record_event(
            actor=actor,
            action="iam:CreateInstanceProfile",
            resource_arn=profile.arn,
            parameters={
                "InstanceProfileName": instance_profile_name,
                "Path": path,
                "Tags": clean_tags,
            },
            after=instance_profile_snapshot(profile),
        )
    return profile


def delete_instance_profile(*, account: Account, instance_profile_name: str, actor: Actor) -> None:
    """``iam:DeleteInstanceProfile``: ``DeleteConflict`` while it holds a role."""
    with transaction.atomic():
        profile = instance_profile_by_name(
            account=account, instance_profile_name=instance_profile_name, for_update=True
        )
        if profile.role_id is not None:
            raise DeleteConflict(
                "Cannot delete entity, must remove roles from instance profile first."
            )
        before = instance_profile_snapshot(profile)
        arn = profile.arn
        profile.delete()
        record_event(
            actor=actor,
            action="iam:DeleteInstanceProfile",
            resource_arn=arn,
            parameters={"InstanceProfileName": instance_profile_name},
            before=before,
        )


def add_role_to_instance_profile(
    *, account: Account, instance_profile_name: str, role_name: str, actor: Actor
) -> InstanceProfile:
    """``iam:AddRoleToInstanceProfile``: an instance profile holds one role (IAM quota
    ``InstanceSessionsPerInstanceProfile``); the profile row is locked while checking."""
    with transaction.atomic():
        profile = instance_profile_by_name(
            account=account, instance_profile_name=instance_profile_name, for_update=True
        )
        role = role_by_name(account=account, role_name=role_name)
        if profile.role_id is not None:
            raise LimitExceeded(
                "Cannot exceed quota for InstanceSessionsPerInstanceProfile: "
                f"{quotas.ROLES_PER_INSTANCE_PROFILE}"
            )
        before = instance_profile_snapshot(profile)
        profile.role = role
        profile.save(update_fields=["role"])
        record_event(
            actor=actor,
            action="iam:AddRoleToInstanceProfile",
            resource_arn=profile.arn,
            parameters={"InstanceProfileName": instance_profile_name, "RoleName": role_name},
            before=before,
            after=instance_profile_snapshot(profile),
        )
    return profile


def remove_role_from_instance_profile(
    *, account: Account, instance_profile_name: str, role_name: str, actor: Actor
) -> InstanceProfile:
    """``iam:RemoveRoleFromInstanceProfile``."""
    with transaction.atomic():
        profile = instance_profile_by_name(
            account=account, instance_profile_name=instance_profile_name, for_update=True
        )
        role = role_by_name(account=account, role_name=role_name)
        if profile.role_id != role.pk:
            raise NoSuchEntity(
                f"The role with name {role_name} cannot be found in instance profile "
                f"{instance_profile_name}."
            )
        before = instance_profile_snapshot(profile)
        profile.role = None
        profile.save(update_fields=["role"])
        record_event(
            actor=actor,
            action="iam:RemoveRoleFromInstanceProfile",
            resource_arn=profile.arn,
            parameters={"InstanceProfileName": instance_profile_name, "RoleName": role_name},
            before=before,
            after=instance_profile_snapshot(profile),
        )
    return profile


def tag_instance_profile(
    *,
    account: Account,
    instance_profile_name: str,
    tags: Sequence[Mapping[str, str]],
    actor: Actor,
) -> InstanceProfile:
    """``iam:TagInstanceProfile``: add tags, replacing the value of a key the profile already
    has. Instance profile tags are not principal tags, so nothing propagates."""
    naming.validate_tags(tags)
    with transaction.atomic():
        profile = instance_profile_by_name(
            account=account, instance_profile_name=instance_profile_name, for_update=True
        )
        before = list(profile.tags)
        profile.tags = naming.merge_tags(profile.tags, tags)
        profile.save(update_fields=["tags"])
        _tags_event(
            actor=actor,
            action="iam:TagInstanceProfile",
            arn=profile.arn,
            parameters={"InstanceProfileName": instance_profile_name, "Tags": list(tags)},
            before=before,
            after=profile.tags,
        )
    return profile


def untag_instance_profile(
    *, account: Account, instance_profile_name: str, tag_keys: Sequence[str], actor: Actor
) -> InstanceProfile:
    """``iam:UntagInstanceProfile``: remove tags by key; absent keys are ignored."""
    keys = naming.validate_tag_keys(tag_keys)
    with transaction.atomic():
        profile = instance_profile_by_name(
            account=account, instance_profile_name=instance_profile_name, for_update=True
        )
        before = list(profile.tags)
        profile.tags = naming.remove_tags(profile.tags, keys)
        profile.save(update_fields=["tags"])
        _tags_event(
            actor=actor,
            action="iam:UntagInstanceProfile",
            arn=profile.arn,
            parameters={"InstanceProfileName": instance_profile_name, "TagKeys": keys},
            before=before,
            after=profile.tags,
        )
    return profile


# --- virtual MFA device tags ---------------------------------------------------------------


def _mfa_device_for_update(*, account: Account, serial_number: str) -> MFADevice:
    """The account's virtual MFA device named by its serial number (its ``mfa/`` ARN), row-locked;
    ``NoSuchEntity`` with AWS's message when there is none (or it went away meanwhile)."""
    device = mfa.get_device(account=account, serial_number=serial_number)
    locked = MFADevice.objects.select_for_update().filter(pk=device.pk).first()
    if locked is None:
        raise NoSuchEntity(f"VirtualMFADevice with serial number {serial_number} doesn't exist.")
    return locked


def tag_mfa_device(
    *, account: Account, serial_number: str, tags: Sequence[Mapping[str, str]], actor: Actor
) -> MFADevice:
    """``iam:TagMFADevice``: add tags to a virtual MFA device, replacing existing keys' values."""
    naming.validate_tags(tags)
    with transaction.atomic():
        device = _mfa_device_for_update(account=account, serial_number=serial_number)
        before = list(device.tags)
        device.tags = naming.merge_tags(device.tags, tags)
        device.save(update_fields=["tags"])
        _tags_event(
            actor=actor,
            action="iam:TagMFADevice",
            arn=device.serial_number,
            parameters={"SerialNumber": serial_number, "Tags": list(tags)},
            before=before,
            after=device.tags,
        )
    return device


def untag_mfa_device(
    *, account: Account, serial_number: str, tag_keys: Sequence[str], actor: Actor
) -> MFADevice:
    """``iam:UntagMFADevice``: remove tags by key; absent keys are ignored."""
    keys = naming.validate_tag_keys(tag_keys)
    with transaction.atomic():
        device = _mfa_device_for_update(account=account, serial_number=serial_number)
        before = list(device.tags)
        device.tags = naming.remove_tags(device.tags, keys)
        device.save(update_fields=["tags"])
        _tags_event(
            actor=actor,
            action="iam:UntagMFADevice",
            arn=device.serial_number,
            parameters={"SerialNumber": serial_number, "TagKeys": keys},
            before=before,
            after=device.tags,
        )
    return device


# --- access keys -------------------------------------------------------------------------


@dataclass(frozen=True)
class CreatedAccessKey:
    """``CreateAccessKey``'s answer: the key and its secret, which is never available again."""

    access_key: AccessKey
    secret_access_key: str


def access_key_snapshot(key: AccessKey) -> dict[str, Any]:
    """What the trail records of a key: never its secret, not even encrypted."""
    return {
        "AccessKeyId": key.access_key_id,
        "UserName": key.user.name,
        "UserArn": key.user.arn,
        "Status": key.status,
    }


def _key_owner(*, account: Account, user_name: str | None, actor: Actor) -> User:
    """The user named by ``UserName``, or — without it — the caller's own user, as IAM does
    for ``CreateAccessKey``/``UpdateAccessKey``/``DeleteAccessKey``/``ListAccessKeys``."""
    if user_name is not None:
        return user_by_name(account=account, user_name=user_name, for_update=True)
    if actor.user is None or actor.user.account_id != account.id:
        raise ValidationError("Must specify userName when calling with non-User credentials")
    return User.objects.select_for_update().get(pk=actor.user.pk)


def create_access_key(
    *, account: Account, user_name: str | None = None, actor: Actor
) -> CreatedAccessKey:
    """``iam:CreateAccessKey``: a new Active key (``AKIA…``) and its 40-character secret.

    The secret is returned once, here, and stored only encrypted (SigV4 needs it back); the
    audit event names the key id and never the secret. At most two keys per user, inactive
    ones included: the user's row is locked so two concurrent calls cannot make a third. The
    root user gets keys only when ``ALLOW_ROOT_ACCESS_KEYS`` is set, as AWS advises against
    them (IAM User Guide, "Root user best practices").
    """
    with transaction.atomic():
        user = _key_owner(account=account, user_name=user_name, actor=actor)
        if user.is_root and not settings.ALLOW_ROOT_ACCESS_KEYS:
            raise AccessDenied(
                "Access keys for the root user are disabled on this installation "
                "(PORTCULLIS_ALLOW_ROOT_ACCESS_KEYS)."
            )
        if AccessKey.objects.filter(user=user).count() >= quotas.ACCESS_KEYS_PER_USER:
            raise LimitExceeded(
                f"Cannot exceed quota for AccessKeysPerUser: {quotas.ACCESS_KEYS_PER_USER}"
            )
        secret = naming.new_secret_access_key()
        key_id = naming.new_access_key_id()
        while AccessKey.objects.filter(pk=key_id).exists():
            key_id = naming.new_access_key_id()
        key = AccessKey(
            access_key_id=key_id,
            user=user,
            secret_encrypted=crypto.encrypt(secret),
            status=AccessKey.Status.ACTIVE,
        )
        key.save(force_insert=True)
        record_event(
            actor=actor,
            action="iam:CreateAccessKey",
            resource_arn=user.arn,
            parameters={"UserName": user_name},
            after=access_key_snapshot(key),
        )
    return CreatedAccessKey(access_key=key, secret_access_key=secret)


def update_access_key(
    *,
    account: Account,
    access_key_id: str,
    status: str,
    user_name: str | None = None,
    actor: Actor,
) -> AccessKey:
    """``iam:UpdateAccessKey``: make a key Active or Inactive. Deactivation takes access away,
    so it propagates on the priority queue."""
    if status not in AccessKey.Status.values:
        raise _validation(
            status, "status", "Member must satisfy enum value set: [Active, Inactive]"
        )
    with transaction.atomic():
        user = _key_owner(account=account, user_name=user_name, actor=actor)
        key = access_key_by_id(
            account=account, access_key_id=access_key_id, user=user, for_update=True
        )
        before = access_key_snapshot(key)
        if key.status != status:
            key.status = status
            key.save(update_fields=["status"])
            record_change(kind=Kind.ACCESS_KEY, account_id=account.id, entity_id=key.access_key_id)
        record_event(
            actor=actor,
            action="iam:UpdateAccessKey",
            resource_arn=user.arn,
            parameters={"UserName": user_name, "AccessKeyId": access_key_id, "Status": status},
            before=before,
            after=access_key_snapshot(key),
        )
    return key


def delete_access_key(
    *, account: Account, access_key_id: str, user_name: str | None = None, actor: Actor
) -> None:
    """``iam:DeleteAccessKey``: the key stops working for good (priority propagation)."""
    with transaction.atomic():
        user = _key_owner(account=account, user_name=user_name, actor=actor)
        key = access_key_by_id(
            account=account, access_key_id=access_key_id, user=user, for_update=True
        )
        before = access_key_snapshot(key)
        record_change(kind=Kind.ACCESS_KEY, account_id=account.id, entity_id=key.access_key_id)
        key.delete()
        record_event(
            actor=actor,
            action="iam:DeleteAccessKey",
            resource_arn=user.arn,
            parameters={"UserName": user_name, "AccessKeyId": access_key_id},
            before=before,
        )


def record_access_key_use(
    *, access_key_id: str, service: str, region: str, when: datetime | None = None
) -> bool:
    """Note that a key was used (``GetAccessKeyLastUsed``). One conditional UPDATE that only
    moves the time forward, so concurrent requests never move it back and no lock is taken on
    the hot path. Not audited: the API call itself is. Returns whether the row changed."""
    when = when or timezone.now()
    updated = (
        AccessKey.objects.filter(pk=access_key_id)
        .filter(Q(last_used_at__isnull=True) | Q(last_used_at__lt=when))
        .update(last_used_at=when, last_used_service=service[:32], last_used_region=region[:32])
    )
    return bool(updated)


# --- account alias -----------------------------------------------------------------------


def create_account_alias(*, account: Account, account_alias: str, actor: Actor) -> Account:
    """``iam:CreateAccountAlias``: an account has at most one alias, unique across the
    installation (IAM User Guide, "Your AWS account ID and its alias"); a new alias replaces
    the old one."""
    naming.validate_account_alias(account_alias)
    with transaction.atomic():
        locked = Account.objects.select_for_update().get(pk=account.pk)
        taken = Account.objects.filter(alias=account_alias).exclude(pk=account.pk).exists()
        if taken:
            raise EntityAlreadyExists(f"The account alias {account_alias} already exists.")
        before = locked.alias
        locked.alias = account_alias
        try:
            with transaction.atomic():
                locked.save(update_fields=["alias"])
        except IntegrityError as exc:
            raise EntityAlreadyExists(f"The account alias {account_alias} already exists.") from exc
        record_event(
            actor=actor,
            action="iam:CreateAccountAlias",
            resource_arn=locked.root_arn,
            parameters={"AccountAlias": account_alias},
            before={"AccountAlias": before},
            after={"AccountAlias": account_alias},
        )
    account.alias = account_alias
    return account


def update_account_alias(*, account: Account, account_alias: str, actor: Actor) -> Account:
    """Replace the alias (the console's "Edit"); the same as ``CreateAccountAlias``."""
    return create_account_alias(account=account, account_alias=account_alias, actor=actor)


def delete_account_alias(*, account: Account, account_alias: str, actor: Actor) -> Account:
    """``iam:DeleteAccountAlias``: ``NoSuchEntity`` unless it is the account's alias."""
    with transaction.atomic():
        locked = Account.objects.select_for_update().get(pk=account.pk)
        if locked.alias != account_alias:
            raise NoSuchEntity(f"The account alias {account_alias} cannot be found.")
        locked.alias = None
        locked.save(update_fields=["alias"])
        record_event(
            actor=actor,
            action="iam:DeleteAccountAlias",
            resource_arn=locked.root_arn,
            parameters={"AccountAlias": account_alias},
            before={"AccountAlias": account_alias},
            after={"AccountAlias": None},
        )
    account.alias = None
    return account

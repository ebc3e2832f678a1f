"""Writes to stored policies: managed policies and their versions, attachments, inline policies.

Same pattern as ``identity.services``: one function per IAM action, keyword-only arguments and
an ``actor``, one transaction holding the change, its audit event and its propagation outbox
row. Documents are validated by the engine (``MalformedPolicyDocument`` with AWS's message)
and measured as IAM measures them (non-whitespace characters).

AWS-managed policies (account ``aws``) are shared by every account and cannot be changed by
any of them: in AWS they live in another account, so the call is denied (``AccessDenied``).

Lock order, everywhere: the account (quota checks), then the user/group/role row, then the
policy row. Keeping one order means concurrent calls wait instead of deadlocking.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from audit.context import Actor
from audit.services import record_event
from identity import naming, quotas
from identity.errors import (
    AccessDenied,
    DeleteConflict,
    EntityAlreadyExists,
    LimitExceeded,
    MalformedPolicyDocument,
    NoSuchEntity,
    ValidationError,
)
from identity.models import Account
from identity.selectors import group_by_name, role_by_name, user_by_name
from policies import engine
from policies.models import (
    GroupPolicyAttachment,
    InlinePolicy,
    ManagedPolicy,
    PolicyVersion,
    RolePolicyAttachment,
    UserPolicyAttachment,
)
from policies.outbox import Kind, record_change
from policies.selectors import policy_by_arn

# --- documents ---------------------------------------------------------------------------


def parse_document(document: str, *, trust: bool = False) -> engine.Policy:
    """Parse a policy document as IAM would accept it, or raise ``MalformedPolicyDocument``
    with the engine's (AWS's) message. ``trust`` parses a role trust policy."""
    if not isinstance(document, str) or not document.strip():
        raise MalformedPolicyDocument("Syntax errors in policy.")
    policy_type = engine.PolicyType.TRUST if trust else engine.PolicyType.IDENTITY
    try:
        return engine.parse_policy(document, policy_type=policy_type)
    except engine.PolicyParseError as exc:
        raise MalformedPolicyDocument(exc.message) from exc


def _validate_managed_document(document: str) -> None:
    """A managed policy version: at most 6,144 non-whitespace characters (IAM quota
    ``PolicySize``), then a valid identity policy."""
    if isinstance(document, str) and quotas.policy_size(document) > quotas.MANAGED_POLICY_SIZE:
        raise LimitExceeded(f"Cannot exceed quota for PolicySize: {quotas.MANAGED_POLICY_SIZE}")
    parse_document(document)


def _validation(value: Any, field: str, constraint: str) -> ValidationError:
    return ValidationError(
        f"1 validation error detected: Value '{value}' at '{field}' failed to satisfy "
        f"constraint: {constraint}"
    )


def _validate_description(description: str) -> None:
    if len(description) > 1000:
        raise _validation(
            description, "description", "Member must have length less than or equal to 1000"
        )


def _validate_version_id(version_id: str) -> None:
    if not re.fullmatch(r"v[1-9][0-9]*(\.[A-Za-z0-9-]*)?", version_id):
        raise _validation(
            version_id,
            "versionId",
            r"Member must satisfy regular expression pattern: v[1-9][0-9]*(\.[A-Za-z0-9-]*)?",
        )


def policy_snapshot(policy: ManagedPolicy) -> dict[str, Any]:
    return {
        "PolicyName": policy.name,
        "PolicyId": policy.unique_id,
        "Arn": policy.arn,
        "Path": policy.path,
        "Description": policy.description,
        "DefaultVersionId": policy.default_version_id,
        "Tags": policy.tags,
    }


def _customer_policy(
    *, account: Account, policy_arn: str, action: str, actor: Actor
) -> ManagedPolicy:
    """The account's own managed policy, row-locked. An AWS-managed one is refused with the
    AccessDenied IAM gives for a resource in another account."""
    policy = policy_by_arn(account=account, policy_arn=policy_arn, for_update=True)
    if policy.is_aws_managed:
        raise AccessDenied(
            f"User: {actor.arn} is not authorized to perform: {action} on resource: policy "
            f"{policy_arn} because no resource-based policy allows the {action} action"
        )
    return policy


def _attachable_policy(*, account: Account, policy_arn: str) -> ManagedPolicy:
    try:
        naming.parse_policy_arn(policy_arn)
    except Exception as exc:
        raise NoSuchEntity(f"Policy {policy_arn} does not exist or is not attachable.") from exc
    return policy_by_arn(account=account, policy_arn=policy_arn, for_update=True)


# --- managed policies --------------------------------------------------------------------


def create_policy(
    *,
    account: Account,
    policy_name: str,
    policy_document: str,
    path: str = "/",
    description: str = "",
    tags: Sequence[Mapping[str, str]] = (),
    actor: Actor,
) -> ManagedPolicy:
    """``iam:CreatePolicy``: a customer-managed policy with version ``v1`` as its default."""
    naming.validate_name(policy_name, field="policyName", max_length=128)
    naming.validate_path(path)
    _validate_description(description)
    clean_tags = naming.validate_tags(tags)
    _validate_managed_document(policy_document)
    exists = f"A policy called {policy_name} already exists. Duplicate names are not allowed."
    with transaction.atomic():
        Account.objects.select_for_update().filter(pk=account.pk).exists()
        count = ManagedPolicy.objects.filter(account=account).count()
        if count >= quotas.CUSTOMER_MANAGED_POLICIES_PER_ACCOUNT:
            raise LimitExceeded(
                "Cannot exceed quota for PoliciesPerAccount: "
                f"{quotas.CUSTOMER_MANAGED_POLICIES_PER_ACCOUNT}"
            )
        if ManagedPolicy.objects.filter(account=account, name__iexact=policy_name).exists():
            raise EntityAlreadyExists(exists)
        policy = ManagedPolicy(
            account=account,
            name=policy_name,
            path=path,
            unique_id=naming.new_unique_id(naming.POLICY_ID_PREFIX),
            description=description,
            tags=clean_tags,
            default_version_id="v1",
            next_version_number=2,
        )
        try:
            with transaction.atomic():
                policy.save(force_insert=True)
        except IntegrityError as exc:
            raise EntityAlreadyExists(exists) from exc
        PolicyVersion.objects.create(
            policy=policy, version_id="v1", document=policy_document, is_default=True
        )
        record_event(
            actor=actor,
            action="iam:CreatePolicy",
            resource_arn=policy.arn,
            parameters={
                "PolicyName": policy_name,
                "Path": path,
                "Description": description,
                "PolicyDocument": policy_document,
                "Tags": clean_tags,
            },
            after=policy_snapshot(policy),
        )
    return policy


def delete_policy(*, account: Account, policy_arn: str, actor: Actor) -> None:
    """``iam:DeletePolicy``. As in IAM, a policy attached to any user, group or role, used as
    a permissions boundary, or with versions other than the default cannot be deleted
    (IAM API Reference, DeletePolicy)."""
    action = "iam:DeletePolicy"
    with transaction.atomic():
        policy = _customer_policy(
            account=account, policy_arn=policy_arn, action=action, actor=actor
        )
        attached = (
            policy.user_attachments.exists()
            or policy.group_attachments.exists()
            or policy.role_attachments.exists()
            or policy.bounded_users.exists()
            or policy.bounded_roles.exists()
        )
        if attached:
            raise DeleteConflict("Cannot delete a policy attached to entities.")
        if policy.versions.filter(is_default=False).exists():
            raise DeleteConflict(
                "This policy has more than one version. Before you delete a policy, you must "
                "delete the policy's versions. The default version is deleted with the policy."
            )
        before = policy_snapshot(policy)
        before["Document"] = policy.versions.get(is_default=True).document
        record_change(kind=Kind.POLICY, account_id=account.id, entity_id=policy.unique_id)
        policy.delete()
        record_event(
            actor=actor,
            action=action,
            resource_arn=policy_arn,
            parameters={"PolicyArn": policy_arn},
            before=before,
        )


def create_policy_version(
    *,
    account: Account,
    policy_arn: str,
    policy_document: str,
    set_as_default: bool = False,
    actor: Actor,
) -> PolicyVersion:
    """``iam:CreatePolicyVersion``: at most five versions; ids ``v1``, ``v2``... are never
    reused, even after a version is deleted (IAM User Guide, "Versioning IAM policies")."""
    action = "iam:CreatePolicyVersion"
    _validate_managed_document(policy_document)
    with transaction.atomic():
        policy = _customer_policy(
            account=account, policy_arn=policy_arn, action=action, actor=actor
        )
        if policy.versions.count() >= quotas.VERSIONS_PER_POLICY:
            raise LimitExceeded(
                f"A managed policy can have up to {quotas.VERSIONS_PER_POLICY} versions. Before "
                "you create a new version, you must delete an existing version."
            )
        before = policy_snapshot(policy)
        version_id = f"v{policy.next_version_number}"
        policy.next_version_number += 1
        policy.updated_at = timezone.now()
        fields = ["next_version_number", "updated_at"]
        if set_as_default:
            policy.versions.filter(is_default=True).update(is_default=False)
            policy.default_version_id = version_id
            fields.append("default_version_id")
        version = PolicyVersion.objects.create(
            policy=policy,
            version_id=version_id,
            document=policy_document,
            is_default=set_as_default,
        )
        policy.save(update_fields=fields)
        if set_as_default:
            record_change(kind=Kind.POLICY, account_id=account.id, entity_id=policy.unique_id)
        record_event(
            actor=actor,
            action=action,
            resource_arn=policy.arn,
            parameters={
                "PolicyArn": policy_arn,
                "PolicyDocument": policy_document,
                "SetAsDefault": set_as_default,
            },
            before=before,
            after={**policy_snapshot(policy), "VersionId": version_id},
        )
    return version


def _version(policy: ManagedPolicy, policy_arn: str, version_id: str) -> PolicyVersion:
    version = policy.versions.select_for_update().filter(version_id=version_id).first()
    if version is None:
        raise NoSuchEntity(
            f"Policy {policy_arn} version {version_id} does not exist or is not attachable."
        )
    return version


def delete_policy_version(
    *, account: Account, policy_arn: str, version_id: str, actor: Actor
) -> None:
    """``iam:DeletePolicyVersion``: never the default version."""
    action = "iam:DeletePolicyVersion"
    _validate_version_id(version_id)
    with transaction.atomic():
        policy = _customer_policy(
            account=account, policy_arn=policy_arn, action=action, actor=actor
        )
        version = _version(policy, policy_arn, version_id)
        if version.is_default:
            raise DeleteConflict("Cannot delete the default version of a policy.")
        before = {"VersionId": version_id, "Document": version.document}
        version.delete()
        record_event(
            actor=actor,
            action=action,
            resource_arn=policy.arn,
            parameters={"PolicyArn": policy_arn, "VersionId": version_id},
            before=before,
        )


def set_default_policy_version(
    *, account: Account, policy_arn: str, version_id: str, actor: Actor
) -> ManagedPolicy:
    """``iam:SetDefaultPolicyVersion``: the version that applies to every attachment."""
    action = "iam:SetDefaultPolicyVersion"
    _validate_version_id(version_id)
    with transaction.atomic():
        policy = _customer_policy(
            account=account, policy_arn=policy_arn, action=action, actor=actor
        )
        version = _version(policy, policy_arn, version_id)
        before = policy_snapshot(policy)
        if not version.is_default:
            policy.versions.filter(is_default=True).update(is_default=False)
            version.is_default = True
            version.save(update_fields=["is_default"])
            policy.default_version_id = version_id
            policy.updated_at = timezone.now()
            policy.save(update_fields=["default_version_id", "updated_at"])
            record_change(kind=Kind.POLICY, account_id=account.id, entity_id=policy.unique_id)
        record_event(
            actor=actor,
            action=action,
            resource_arn=policy.arn,
            parameters={"PolicyArn": policy_arn, "VersionId": version_id},
            before=before,
            after=policy_snapshot(policy),
        )
    return policy


def tag_policy(
    *, account: Account, policy_arn: str, tags: Sequence[Mapping[str, str]], actor: Actor
) -> ManagedPolicy:
    """``iam:TagPolicy``."""
    action = "iam:TagPolicy"
    naming.validate_tags(tags)
    with transaction.atomic():
        policy = _customer_policy(
            account=account, policy_arn=policy_arn, action=action, actor=actor
        )
        before = list(policy.tags)
        policy.tags = naming.merge_tags(policy.tags, tags)
        policy.save(update_fields=["tags"])
        record_event(
            actor=actor,
            action=action,
            resource_arn=policy.arn,
            parameters={"PolicyArn": policy_arn, "Tags": list(tags)},
            before={"Tags": before},
            after={"Tags": policy.tags},
        )
    return policy


def untag_policy(
    *, account: Account, policy_arn: str, tag_keys: Sequence[str], actor: Actor
) -> ManagedPolicy:
    """``iam:UntagPolicy``."""
    action = "iam:UntagPolicy"
    tag_keys = naming.validate_tag_keys(tag_keys)
    with transaction.atomic():
        policy = _customer_policy(
            account=account, policy_arn=policy_arn, action=action, actor=actor
        )
        before = list(policy.tags)
        policy.tags = naming.remove_tags(policy.tags, tag_keys)
        policy.save(update_fields=["tags"])
        record_event(
            actor=actor,
            action=action,
            resource_arn=policy.arn,
            parameters={"PolicyArn": policy_arn, "TagKeys": list(tag_keys)},
            before={"Tags": before},
            after={"Tags": policy.tags},
        )
    return policy


# --- attachments -------------------------------------------------------------------------


@dataclass(frozen=True)
class _EntityKind:
    """How one kind of principal holds policies: its attachment model, quota and names."""

    label: str  # "user", "group", "role"
    iam: str  # "User", "Group", "Role"
    attachment_model: Any
    attachment_field: str
    quota_name: str
    outbox_kind: str

    def quota(self) -> int:
        # Read at call time so tests and operators can change the module's values.
        return {
            "user": quotas.MANAGED_POLICIES_PER_USER,
            "group": quotas.MANAGED_POLICIES_PER_GROUP,
            "role": quotas.MANAGED_POLICIES_PER_ROLE,
        }[self.label]

    def inline_size_quota(self) -> int:
        return {
            "user": quotas.USER_INLINE_POLICIES_SIZE,
            "group": quotas.GROUP_INLINE_POLICIES_SIZE,
            "role": quotas.ROLE_INLINE_POLICIES_SIZE,
        }[self.label]

    def lookup(self, account: Account, name: str) -> Any:
        if self.label == "user":
            return user_by_name(account=account, user_name=name, for_update=True)
        if self.label == "group":
            return group_by_name(account=account, group_name=name, for_update=True)
        return role_by_name(account=account, role_name=name, for_update=True)


USER = _EntityKind("user", "User", UserPolicyAttachment, "user", "PoliciesPerUser", Kind.USER)
GROUP = _EntityKind(
    "group", "Group", GroupPolicyAttachment, "group", "PoliciesPerGroup", Kind.GROUP
)
ROLE = _EntityKind("role", "Role", RolePolicyAttachment, "role", "PoliciesPerRole", Kind.ROLE)


def _attach(
    kind: _EntityKind, *, account: Account, name: str, policy_arn: str, actor: Actor
) -> None:
    action = f"iam:Attach{kind.iam}Policy"
    with transaction.atomic():
        entity = kind.lookup(account, name)
        policy = _attachable_policy(account=account, policy_arn=policy_arn)
        attachments = kind.attachment_model.objects.filter(**{kind.attachment_field: entity})
        already = attachments.filter(policy=policy).exists()
        if not already:
            if attachments.count() >= kind.quota():
                raise LimitExceeded(f"Cannot exceed quota for {kind.quota_name}: {kind.quota()}")
            kind.attachment_model.objects.create(**{kind.attachment_field: entity}, policy=policy)
            ManagedPolicy.objects.filter(pk=policy.pk).update(
                attachment_count=F("attachment_count") + 1
            )
            record_change(kind=kind.outbox_kind, account_id=account.id, entity_id=entity.unique_id)
        record_event(
            actor=actor,
            action=action,
            resource_arn=entity.arn,
            parameters={f"{kind.iam}Name": name, "PolicyArn": policy_arn},
            before={"Attached": already},
            after={"Attached": True, "PolicyArn": policy.arn},
        )


def _detach(
    kind: _EntityKind, *, account: Account, name: str, policy_arn: str, actor: Actor
) -> None:
    action = f"iam:Detach{kind.iam}Policy"
    with transaction.atomic():
        entity = kind.lookup(account, name)
        policy = _attachable_policy(account=account, policy_arn=policy_arn)
        deleted, _ = kind.attachment_model.objects.filter(
            **{kind.attachment_field: entity}, policy=policy
        ).delete()
        if not deleted:
            raise NoSuchEntity(f"Policy {policy_arn} was not found.")
        ManagedPolicy.objects.filter(pk=policy.pk, attachment_count__gt=0).update(
            attachment_count=F("attachment_count") - 1
        )
        record_change(
            kind=kind.outbox_kind, account_id=account.id, entity_id=entity.unique_id, priority=True
        )
        record_event(
            actor=actor,
            action=action,
            resource_arn=entity.arn,
            parameters={f"{kind.iam}Name": name, "PolicyArn": policy_arn},
            before={"Attached": True, "PolicyArn": policy.arn},
            after={"Attached": False},
        )


def attach_user_policy(*, account: Account, user_name: str, policy_arn: str, actor: Actor) -> None:
    """``iam:AttachUserPolicy``: at most 10 managed policies per user; attaching one already
    attached changes nothing."""
    _attach(USER, account=account, name=user_name, policy_arn=policy_arn, actor=actor)


def detach_user_policy(*, account: Account, user_name: str, policy_arn: str, actor: Actor) -> None:
    """``iam:DetachUserPolicy``."""
    _detach(USER, account=account, name=user_name, policy_arn=policy_arn, actor=actor)


def attach_group_policy(
    *, account: Account, group_name: str, policy_arn: str, actor: Actor
) -> None:
    """``iam:AttachGroupPolicy``: at most 10 per group; reaches every member."""
    _attach(GROUP, account=account, name=group_name, policy_arn=policy_arn, actor=actor)


def detach_group_policy(
    *, account: Account, group_name: str, policy_arn: str, actor: Actor
) -> None:
    """``iam:DetachGroupPolicy``."""
    _detach(GROUP, account=account, name=group_name, policy_arn=policy_arn, actor=actor)


def attach_role_policy(*, account: Account, role_name: str, policy_arn: str, actor: Actor) -> None:
    """``iam:AttachRolePolicy``: at most 10 per role."""
    _attach(ROLE, account=account, name=role_name, policy_arn=policy_arn, actor=actor)


def detach_role_policy(*, account: Account, role_name: str, policy_arn: str, actor: Actor) -> None:
    """``iam:DetachRolePolicy``."""
    _detach(ROLE, account=account, name=role_name, policy_arn=policy_arn, actor=actor)


# --- inline policies ---------------------------------------------------------------------


def _put_inline(
    kind: _EntityKind,
    *,
    account: Account,
    name: str,
    policy_name: str,
    policy_document: str,
    actor: Actor,
) -> InlinePolicy:
    action = f"iam:Put{kind.iam}Policy"
    naming.validate_name(policy_name, field="policyName", max_length=128)
    parse_document(policy_document)
    with transaction.atomic():
        entity = kind.lookup(account, name)
        others = InlinePolicy.objects.filter(**{kind.attachment_field: entity}).exclude(
            name=policy_name
        )
        # IAM counts every inline policy of the entity together (IAM User Guide, "IAM and
        # AWS STS quotas": "the total size of all inline policies").
        total = sum(quotas.policy_size(doc) for doc in others.values_list("document", flat=True))
        total += quotas.policy_size(policy_document)
        limit = kind.inline_size_quota()
        if total > limit:
            raise LimitExceeded(
                f"Maximum policy size of {limit} bytes exceeded for {kind.label} {entity.name}"
            )
        existing = (
            InlinePolicy.objects.select_for_update()
            .filter(**{kind.attachment_field: entity}, name=policy_name)
            .first()
        )
        before = (
            {"PolicyName": policy_name, "PolicyDocument": existing.document} if existing else None
        )
        if existing is None:
            inline = InlinePolicy.objects.create(
                **{kind.attachment_field: entity}, name=policy_name, document=policy_document
            )
        else:
            inline = existing
            inline.document = policy_document
            inline.updated_at = timezone.now()
            inline.save(update_fields=["document", "updated_at"])
        record_change(kind=kind.outbox_kind, account_id=account.id, entity_id=entity.unique_id)
        record_event(
            actor=actor,
            action=action,
            resource_arn=entity.arn,
            parameters={
                f"{kind.iam}Name": name,
                "PolicyName": policy_name,
                "PolicyDocument": policy_document,
            },
            before=before,
            after={"PolicyName": policy_name, "PolicyDocument": policy_document},
        )
    return inline


def _delete_inline(
    kind: _EntityKind, *, account: Account, name: str, policy_name: str, actor: Actor
) -> None:
    action = f"iam:Delete{kind.iam}Policy"
    with transaction.atomic():
        entity = kind.lookup(account, name)
        inline = (
            InlinePolicy.objects.select_for_update()
            .filter(**{kind.attachment_field: entity}, name=policy_name)
            .first()
        )
        if inline is None:
            raise NoSuchEntity(f"The {kind.label} policy with name {policy_name} cannot be found.")
        before = {"PolicyName": policy_name, "PolicyDocument": inline.document}
        inline.delete()
        record_change(
            kind=kind.outbox_kind, account_id=account.id, entity_id=entity.unique_id, priority=True
        )
        record_event(
            actor=actor,
            action=action,
            resource_arn=entity.arn,
            parameters={f"{kind.iam}Name": name, "PolicyName": policy_name},
            before=before,
        )


def put_user_policy(
    *, account: Account, user_name: str, policy_name: str, policy_document: str, actor: Actor
) -> InlinePolicy:
    """``iam:PutUserPolicy``: add or replace an inline policy; all of the user's inline
    policies together stay within 2,048 non-whitespace characters."""
    return _put_inline(
        USER,
        account=account,
        name=user_name,
        policy_name=policy_name,
        policy_document=policy_document,
        actor=actor,
    )


def delete_user_policy(*, account: Account, user_name: str, policy_name: str, actor: Actor) -> None:
    """``iam:DeleteUserPolicy``."""
    _delete_inline(USER, account=account, name=user_name, policy_name=policy_name, actor=actor)


def put_group_policy(
    *, account: Account, group_name: str, policy_name: str, policy_document: str, actor: Actor
) -> InlinePolicy:
    """``iam:PutGroupPolicy`` (5,120 characters for all of the group's inline policies)."""
    return _put_inline(
        GROUP,
        account=account,
        name=group_name,
        policy_name=policy_name,
        policy_document=policy_document,
        actor=actor,
    )


def delete_group_policy(
    *, account: Account, group_name: str, policy_name: str, actor: Actor
) -> None:
    """``iam:DeleteGroupPolicy``."""
    _delete_inline(GROUP, account=account, name=group_name, policy_name=policy_name, actor=actor)


def put_role_policy(
    *, account: Account, role_name: str, policy_name: str, policy_document: str, actor: Actor
) -> InlinePolicy:
    """``iam:PutRolePolicy`` (10,240 characters for all of the role's inline policies)."""
    return _put_inline(
        ROLE,
        account=account,
        name=role_name,
        policy_name=policy_name,
        policy_document=policy_document,
        actor=actor,
    )


def delete_role_policy(*, account: Account, role_name: str, policy_name: str, actor: Actor) -> None:
    """``iam:DeleteRolePolicy``."""
    _delete_inline(ROLE, account=account, name=role_name, policy_name=policy_name, actor=actor)

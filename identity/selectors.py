"""Reads of the identity model, shared by the Query API and the console.

Every ``list_*`` reader paginates as IAM does (IAM API Reference, "Pagination" common
parameters): ``path_prefix`` (``PathPrefix``, default ``/``), ``marker`` (``Marker``: an opaque
string returned by the previous page, ``None`` for the first) and ``max_items`` (``MaxItems``,
1–1000, default 100). Each returns a ``Page`` — a named tuple ``(items, is_truncated, marker)``
— where ``marker`` is what to pass to get the next page, ``None`` when ``is_truncated`` is
false. Markers are keyset positions, so paging stays fast at 100,000 users and a row deleted
between pages never makes a page skip or repeat an item.

Readers never authorize: callers do that first through ``policies.access`` (a view or an API
handler declares its IAM action). Every reader is scoped to one account.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from typing import Any, Generic, NamedTuple, TypeVar

from django.db.models import Model, Q, QuerySet, Value
from django.db.models.functions import Lower

from identity import naming, quotas
from identity.errors import InvalidInput, NoSuchEntity, ValidationError
from identity.models import (
    AccessKey,
    Account,
    Group,
    InstanceProfile,
    MFADevice,
    OIDCProvider,
    Role,
    User,
)

T = TypeVar("T")
M = TypeVar("M", bound=Model)

DEFAULT_MAX_ITEMS = 100
MAX_MAX_ITEMS = 1000


class Page(NamedTuple, Generic[T]):
    """One page of a list: ``items``, ``is_truncated`` and the ``marker`` of the next page."""

    items: list[T]
    is_truncated: bool
    marker: str | None


# --- pagination --------------------------------------------------------------------------


def validate_max_items(max_items: int | str) -> int:
    """``MaxItems`` must be 1–1000 (IAM API Reference, e.g. ListUsers). A numeric string, as
    the Query API receives it, is accepted."""
    try:
        max_items = int(max_items)
    except (TypeError, ValueError) as exc:
        raise ValidationError(
            f"1 validation error detected: Value '{max_items}' at 'maxItems' failed to satisfy "
            "constraint: Member must be an integer"
        ) from exc
    if max_items < 1:
        raise ValidationError(
            f"1 validation error detected: Value '{max_items}' at 'maxItems' failed to satisfy "
            "constraint: Member must have value greater than or equal to 1"
        )
    if max_items > MAX_MAX_ITEMS:
        raise ValidationError(
            f"1 validation error detected: Value '{max_items}' at 'maxItems' failed to satisfy "
            f"constraint: Member must have value less than or equal to {MAX_MAX_ITEMS}"
        )
    return max_items


def _encode_marker(position: dict[str, Any]) -> str:
    raw = json.dumps(position, separators=(",", ":")).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _decode_marker(marker: str) -> dict[str, Any]:
    try:
        padded = marker + "=" * (-len(marker) % 4)
        position = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeError) as exc:
        raise InvalidInput("Invalid Marker.") from exc
    if not isinstance(position, dict):
        raise InvalidInput("Invalid Marker.")
    return position


def paginate(
    queryset: QuerySet[M],
    *,
    marker: str | None,
    max_items: int,
    sort_field: str | None = "name",
) -> Page[M]:
    """Keyset pagination over ``queryset`` ordered by ``lower(sort_field)`` then primary key
    (by primary key alone when ``sort_field`` is None)."""
    max_items = validate_max_items(max_items)
    if sort_field is not None:
        queryset = queryset.annotate(_sort=Lower(sort_field)).order_by("_sort", "pk")
    else:
        queryset = queryset.order_by("pk")
    if marker:
        position = _decode_marker(marker)
        last_pk = position.get("pk")
        if last_pk is None:
            raise InvalidInput("Invalid Marker.")
        if sort_field is not None:
            last_sort = position.get("s")
            if not isinstance(last_sort, str):
                raise InvalidInput("Invalid Marker.")
            queryset = queryset.filter(Q(_sort__gt=last_sort) | Q(_sort=last_sort, pk__gt=last_pk))
        else:
            queryset = queryset.filter(pk__gt=last_pk)
    rows = list(queryset[: max_items + 1])
    truncated = len(rows) > max_items
    rows = rows[:max_items]
    next_marker = None
    if truncated:
        last = rows[-1]
        position = {"pk": last.pk}
        if sort_field is not None:
            position["s"] = last._sort  # type: ignore[attr-defined]
        next_marker = _encode_marker(position)
    return Page(rows, truncated, next_marker)


def paginate_list(items: Sequence[T], *, marker: str | None, max_items: int) -> Page[T]:
    """Offset pagination of an already-built, stably ordered list (small lists: inline policy
    names, an entity's attached policies, a policy's versions)."""
    max_items = validate_max_items(max_items)
    start = 0
    if marker:
        offset = _decode_marker(marker).get("o")
        if not isinstance(offset, int) or offset < 0:
            raise InvalidInput("Invalid Marker.")
        start = offset
    chunk = list(items[start : start + max_items])
    truncated = start + max_items < len(items)
    return Page(chunk, truncated, _encode_marker({"o": start + max_items}) if truncated else None)


def path_filter(queryset: QuerySet[M], path_prefix: str) -> QuerySet[M]:
    naming.validate_path_prefix(path_prefix)
    if path_prefix == "/":
        return queryset
    return queryset.filter(path__startswith=path_prefix)


# --- single entities ---------------------------------------------------------------------


def _name_is(queryset: QuerySet[M], name: str) -> QuerySet[M]:
    """Rows whose name equals ``name`` case-insensitively, as ``lower(name) = lower(%s)``: the
    per-account unique indexes are on ``lower(name)``, so PostgreSQL answers from the index
    (Django's ``iexact`` compares ``UPPER`` and scans). Both sides use the database's
    ``lower``, so the comparison is exactly the uniqueness rule, non-ASCII letters included."""
    return queryset.alias(_lower_name=Lower("name")).filter(_lower_name=Lower(Value(name)))


def user_by_name(*, account: Account, user_name: str, for_update: bool = False) -> User:
    """The IAM user named ``user_name`` (case-insensitively), or ``NoSuchEntity``. Never the
    root user. ``for_update`` locks the row (inside a transaction)."""
    queryset = _name_is(User.objects.filter(account=account, is_root=False), user_name)
    if for_update:
        queryset = queryset.select_for_update(of=("self",))
    user = queryset.select_related("permissions_boundary").first()
    if user is None:
        raise NoSuchEntity(f"The user with name {user_name} cannot be found.")
    return user


def group_by_name(*, account: Account, group_name: str, for_update: bool = False) -> Group:
    """The group named ``group_name`` (case-insensitively), or ``NoSuchEntity``."""
    queryset = _name_is(Group.objects.filter(account=account), group_name)
    if for_update:
        queryset = queryset.select_for_update(of=("self",))
    group = queryset.first()
    if group is None:
        raise NoSuchEntity(f"The group with name {group_name} cannot be found.")
    return group


def role_by_name(*, account: Account, role_name: str, for_update: bool = False) -> Role:
    """The role named ``role_name`` (case-insensitively), or ``NoSuchEntity``."""
    queryset = _name_is(Role.objects.filter(account=account), role_name)
    if for_update:
        queryset = queryset.select_for_update(of=("self",))
    role = queryset.select_related("permissions_boundary").first()
    if role is None:
        raise NoSuchEntity(f"The role with name {role_name} cannot be found.")
    return role


def instance_profile_by_name(
    *, account: Account, instance_profile_name: str, for_update: bool = False
) -> InstanceProfile:
    """The instance profile named ``instance_profile_name``, or ``NoSuchEntity``."""
    queryset = _name_is(InstanceProfile.objects.filter(account=account), instance_profile_name)
    if for_update:
        queryset = queryset.select_for_update(of=("self",))
    profile = queryset.select_related("role").first()
    if profile is None:
        raise NoSuchEntity(f"Instance Profile {instance_profile_name} cannot be found.")
    return profile


def access_key_by_id(
    *, account: Account, access_key_id: str, user: User | None = None, for_update: bool = False
) -> AccessKey:
    """An access key of the account (of ``user`` when given), or ``NoSuchEntity``."""
    queryset = AccessKey.objects.filter(access_key_id=access_key_id, user__account=account)
    if user is not None:
        queryset = queryset.filter(user=user)
    if for_update:
        queryset = queryset.select_for_update(of=("self",))
    key = queryset.select_related("user").first()
    if key is None:
        raise NoSuchEntity(f"The Access Key with id {access_key_id} cannot be found")
    return key


def get_user(*, account: Account, user_name: str) -> User:
    """``iam:GetUser`` for a named user (the caller's own user is ``actor.user``)."""
    return user_by_name(account=account, user_name=user_name)


def get_role(*, account: Account, role_name: str) -> Role:
    """``iam:GetRole``."""
    return role_by_name(account=account, role_name=role_name)


def get_instance_profile(*, account: Account, instance_profile_name: str) -> InstanceProfile:
    """``iam:GetInstanceProfile`` (``profile.role`` is its role or None)."""
    return instance_profile_by_name(account=account, instance_profile_name=instance_profile_name)


def get_group(
    *,
    account: Account,
    group_name: str,
    marker: str | None = None,
    max_items: int = DEFAULT_MAX_ITEMS,
) -> tuple[Group, Page[User]]:
    """``iam:GetGroup``: the group and one page of its members, by user name."""
    group = group_by_name(account=account, group_name=group_name)
    members = User.objects.filter(memberships__group=group).select_related("permissions_boundary")
    return group, paginate(members, marker=marker, max_items=max_items)


# --- lists -------------------------------------------------------------------------------


def list_users(
    *,
    account: Account,
    path_prefix: str = "/",
    marker: str | None = None,
    max_items: int = DEFAULT_MAX_ITEMS,
) -> Page[User]:
    """``iam:ListUsers``: the account's IAM users (never the root user), by name."""
    queryset = User.objects.filter(account=account, is_root=False).select_related(
        "permissions_boundary"
    )
    return paginate(path_filter(queryset, path_prefix), marker=marker, max_items=max_items)


def list_groups(
    *,
    account: Account,
    path_prefix: str = "/",
    marker: str | None = None,
    max_items: int = DEFAULT_MAX_ITEMS,
) -> Page[Group]:
    """``iam:ListGroups``."""
    queryset = Group.objects.filter(account=account)
    return paginate(path_filter(queryset, path_prefix), marker=marker, max_items=max_items)


def list_groups_for_user(
    *,
    account: Account,
    user_name: str,
    marker: str | None = None,
    max_items: int = DEFAULT_MAX_ITEMS,
) -> Page[Group]:
    """``iam:ListGroupsForUser``: ``NoSuchEntity`` if the user does not exist."""
    user = user_by_name(account=account, user_name=user_name)
    queryset = Group.objects.filter(memberships__user=user)
    return paginate(queryset, marker=marker, max_items=max_items)


def list_roles(
    *,
    account: Account,
    path_prefix: str = "/",
    marker: str | None = None,
    max_items: int = DEFAULT_MAX_ITEMS,
) -> Page[Role]:
    """``iam:ListRoles``."""
    queryset = Role.objects.filter(account=account).select_related("permissions_boundary")
    return paginate(path_filter(queryset, path_prefix), marker=marker, max_items=max_items)


def list_instance_profiles(
    *,
    account: Account,
    path_prefix: str = "/",
    marker: str | None = None,
    max_items: int = DEFAULT_MAX_ITEMS,
) -> Page[InstanceProfile]:
    """``iam:ListInstanceProfiles`` (``profile.role`` preloaded)."""
    queryset = InstanceProfile.objects.filter(account=account).select_related("role")
    return paginate(path_filter(queryset, path_prefix), marker=marker, max_items=max_items)


def list_instance_profiles_for_role(
    *,
    account: Account,
    role_name: str,
    marker: str | None = None,
    max_items: int = DEFAULT_MAX_ITEMS,
) -> Page[InstanceProfile]:
    """``iam:ListInstanceProfilesForRole``."""
    role = role_by_name(account=account, role_name=role_name)
    queryset = InstanceProfile.objects.filter(role=role).select_related("role")
    return paginate(queryset, marker=marker, max_items=max_items)


def list_access_keys(
    *,
    account: Account,
    user_name: str,
    marker: str | None = None,
    max_items: int = DEFAULT_MAX_ITEMS,
) -> Page[AccessKey]:
    """``iam:ListAccessKeys`` of a user, oldest first. Never returns secrets (the model keeps
    only the encrypted secret; nothing here decrypts it)."""
    user = user_by_name(account=account, user_name=user_name)
    keys = list(AccessKey.objects.filter(user=user).order_by("created_at", "access_key_id"))
    return paginate_list(keys, marker=marker, max_items=max_items)


def list_access_keys_of(
    *, user: User, marker: str | None = None, max_items: int = DEFAULT_MAX_ITEMS
) -> Page[AccessKey]:
    """``iam:ListAccessKeys`` without ``UserName``: the caller's own keys (also the root
    user's, which ``list_access_keys`` cannot name)."""
    keys = list(AccessKey.objects.filter(user=user).order_by("created_at", "access_key_id"))
    return paginate_list(keys, marker=marker, max_items=max_items)


def get_access_key_last_used(*, account: Account, access_key_id: str) -> AccessKey:
    """``iam:GetAccessKeyLastUsed``: the key with ``user``, ``last_used_at``,
    ``last_used_service`` and ``last_used_region`` (AWS reports ``N/A`` for never-used
    service/region; rendering does that)."""
    return access_key_by_id(account=account, access_key_id=access_key_id)


def list_tags(
    entity: User | Role | InstanceProfile | Any,
    *,
    marker: str | None = None,
    max_items: int = DEFAULT_MAX_ITEMS,
) -> Page[dict[str, str]]:
    """``iam:ListUserTags`` / ``ListRoleTags`` / ``ListPolicyTags`` / ... of a fetched entity."""
    return paginate_list(list(entity.tags), marker=marker, max_items=max_items)


def list_account_aliases(*, account: Account) -> list[str]:
    """``iam:ListAccountAliases``: zero or one alias (IAM allows one per account)."""
    return [account.alias] if account.alias else []


# --- account-wide ------------------------------------------------------------------------


def get_account_summary(*, account: Account) -> dict[str, int]:
    """``iam:GetAccountSummary``: the SummaryMap, with the keys and quota values IAM returns
    (IAM API Reference, GetAccountSummary). Counts are of this account only; AWS-managed
    policies are not counted in ``Policies``."""
    from policies.models import ManagedPolicy, PolicyVersion

    root = User.objects.filter(account=account, is_root=True).first()
    customer_policies = ManagedPolicy.objects.filter(account=account)
    return {
        "Users": User.objects.filter(account=account, is_root=False).count(),
        "UsersQuota": quotas.USERS_PER_ACCOUNT,
        "Groups": Group.objects.filter(account=account).count(),
        "GroupsQuota": quotas.GROUPS_PER_ACCOUNT,
        "ServerCertificates": 0,
        "ServerCertificatesQuota": 20,
        "UserPolicySizeQuota": quotas.USER_INLINE_POLICIES_SIZE,
        "GroupPolicySizeQuota": quotas.GROUP_INLINE_POLICIES_SIZE,
        "GroupsPerUserQuota": quotas.GROUPS_PER_USER,
        "SigningCertificatesPerUserQuota": 2,
        "AccessKeysPerUserQuota": quotas.ACCESS_KEYS_PER_USER,
        "MFADevices": MFADevice.objects.filter(account=account).count(),
        "MFADevicesInUse": MFADevice.objects.filter(
            account=account, user__isnull=False, enabled_at__isnull=False
        ).count(),
        "AccountMFAEnabled": int(
            root is not None
            and MFADevice.objects.filter(user=root, enabled_at__isnull=False).exists()
        ),
        "AccountAccessKeysPresent": int(
            root is not None and AccessKey.objects.filter(user=root).exists()
        ),
        "AccountSigningCertificatesPresent": 0,
        "AttachedPoliciesPerGroupQuota": quotas.MANAGED_POLICIES_PER_GROUP,
        "AttachedPoliciesPerRoleQuota": quotas.MANAGED_POLICIES_PER_ROLE,
        "AttachedPoliciesPerUserQuota": quotas.MANAGED_POLICIES_PER_USER,
        "Policies": customer_policies.count(),
        "PoliciesQuota": quotas.CUSTOMER_MANAGED_POLICIES_PER_ACCOUNT,
        "PolicySizeQuota": quotas.MANAGED_POLICY_SIZE,
        "PolicyVersionsInUse": PolicyVersion.objects.filter(policy__account=account).count(),
        "PolicyVersionsInUseQuota": 10000,
        "VersionsPerPolicyQuota": quotas.VERSIONS_PER_POLICY,
        "GlobalEndpointTokenVersion": 1,
        "Roles": Role.objects.filter(account=account).count(),
        "RolesQuota": quotas.ROLES_PER_ACCOUNT,
        "RolePolicySizeQuota": quotas.ROLE_INLINE_POLICIES_SIZE,
        "AssumeRolePolicySizeQuota": quotas.ROLE_TRUST_POLICY_SIZE,
        "InstanceProfiles": InstanceProfile.objects.filter(account=account).count(),
        "InstanceProfilesQuota": quotas.INSTANCE_PROFILES_PER_ACCOUNT,
        "Providers": OIDCProvider.objects.filter(account=account).count(),
    }


AUTHORIZATION_DETAILS_FILTERS = ("User", "Role", "Group", "LocalManagedPolicy", "AWSManagedPolicy")


def get_account_authorization_details(
    *,
    account: Account,
    filters: Sequence[str] = (),
    marker: str | None = None,
    max_items: int = DEFAULT_MAX_ITEMS,
) -> dict[str, Any]:
    """``iam:GetAccountAuthorizationDetails``: every user, group, role and managed policy of
    the account with their policies, in IAM's response shape::

        {"UserDetailList": [...], "GroupDetailList": [...], "RoleDetailList": [...],
         "Policies": [...], "IsTruncated": bool, "Marker": str | None}

    ``filters`` is IAM's ``Filter`` (``User``, ``Role``, ``Group``, ``LocalManagedPolicy``,
    ``AWSManagedPolicy``; empty means all). AWS-managed policies are listed when attached to
    something in this account, with this account's attachment count. Policy documents are
    the stored JSON text (the Query API URL-encodes them, as IAM does). ``MaxItems`` counts
    entities of all kinds together.
    """
    from policies.models import InlinePolicy, ManagedPolicy, PolicyVersion

    wanted = set(filters) or set(AUTHORIZATION_DETAILS_FILTERS)
    unknown = wanted - set(AUTHORIZATION_DETAILS_FILTERS)
    if unknown:
        raise ValidationError(
            f"1 validation error detected: Value '{sorted(unknown)}' at 'filter' failed to "
            "satisfy constraint: Member must satisfy constraint: [Member must satisfy enum "
            "value set: [LocalManagedPolicy, Role, Group, User, AWSManagedPolicy]]"
        )

    def attached(manager: Any) -> list[dict[str, str]]:
        return [
            {"PolicyName": a.policy.name, "PolicyArn": a.policy.arn}
            for a in manager.select_related("policy").order_by("policy__name")
        ]

    def inline(queryset: Any) -> list[dict[str, str]]:
        return [
            {"PolicyName": p.name, "PolicyDocument": p.document} for p in queryset.order_by("name")
        ]

    def boundary(policy: Any) -> dict[str, str] | None:
        if policy is None:
            return None
        return {"PermissionsBoundaryType": "Policy", "PermissionsBoundaryArn": policy.arn}

    entries: list[tuple[str, Any]] = []
    if "User" in wanted:
        users = User.objects.filter(account=account, is_root=False).order_by(Lower("name"), "pk")
        entries += [("User", u) for u in users.select_related("permissions_boundary")]
    if "Group" in wanted:
        entries += [
            ("Group", g) for g in Group.objects.filter(account=account).order_by(Lower("name"))
        ]
    if "Role" in wanted:
        roles = Role.objects.filter(account=account).order_by(Lower("name"), "pk")
        entries += [("Role", r) for r in roles.select_related("permissions_boundary")]
    policy_filter = Q()
    include_policies = False
    if "LocalManagedPolicy" in wanted:
        policy_filter |= Q(account=account)
        include_policies = True
    aws_in_use = Q(account_id=naming.AWS_MANAGED_ACCOUNT) & (
        Q(user_attachments__user__account=account)
        | Q(group_attachments__group__account=account)
        | Q(role_attachments__role__account=account)
        | Q(bounded_users__account=account)
        | Q(bounded_roles__account=account)
    )
    if "AWSManagedPolicy" in wanted:
        policy_filter |= aws_in_use
        include_policies = True
    if include_policies:
        policies = ManagedPolicy.objects.filter(policy_filter).distinct().order_by(Lower("name"))
        entries += [("Policy", p) for p in policies]

    page = paginate_list(entries, marker=marker, max_items=max_items)
    result: dict[str, Any] = {
        "UserDetailList": [],
        "GroupDetailList": [],
        "RoleDetailList": [],
        "Policies": [],
        "IsTruncated": page.is_truncated,
        "Marker": page.marker,
    }
    for kind, entity in page.items:
        if kind == "User":
            result["UserDetailList"].append(
                {
                    "Path": entity.path,
                    "UserName": entity.name,
                    "UserId": entity.unique_id,
                    "Arn": entity.arn,
                    "CreateDate": entity.created_at,
                    "UserPolicyList": inline(InlinePolicy.objects.filter(user=entity)),
                    "GroupList": list(
                        Group.objects.filter(memberships__user=entity)
                        .order_by(Lower("name"))
                        .values_list("name", flat=True)
                    ),
                    "AttachedManagedPolicies": attached(entity.policy_attachments),
                    "PermissionsBoundary": boundary(entity.permissions_boundary),
                    "Tags": list(entity.tags),
                }
            )
        elif kind == "Group":
            result["GroupDetailList"].append(
                {
                    "Path": entity.path,
                    "GroupName": entity.name,
                    "GroupId": entity.unique_id,
                    "Arn": entity.arn,
                    "CreateDate": entity.created_at,
                    "GroupPolicyList": inline(InlinePolicy.objects.filter(group=entity)),
                    "AttachedManagedPolicies": attached(entity.policy_attachments),
                }
            )
        elif kind == "Role":
            result["RoleDetailList"].append(
                {
                    "Path": entity.path,
                    "RoleName": entity.name,
                    "RoleId": entity.unique_id,
                    "Arn": entity.arn,
                    "CreateDate": entity.created_at,
                    "AssumeRolePolicyDocument": entity.assume_role_policy_document,
                    "InstanceProfileList": [
                        {
                            "InstanceProfileName": p.name,
                            "InstanceProfileId": p.unique_id,
                            "Arn": p.arn,
                            "Path": p.path,
                            "CreateDate": p.created_at,
                        }
                        for p in entity.instance_profiles.order_by(Lower("name"))
                    ],
                    "RolePolicyList": inline(InlinePolicy.objects.filter(role=entity)),
                    "AttachedManagedPolicies": attached(entity.policy_attachments),
                    "PermissionsBoundary": boundary(entity.permissions_boundary),
                    "Tags": list(entity.tags),
                    "RoleLastUsed": {
                        "LastUsedDate": entity.last_used_at,
                        "Region": entity.last_used_region,
                    }
                    if entity.last_used_at
                    else {},
                }
            )
        else:
            counts = policy_usage_in_account(policy=entity, account=account)
            versions = PolicyVersion.objects.filter(policy=entity).order_by("id")
            result["Policies"].append(
                {
                    "PolicyName": entity.name,
                    "PolicyId": entity.unique_id,
                    "Arn": entity.arn,
                    "Path": entity.path,
                    "DefaultVersionId": entity.default_version_id,
                    "AttachmentCount": counts[0],
                    "PermissionsBoundaryUsageCount": counts[1],
                    "IsAttachable": True,
                    "Description": entity.description,
                    "CreateDate": entity.created_at,
                    "UpdateDate": entity.updated_at,
                    "PolicyVersionList": [
                        {
                            "Document": v.document,
                            "VersionId": v.version_id,
                            "IsDefaultVersion": v.is_default,
                            "CreateDate": v.created_at,
                        }
                        for v in versions
                    ],
                }
            )
    return result


def policy_usage_in_account(*, policy: Any, account: Account) -> tuple[int, int]:
    """(attachment count, permissions-boundary usage count) of a managed policy as seen from
    ``account``. A customer policy's counters are its own; an AWS-managed policy is shared by
    every account, so its counts are computed for this account only — one tenant never learns
    how another uses a built-in."""
    if not policy.is_aws_managed:
        return policy.attachment_count, policy.permissions_boundary_usage_count
    attachments = (
        policy.user_attachments.filter(user__account=account).count()
        + policy.group_attachments.filter(group__account=account).count()
        + policy.role_attachments.filter(role__account=account).count()
    )
    boundaries = (
        policy.bounded_users.filter(account=account).count()
        + policy.bounded_roles.filter(account=account).count()
    )
    return attachments, boundaries

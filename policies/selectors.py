"""Reads: which policies apply to a principal, straight from the database (the truth).

The propagation issue publishes the same sources, compiled, to Redis; this module is what it
compiles from and what decisions fall back to when Redis has nothing current.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Q, QuerySet
from django.db.models.functions import Lower

from identity import naming
from identity.errors import NoSuchEntity, ValidationError
from identity.models import Account, Group, Role, TemporaryCredential, User
from identity.selectors import (
    DEFAULT_MAX_ITEMS,
    Page,
    group_by_name,
    paginate,
    paginate_list,
    path_filter,
    role_by_name,
    user_by_name,
)
from policies.engine import SourcedPolicy
from policies.models import (
    GroupPolicyAttachment,
    InlinePolicy,
    ManagedPolicy,
    PolicyVersion,
    RolePolicyAttachment,
    UserPolicyAttachment,
)


@dataclass(frozen=True)
class PolicySources:
    """The documents a principal's decisions are made from.

    ``boundary`` None means no permissions boundary; ``session`` None means no session policy
    (an empty list would mean a session policy that allows nothing).
    """

    identity: list[SourcedPolicy]
    boundary: list[SourcedPolicy] | None
    session: list[SourcedPolicy] | None


def inline_policy_id(owner_arn: str, name: str) -> str:
    return f"{owner_arn}#inline/{name}"


def default_document(policy: ManagedPolicy) -> str:
    return PolicyVersion.objects.get(policy=policy, is_default=True).document


def _boundary(policy: ManagedPolicy | None) -> list[SourcedPolicy] | None:
    if policy is None:
        return None
    return [SourcedPolicy(policy_id=policy.arn, document=default_document(policy))]


def _managed(filter_: Q) -> list[SourcedPolicy]:
    versions = (
        PolicyVersion.objects.filter(is_default=True)
        .filter(filter_)
        .select_related("policy")
        .distinct()
        .order_by("policy__id")
    )
    return [SourcedPolicy(policy_id=v.policy.arn, document=v.document) for v in versions]


def user_policy_sources(user: User) -> PolicySources:
    """Inline and attached policies of the user and of each of its groups, and its boundary."""
    identity: list[SourcedPolicy] = []
    for inline in InlinePolicy.objects.filter(user=user).order_by("name"):
        identity.append(
            SourcedPolicy(
                policy_id=inline_policy_id(user.arn, inline.name), document=inline.document
            )
        )
    group_inlines = (
        InlinePolicy.objects.filter(group__memberships__user=user)
        .select_related("group")
        .order_by("group__name", "name")
    )
    for inline in group_inlines:
        assert inline.group is not None
        identity.append(
            SourcedPolicy(
                policy_id=inline_policy_id(inline.group.arn, inline.name), document=inline.document
            )
        )
    identity.extend(
        _managed(
            Q(policy__user_attachments__user=user)
            | Q(policy__group_attachments__group__memberships__user=user)
        )
    )
    return PolicySources(
        identity=identity, boundary=_boundary(user.permissions_boundary), session=None
    )


def role_policy_sources(role: Role) -> PolicySources:
    identity = [
        SourcedPolicy(policy_id=inline_policy_id(role.arn, p.name), document=p.document)
        for p in InlinePolicy.objects.filter(role=role).order_by("name")
    ]
    identity.extend(_managed(Q(policy__role_attachments__role=role)))
    return PolicySources(
        identity=identity, boundary=_boundary(role.permissions_boundary), session=None
    )


def session_policy_sources(credential: TemporaryCredential) -> PolicySources:
    """A role session's role policies intersected with its session policies; a
    GetSessionToken session has its user's policies unchanged."""
    if credential.role_id is None:
        assert credential.user is not None
        return user_policy_sources(credential.user)
    base = role_policy_sources(credential.role)  # type: ignore[arg-type]
    session: list[SourcedPolicy] | None = None
    if credential.session_policy or credential.session_policy_arns:
        session = []
        if credential.session_policy:
            session.append(
                SourcedPolicy(
                    policy_id=f"{credential.access_key_id}#session-policy",
                    document=credential.session_policy,
                )
            )
        wanted = set(credential.session_policy_arns)
        names = [naming.parse_policy_arn(arn)[2] for arn in wanted]
        versions = PolicyVersion.objects.filter(
            is_default=True, policy__name__in=names
        ).select_related("policy")
        for version in versions:
            if version.policy.arn in wanted:
                session.append(
                    SourcedPolicy(policy_id=version.policy.arn, document=version.document)
                )
    return PolicySources(identity=base.identity, boundary=base.boundary, session=session)


# --- readers for the Query API and the console -------------------------------------------
# Pagination as in ``identity.selectors``: each returns a ``Page`` (items, is_truncated, marker).


class PolicyScope:
    """``Scope`` of ``ListPolicies``."""

    ALL = "All"
    AWS = "AWS"
    LOCAL = "Local"


def policy_by_arn(*, account: Account, policy_arn: str, for_update: bool = False) -> ManagedPolicy:
    """The managed policy ``policy_arn`` visible to ``account`` (its own or an AWS-managed one),
    or ``NoSuchEntity`` with IAM's message. A policy of another account is invisible."""
    policy_account, path, name = naming.parse_policy_arn(policy_arn)
    queryset = ManagedPolicy.objects.filter(account_id=policy_account, path=path, name=name)
    if policy_account not in (account.id, naming.AWS_MANAGED_ACCOUNT):
        queryset = queryset.none()
    if for_update:
        queryset = queryset.select_for_update(of=("self",))
    policy = queryset.first()
    if policy is None:
        raise NoSuchEntity(f"Policy {policy_arn} does not exist or is not attachable.")
    return policy


def get_policy(*, account: Account, policy_arn: str) -> ManagedPolicy:
    """``iam:GetPolicy``. For an AWS-managed policy, use ``policy_usage_in_account`` for the
    counts (its stored counters are shared by every account)."""
    return policy_by_arn(account=account, policy_arn=policy_arn)


def get_policy_version(*, account: Account, policy_arn: str, version_id: str) -> PolicyVersion:
    """``iam:GetPolicyVersion``."""
    policy = policy_by_arn(account=account, policy_arn=policy_arn)
    version = PolicyVersion.objects.filter(policy=policy, version_id=version_id).first()
    if version is None:
        raise NoSuchEntity(
            f"Policy {policy_arn} version {version_id} does not exist or is not attachable."
        )
    return version


def list_policies(
    *,
    account: Account,
    scope: str = PolicyScope.ALL,
    only_attached: bool = False,
    path_prefix: str = "/",
    policy_usage_filter: str | None = None,
    marker: str | None = None,
    max_items: int = DEFAULT_MAX_ITEMS,
) -> Page[ManagedPolicy]:
    """``iam:ListPolicies``: customer-managed (``Local``), AWS-managed (``AWS``) or both
    (``All``), optionally only those attached to something in this account
    (``OnlyAttached``), or used as a permissions policy / boundary (``PolicyUsageFilter``
    ``PermissionsPolicy`` / ``PermissionsBoundary``). Render an AWS-managed policy's counts
    with ``identity.selectors.policy_usage_in_account``: its stored counters are shared by all
    accounts."""
    if scope not in (PolicyScope.ALL, PolicyScope.AWS, PolicyScope.LOCAL):
        raise ValidationError(
            f"1 validation error detected: Value '{scope}' at 'scope' failed to satisfy "
            "constraint: Member must satisfy enum value set: [All, AWS, Local]"
        )
    if policy_usage_filter not in (None, "PermissionsPolicy", "PermissionsBoundary"):
        raise ValidationError(
            f"1 validation error detected: Value '{policy_usage_filter}' at "
            "'policyUsageFilter' failed to satisfy constraint: Member must satisfy enum value "
            "set: [PermissionsPolicy, PermissionsBoundary]"
        )
    owners = {
        PolicyScope.ALL: [account.id, naming.AWS_MANAGED_ACCOUNT],
        PolicyScope.AWS: [naming.AWS_MANAGED_ACCOUNT],
        PolicyScope.LOCAL: [account.id],
    }[scope]
    queryset = ManagedPolicy.objects.filter(account_id__in=owners)
    attached_here = (
        Q(user_attachments__user__account=account)
        | Q(group_attachments__group__account=account)
        | Q(role_attachments__role__account=account)
    )
    bounding_here = Q(bounded_users__account=account) | Q(bounded_roles__account=account)
    if only_attached or policy_usage_filter:
        if policy_usage_filter == "PermissionsPolicy":
            condition = attached_here
        elif policy_usage_filter == "PermissionsBoundary":
            condition = bounding_here
        else:
            condition = attached_here | bounding_here
        ids = ManagedPolicy.objects.filter(condition, account_id__in=owners).values("pk")
        queryset = queryset.filter(pk__in=ids)
    queryset = path_filter(queryset, path_prefix)
    return paginate(queryset, marker=marker, max_items=max_items)


def list_policy_versions(
    *,
    account: Account,
    policy_arn: str,
    marker: str | None = None,
    max_items: int = DEFAULT_MAX_ITEMS,
) -> Page[PolicyVersion]:
    """``iam:ListPolicyVersions``: newest first, as IAM lists them."""
    policy = policy_by_arn(account=account, policy_arn=policy_arn)
    versions = list(PolicyVersion.objects.filter(policy=policy).order_by("-id"))
    return paginate_list(versions, marker=marker, max_items=max_items)


def _attached(
    attachments: QuerySet[Any], *, path_prefix: str, marker: str | None, max_items: int
) -> Page[ManagedPolicy]:
    naming.validate_path_prefix(path_prefix)
    policies = [
        a.policy
        for a in attachments.select_related("policy").order_by(Lower("policy__name"), "pk")
        if a.policy.path.startswith(path_prefix)
    ]
    return paginate_list(policies, marker=marker, max_items=max_items)


def list_attached_user_policies(
    *,
    account: Account,
    user_name: str,
    path_prefix: str = "/",
    marker: str | None = None,
    max_items: int = DEFAULT_MAX_ITEMS,
) -> Page[ManagedPolicy]:
    """``iam:ListAttachedUserPolicies`` (items are ``ManagedPolicy``: name and ARN)."""
    user = user_by_name(account=account, user_name=user_name)
    return _attached(
        UserPolicyAttachment.objects.filter(user=user),
        path_prefix=path_prefix,
        marker=marker,
        max_items=max_items,
    )


def list_attached_group_policies(
    *,
    account: Account,
    group_name: str,
    path_prefix: str = "/",
    marker: str | None = None,
    max_items: int = DEFAULT_MAX_ITEMS,
) -> Page[ManagedPolicy]:
    """``iam:ListAttachedGroupPolicies``."""
    group = group_by_name(account=account, group_name=group_name)
    return _attached(
        GroupPolicyAttachment.objects.filter(group=group),
        path_prefix=path_prefix,
        marker=marker,
        max_items=max_items,
    )


def list_attached_role_policies(
    *,
    account: Account,
    role_name: str,
    path_prefix: str = "/",
    marker: str | None = None,
    max_items: int = DEFAULT_MAX_ITEMS,
) -> Page[ManagedPolicy]:
    """``iam:ListAttachedRolePolicies``."""
    role = role_by_name(account=account, role_name=role_name)
    return _attached(
        RolePolicyAttachment.objects.filter(role=role),
        path_prefix=path_prefix,
        marker=marker,
        max_items=max_items,
    )


def _inline_names(
    queryset: QuerySet[InlinePolicy], *, marker: str | None, max_items: int
) -> Page[str]:
    names = list(queryset.order_by("name").values_list("name", flat=True))
    return paginate_list(names, marker=marker, max_items=max_items)


def list_user_policies(
    *,
    account: Account,
    user_name: str,
    marker: str | None = None,
    max_items: int = DEFAULT_MAX_ITEMS,
) -> Page[str]:
    """``iam:ListUserPolicies``: the names of the user's inline policies."""
    user = user_by_name(account=account, user_name=user_name)
    return _inline_names(InlinePolicy.objects.filter(user=user), marker=marker, max_items=max_items)


def list_group_policies(
    *,
    account: Account,
    group_name: str,
    marker: str | None = None,
    max_items: int = DEFAULT_MAX_ITEMS,
) -> Page[str]:
    """``iam:ListGroupPolicies``."""
    group = group_by_name(account=account, group_name=group_name)
    return _inline_names(
        InlinePolicy.objects.filter(group=group), marker=marker, max_items=max_items
    )


def list_role_policies(
    *,
    account: Account,
    role_name: str,
    marker: str | None = None,
    max_items: int = DEFAULT_MAX_ITEMS,
) -> Page[str]:
    """``iam:ListRolePolicies``."""
    role = role_by_name(account=account, role_name=role_name)
    return _inline_names(InlinePolicy.objects.filter(role=role), marker=marker, max_items=max_items)


def _inline(queryset: QuerySet[InlinePolicy], *, owner: str, policy_name: str) -> InlinePolicy:
    policy = queryset.filter(name=policy_name).first()
    if policy is None:
        raise NoSuchEntity(f"The {owner} policy with name {policy_name} cannot be found.")
    return policy


def get_user_policy(*, account: Account, user_name: str, policy_name: str) -> InlinePolicy:
    """``iam:GetUserPolicy``: one inline policy of a user (case-sensitive name)."""
    user = user_by_name(account=account, user_name=user_name)
    return _inline(InlinePolicy.objects.filter(user=user), owner="user", policy_name=policy_name)


def get_group_policy(*, account: Account, group_name: str, policy_name: str) -> InlinePolicy:
    """``iam:GetGroupPolicy``."""
    group = group_by_name(account=account, group_name=group_name)
    return _inline(InlinePolicy.objects.filter(group=group), owner="group", policy_name=policy_name)


def get_role_policy(*, account: Account, role_name: str, policy_name: str) -> InlinePolicy:
    """``iam:GetRolePolicy``."""
    role = role_by_name(account=account, role_name=role_name)
    return _inline(InlinePolicy.objects.filter(role=role), owner="role", policy_name=policy_name)


@dataclass(frozen=True)
class PolicyEntities:
    """``ListEntitiesForPolicy``'s answer: ``PolicyGroups``, ``PolicyUsers``, ``PolicyRoles``
    of this account, paginated together (``MaxItems`` counts all three)."""

    groups: list[Group]
    users: list[User]
    roles: list[Role]
    is_truncated: bool
    marker: str | None


def list_entities_for_policy(
    *,
    account: Account,
    policy_arn: str,
    entity_filter: str | None = None,
    path_prefix: str = "/",
    policy_usage_filter: str | None = None,
    marker: str | None = None,
    max_items: int = DEFAULT_MAX_ITEMS,
) -> PolicyEntities:
    """``iam:ListEntitiesForPolicy``: the users, groups and roles of this account the policy
    is attached to (``PermissionsPolicy``) or bounds (``PermissionsBoundary``).
    ``entity_filter`` is ``User``, ``Role``, ``Group``, ``LocalManagedPolicy`` or
    ``AWSManagedPolicy`` (the last two: no entities, as in IAM)."""
    policy = policy_by_arn(account=account, policy_arn=policy_arn)
    naming.validate_path_prefix(path_prefix)
    as_boundary = policy_usage_filter == "PermissionsBoundary"
    entries: list[tuple[str, Any]] = []
    if entity_filter in (None, "Group") and not as_boundary:
        groups = Group.objects.filter(account=account, policy_attachments__policy=policy)
        entries += [("group", g) for g in groups.order_by(Lower("name"), "pk")]
    if entity_filter in (None, "User"):
        users = User.objects.filter(account=account, is_root=False)
        users = (
            users.filter(permissions_boundary=policy)
            if as_boundary
            else users.filter(policy_attachments__policy=policy)
        )
        entries += [("user", u) for u in users.order_by(Lower("name"), "pk")]
    if entity_filter in (None, "Role"):
        roles = Role.objects.filter(account=account)
        roles = (
            roles.filter(permissions_boundary=policy)
            if as_boundary
            else roles.filter(policy_attachments__policy=policy)
        )
        entries += [("role", r) for r in roles.order_by(Lower("name"), "pk")]
    entries = [e for e in entries if e[1].path.startswith(path_prefix)]
    page = paginate_list(entries, marker=marker, max_items=max_items)
    return PolicyEntities(
        groups=[e for k, e in page.items if k == "group"],
        users=[e for k, e in page.items if k == "user"],
        roles=[e for k, e in page.items if k == "role"],
        is_truncated=page.is_truncated,
        marker=page.marker,
    )

"""Reads: which policies apply to a principal, straight from the database (the truth).

The propagation issue publishes the same sources, compiled, to Redis; this module is what it
compiles from and what decisions fall back to when Redis has nothing current.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Q

from identity import naming
from identity.models import Role, TemporaryCredential, User
from policies.engine import SourcedPolicy
from policies.models import InlinePolicy, ManagedPolicy, PolicyVersion


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

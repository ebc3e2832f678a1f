"""Authorization: the one place the console, the Query API and the decision API ask the engine.

``authorize`` builds the request context AWS defines for the acting principal, evaluates the
principal's compiled policy set and raises ``AccessDenied`` with AWS's message when the answer
is not an allow. Any error while deciding is a deny (fail closed).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from audit.context import Actor
from identity.errors import AccessDenied
from identity.models import Role, TemporaryCredential, User
from policies import engine
from policies.selectors import PolicySources, session_policy_sources, user_policy_sources

logger = logging.getLogger(__name__)


def principal_for(actor: Actor) -> engine.Principal:
    """The engine's view of an acting principal."""
    if actor.kind == "root":
        return engine.Principal(arn=actor.arn, account=actor.account_id, kind="root")
    if actor.session is not None and actor.session.role_id is not None:
        credential: TemporaryCredential = actor.session
        role: Role = credential.role  # type: ignore[assignment]
        tags = {t["Key"]: t["Value"] for t in role.tags}
        tags.update({t["Key"]: t["Value"] for t in credential.session_tags})
        return engine.Principal(
            arn=actor.arn,
            account=actor.account_id,
            kind="role_session",
            user_id=f"{role.unique_id}:{credential.session_name}",
            role_arn=role.arn,
            tags=tags,
        )
    user: User = actor.user
    return engine.Principal(
        arn=actor.arn,
        account=actor.account_id,
        kind="user",
        user_id=user.unique_id,
        username=user.name,
        tags={t["Key"]: t["Value"] for t in user.tags},
    )


def sources_for(actor: Actor) -> PolicySources:
    if actor.session is not None:
        return session_policy_sources(actor.session)
    return user_policy_sources(actor.user)


def global_context(actor: Actor) -> dict[str, Any]:
    """The global condition keys of a request (IAM User Guide, "AWS global condition context
    keys"). ``aws:MultiFactorAuthPresent`` is absent, not false, for long-term access keys,
    which is why AWS's deny-without-MFA example uses ``BoolIfExists``."""
    now = datetime.now(UTC)
    context: dict[str, Any] = {
        "aws:CurrentTime": now,
        "aws:EpochTime": int(now.timestamp()),
        "aws:SecureTransport": actor.meta.secure_transport,
        "aws:PrincipalType": {
            "root": "Account",
            "user": "User",
            "role_session": "AssumedRole",
            "federated_user": "FederatedUser",
        }.get(actor.kind, actor.kind),
    }
    if actor.meta.source_ip:
        context["aws:SourceIp"] = actor.meta.source_ip
    if actor.meta.user_agent:
        context["aws:UserAgent"] = actor.meta.user_agent
    session: TemporaryCredential | None = actor.session
    if session is not None:
        context["aws:TokenIssueTime"] = session.issued_at
        context["aws:MultiFactorAuthPresent"] = session.mfa_authenticated
        if session.mfa_authenticated_at:
            context["aws:MultiFactorAuthAge"] = int(
                (now - session.mfa_authenticated_at).total_seconds()
            )
        if session.source_identity:
            context["aws:SourceIdentity"] = session.source_identity
    elif actor.mfa_authenticated_at is not None:
        context["aws:MultiFactorAuthPresent"] = True
        context["aws:MultiFactorAuthAge"] = int((now - actor.mfa_authenticated_at).total_seconds())
    elif actor.kind in ("root", "user") and not actor.access_key_id:
        # A console session without MFA: AWS sets the key to false (it is absent only for
        # long-term access keys).
        context["aws:MultiFactorAuthPresent"] = False
    return context


def compiled_policy_set(actor: Actor) -> engine.CompiledPolicySet:
    sources = sources_for(actor)
    return engine.compile_policy_set(
        identity=sources.identity, boundary=sources.boundary, session=sources.session
    )


def decide(
    actor: Actor,
    action: str,
    resource: str,
    *,
    context: Mapping[str, Any] | None = None,
    resource_policy: engine.CompiledResourcePolicy | None = None,
    policy_set: engine.CompiledPolicySet | None = None,
) -> engine.Decision:
    """The engine's decision for one request; errors become an explicit deny.

    ``policy_set``: the actor's compiled set when the caller already holds it (the console
    compiles it once per page and asks several questions of it)."""
    try:
        principal = principal_for(actor)
        full_context = global_context(actor)
        if context:
            full_context.update(context)
        request = engine.Request(
            principal=principal, action=action, resource=resource, context=full_context
        )
        if actor.kind == "root":
            policy_set = engine.compile_policy_set(identity=[])
        elif policy_set is None:
            policy_set = compiled_policy_set(actor)
        return engine.evaluate(policy_set, request, resource_policy=resource_policy)
    except Exception:
        logger.exception(
            "authorization failed for %s %s on %s; denying", actor.arn, action, resource
        )
        return engine.Decision(
            decision="explicitDeny",
            matched_statements=(),
            missing_context_values=(),
            deny_reason="evaluation error",
        )


def authorize(
    actor: Actor,
    action: str,
    resource: str,
    *,
    context: Mapping[str, Any] | None = None,
    resource_policy: engine.CompiledResourcePolicy | None = None,
    policy_set: engine.CompiledPolicySet | None = None,
) -> engine.Decision:
    """Decide and raise ``AccessDenied`` (AWS's message) unless allowed."""
    decision = decide(
        actor,
        action,
        resource,
        context=context,
        resource_policy=resource_policy,
        policy_set=policy_set,
    )
    if not decision.allowed:
        raise AccessDenied(engine.access_denied_message(actor.arn, action, resource, decision))
    return decision

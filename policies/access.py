"""Authorization: the one place the console, the Query API and the decision API ask the engine.

``authorize`` builds the request context AWS defines for the acting principal, evaluates the
principal's compiled policy set and raises ``AccessDenied`` with AWS's message when the answer
is not an allow. Any error while deciding is a deny (fail closed).

Compiled sets come from the compiled-policy store (``policies.store``: Redis, kept current by
the propagation tasks) when it holds one it may trust, and are computed from PostgreSQL
otherwise (no entry, a stale one, one older than an unpropagated change, Redis unreachable, or
the embedded default without Redis).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from audit.context import Actor
from identity.errors import AccessDenied
from identity.models import Role, TemporaryCredential, User
from policies import engine, propagation, store
from policies.selectors import PolicySources, session_policy_sources, user_policy_sources

logger = logging.getLogger(__name__)

AWS_MANAGED_PREFIX = "arn:aws:iam::aws:"


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


# aws:PrincipalType by actor kind (IAM User Guide, "AWS global condition context keys").
_PRINCIPAL_TYPES = {
    "root": "Account",
    "user": "User",
    "role_session": "AssumedRole",
    "federated_user": "FederatedUser",
}


def global_context(actor: Actor) -> dict[str, Any]:
    """The global condition keys of a request (IAM User Guide, "AWS global condition context
    keys"). ``aws:MultiFactorAuthPresent`` is absent, not false, for long-term access keys,
    which is why AWS's deny-without-MFA example uses ``BoolIfExists``."""
    now = datetime.now(UTC)
    context: dict[str, Any] = {
        "aws:CurrentTime": now,
        "aws:EpochTime": int(now.timestamp()),
        "aws:SecureTransport": actor.meta.secure_transport,
        "aws:PrincipalType": _PRINCIPAL_TYPES.get(actor.kind, actor.kind),
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


def _store_key(actor: Actor) -> str | None:
    """The store entry an actor's set comes from, or None when it must be computed (a session
    with session policies: those live on the credential, not in the store)."""
    session: TemporaryCredential | None = actor.session
    if session is not None:
        if session.session_policy or session.session_policy_arns:
            return None
        if session.role_id is not None:
            return session.role.unique_id  # type: ignore[union-attr]
        return session.user.unique_id if session.user is not None else None
    return actor.user.unique_id if actor.user is not None else None


def stored_policy_set(actor: Actor) -> engine.CompiledPolicySet | None:
    """The actor's set from the store when it holds a trusted one; None otherwise."""
    if not store.enabled():
        return None
    key = _store_key(actor)
    if key is None:
        return None
    try:
        entry = store.read(unique_id=key)
    except store.StoreUnavailable:
        return None
    if entry is None:
        return None
    if entry.tomb:
        # A tombstone: the principal was deleted. Nothing allows.
        return engine.compile_policy_set(identity=[])
    return entry.policy_set


def compiled_policy_set_from_database(actor: Actor) -> engine.CompiledPolicySet:
    """The actor's set compiled from PostgreSQL (the truth), bypassing the store."""
    sources = sources_for(actor)
    return engine.compile_policy_set(
        identity=sources.identity, boundary=sources.boundary, session=sources.session
    )


def compiled_policy_set(actor: Actor) -> engine.CompiledPolicySet:
    """The actor's set: from the store when it holds a trusted one, else from PostgreSQL."""
    stored = stored_policy_set(actor)
    if stored is not None:
        return stored
    return compiled_policy_set_from_database(actor)


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
            principal=principal,
            action=action,
            resource=resource,
            context=full_context,
            # AWS-managed policies (arn:aws:iam::aws:policy/...) are readable and attachable in
            # every account on identity policies alone: they are not another account's resource.
            resource_account=actor.account_id if resource.startswith(AWS_MANAGED_PREFIX) else None,
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


# --- decisions about a principal named by ARN (the decision API) -----------------------------

ERROR_DECISION = engine.Decision(
    decision="explicitDeny",
    matched_statements=(),
    missing_context_values=(),
    deny_reason="evaluation error",
)


class UnknownPrincipal(Exception):
    """No user or role has this ARN (as of the decision's change sequence)."""


@dataclass(frozen=True)
class PrincipalDecision:
    """A decision for a principal named by ARN, with the change sequence it reflects and
    where the principal's set came from (``store`` or ``database``). ``error`` is set when the
    decision could not be made: it is then an explicit deny."""

    decision: engine.Decision
    sequence: int
    source: str
    error: str = ""


def _principal_from_facts(facts: Mapping[str, Any]) -> engine.Principal:
    if facts["kind"] == "root":
        return engine.Principal(arn=facts["arn"], account=facts["account"], kind="root")
    if facts["kind"] == "role":
        # A role is decided as one of its sessions would be (SimulatePrincipalPolicy does the
        # same for a role ARN).
        return engine.Principal(
            arn=facts["arn"],
            account=facts["account"],
            kind="role_session",
            user_id=facts["role_id"],
            role_arn=facts["arn"],
            tags=facts.get("tags") or {},
        )
    return engine.Principal(
        arn=facts["arn"],
        account=facts["account"],
        kind="user",
        user_id=facts["user_id"],
        username=facts["username"],
        tags=facts.get("tags") or {},
    )


def principal_set(
    principal_arn: str, *, prefetched: Mapping[str, store.StoredSet | None] | None = None
) -> tuple[engine.Principal, engine.CompiledPolicySet, int, str]:
    """(the engine's principal, compiled set, change sequence, source) of a user, role or root
    user named by ARN: from the store when it has a trusted entry, else from PostgreSQL. Raises
    ``UnknownPrincipal``; any other error propagates (the caller denies)."""
    if store.enabled():
        if prefetched is not None and principal_arn in prefetched:
            entry = prefetched[principal_arn]
        else:
            try:
                entry = store.read(arn=principal_arn)
            except store.StoreUnavailable:
                entry = None
        if entry is not None and entry.policy_set is not None:
            principal = entry.derived.get("principal")
            if principal is None:
                principal = entry.derived["principal"] = _principal_from_facts(entry.facts)
            return principal, entry.policy_set, entry.stamp, "store"
    computed = propagation.compute_from_database(arn=principal_arn)
    if computed is None:
        raise UnknownPrincipal(principal_arn)
    principal = _principal_from_facts(computed.facts)
    return principal, computed.policy_set, computed.stamp, "database"


def decide_for_principal(
    principal_arn: str,
    action: str,
    resource: str,
    *,
    context: Mapping[str, Any] | None = None,
    prefetched: Mapping[str, store.StoredSet | None] | None = None,
) -> PrincipalDecision:
    """The decision for ``principal_arn`` doing ``action`` on ``resource``. The global keys a
    request always has (aws:CurrentTime, aws:EpochTime, aws:PrincipalType; the engine adds the
    principal's own) come first and ``context`` may override them. Raises ``UnknownPrincipal``;
    every other failure is an explicit deny carrying ``error``. ``prefetched``: store entries
    a batch read in one round trip (``store.read_many_by_arn``)."""
    try:
        principal, policy_set, sequence, source = principal_set(
            principal_arn, prefetched=prefetched
        )
    except UnknownPrincipal:
        raise
    except Exception as exc:
        logger.exception("no policy set for %s; denying", principal_arn)
        return PrincipalDecision(ERROR_DECISION, 0, "error", f"{type(exc).__name__}: {exc}")
    try:
        now = datetime.now(UTC)
        full_context: dict[str, Any] = {
            "aws:CurrentTime": now,
            "aws:EpochTime": int(now.timestamp()),
        }
        if context:
            full_context.update(context)
        request = engine.Request(
            principal=principal, action=action, resource=resource, context=full_context
        )
        decision = engine.evaluate(policy_set, request)
    except Exception as exc:
        logger.exception("evaluation failed for %s %s on %s", principal_arn, action, resource)
        return PrincipalDecision(ERROR_DECISION, sequence, source, f"{type(exc).__name__}: {exc}")
    if decision.deny_reason == "evaluation error":
        return PrincipalDecision(decision, sequence, source, "the request could not be evaluated")
    return PrincipalDecision(decision, sequence, source)


def prefetch_principals(principal_arns: list[str]) -> dict[str, store.StoredSet | None]:
    """Store entries of several principals in one Redis round trip, for a batch of decisions;
    empty when there is no store or it cannot be reached (each is then read on its own)."""
    if not store.enabled() or not principal_arns:
        return {}
    try:
        return store.read_many_by_arn(principal_arns)
    except store.StoreUnavailable:
        return {}

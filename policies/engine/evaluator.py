"""Compiling policy sets and deciding requests, as AWS documents its evaluation logic.

https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic_policy-eval-denyallow.html
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic-cross-account.html

In short: an explicit Deny in any policy wins. Otherwise, within one account, an Allow in
the identity-based policies *or* in the resource-based policy allows, but an identity-based
Allow only counts when the permissions boundary (if set) and the session policy (if
present) allow too. A resource-based policy that names an IAM user's ARN or a role
session's ARN grants even when the boundary or session policy would not; one that names
the role's ARN is limited by them. Across accounts both the identity side and the resource
policy must allow. Everything else is an implicit deny.

Portcullis has no SCPs or RCPs, so the account root user is allowed everything in its own
account unless a resource-based policy explicitly denies it; identity policies, boundaries
and session policies never apply to root ("By default, all requests are implicitly denied
with the exception of the AWS account root user, which has full access.").

Speed: a compiled set indexes its statements by exact action, by service prefix and a
fallback list (``*``, NotAction, service wildcards); the statements that can apply to an
action are computed once per distinct action string and memoised (bounded) as a plan, so a
decision walks only those. For users and role sessions without a resource-based policy,
``evaluate`` then tests every Deny that can apply but stops at the first matching Allow,
finding unconditional statements by ``*``, exact ARN or ARN prefix without testing them one
by one; the returned Decision works out its matched statements and missing context keys
with the full scan (``_evaluate_identity``) when first asked. The memo is the only thing
that changes after compile; it holds immutable objects, a racing thread at worst computes
the same entry twice, and results never depend on it. README.md has the figures.

Errors fail closed: ``evaluate`` never raises. A condition it cannot evaluate is false in an
Allow and true in a Deny (see conditions.py); any other unexpected error yields
``Decision("explicitDeny", ..., deny_reason="evaluation error")``: we cannot know that no
Deny would have matched, so we report the strongest denial rather than a plain implicit one.
"""

from __future__ import annotations

import json
from bisect import bisect_right as _bisect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any, Literal

from .conditions import CompiledCondition, _network, parse_operator
from .model import ConditionClause, Policy, PolicyType, PrincipalSpec, Statement, build_frozen
from .parser import parse_policy
from .patterns import Pattern, shared_pattern
from .patterns import _compiled as _compiled_regex

PolicyKind = Literal["identity", "boundary", "session", "resource", "trust"]
DecisionKind = Literal["allowed", "explicitDeny", "implicitDeny"]
PrincipalKind = Literal["root", "user", "role_session", "federated_user", "service", "anonymous"]

_MEMO_LIMIT = 4096


@dataclass(frozen=True)
class SourcedPolicy:
    """A policy document and where it came from (a managed policy ARN, or e.g.
    ``user/alice:inline/MyPolicy``). The document is parsed when compiled if it is text."""

    policy_id: str
    document: Policy | str | Mapping[str, Any]


@dataclass(frozen=True)
class MatchedStatement:
    policy_id: str
    policy_kind: PolicyKind
    statement_index: int
    sid: str | None
    effect: Literal["Allow", "Deny"]


class Decision:
    """The outcome of one request and what decided it.

    ``matched_statements``: the Allow statements that matched when allowed, the Deny
    statements that matched on an explicit deny, nothing on an implicit deny.
    ``missing_context_values``: the condition keys a statement needed but the request did
    not have (AWS's simulator field of that name).
    ``deny_reason``: "" when allowed; the kind of policy holding the Deny ("identity-based
    policy", "permissions boundary", "session policy", "resource-based policy") on an
    explicit deny; AWS's "no identity-based policy allows the <action> action" (or
    boundary, session policy, resource-based policy) on an implicit deny.

    Immutable, compared and hashed by those four fields like the dataclass it replaces.
    ``evaluate`` decides with as little work as the outcome needs (the first matching Allow
    is enough to allow) and leaves ``matched_statements`` and ``missing_context_values`` to
    be worked out on first access, from the compiled set and the request it keeps: so do
    not change a Request (or its context) after evaluating it if you will read them.
    """

    __slots__ = ("_kind", "_matched", "_missing", "_reason", "_request", "_set")
    __match_args__ = ("decision", "matched_statements", "missing_context_values", "deny_reason")

    _kind: DecisionKind
    _matched: tuple[MatchedStatement, ...]
    _missing: tuple[str, ...]
    _reason: str
    # Set while the details are still to be worked out (see _work_out).
    _set: CompiledPolicySet | None
    _request: Request | None

    def __init__(
        self,
        decision: DecisionKind,
        matched_statements: tuple[MatchedStatement, ...] = (),
        missing_context_values: tuple[str, ...] = (),
        deny_reason: str = "",
    ) -> None:
        self._kind = decision
        self._matched = matched_statements
        self._missing = missing_context_values
        self._reason = deny_reason
        self._set = None
        self._request = None

    @property
    def decision(self) -> DecisionKind:
        return self._kind

    @property
    def deny_reason(self) -> str:
        return self._reason

    @property
    def allowed(self) -> bool:
        return self._kind == "allowed"

    @property
    def matched_statements(self) -> tuple[MatchedStatement, ...]:
        if self._set is not None:
            self._work_out()
        return self._matched

    @property
    def missing_context_values(self) -> tuple[str, ...]:
        if self._set is not None:
            self._work_out()
        return self._missing

    def _work_out(self) -> None:
        policy_set, request = self._set, self._request
        if policy_set is None or request is None:
            return
        # The full scan finds every matching statement and every missing key, in policy
        # order; it reaches the same outcome (the tests hold both paths to that). Two threads
        # may both get here: they compute the same values, and _set is cleared last.
        try:
            full = _evaluate_identity(policy_set, request)
        except Exception:
            # The outcome stands (it was decided without error); only the details are lost.
            full = _ERROR
        self._matched = full._matched
        self._missing = full._missing
        self._request = None
        self._set = None

    def _fields(self) -> tuple[str, tuple[MatchedStatement, ...], tuple[str, ...], str]:
        return (
            self._kind,
            self.matched_statements,
            self.missing_context_values,
            self._reason,
        )

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not Decision:
            return NotImplemented
        assert isinstance(other, Decision)
        return self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def __repr__(self) -> str:
        return (
            f"Decision(decision={self._kind!r}, matched_statements={self.matched_statements!r}, "
            f"missing_context_values={self.missing_context_values!r}, "
            f"deny_reason={self._reason!r})"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (Decision, self._fields())


@dataclass
class Principal:
    """Who is asking. For role sessions ``arn`` is the session's
    ``arn:aws:sts::<acct>:assumed-role/<role>/<session>`` and ``role_arn`` the role's ARN.
    For a web-identity caller of AssumeRoleWithWebIdentity use ``kind="federated_user"``
    with ``arn`` the identity provider's ARN (what a trust policy's ``Federated`` names);
    for a service, ``kind="service"`` and ``arn`` the service principal name."""

    arn: str
    account: str
    kind: PrincipalKind
    user_id: str = ""
    role_arn: str | None = None
    username: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass
class Request:
    """One authorization question. ``context`` holds condition keys (looked up
    case-insensitively); the engine derives aws:username, aws:userid, aws:PrincipalArn,
    aws:PrincipalAccount, aws:PrincipalType and aws:PrincipalTag/* from the principal when
    the context does not give them."""

    principal: Principal
    action: str
    resource: str = "*"
    context: Mapping[str, Any] = field(default_factory=dict)
    resource_account: str | None = None


# ---- request context --------------------------------------------------------------------

_PRINCIPAL_TYPES = {
    "root": "Account",
    "user": "User",
    "role_session": "AssumedRole",
    "federated_user": "FederatedUser",
    "service": "Service",
    "anonymous": "Anonymous",
}


_UNSET: Any = object()
_SEQUENCE = (list, tuple)  # not ``list | tuple``, which builds a union each time it runs


class _Ctx:
    """Case-insensitive view of a request's context plus the keys derived from it."""

    __slots__ = ("_lc", "_principal", "_raw")

    def __init__(self, request: Request) -> None:
        self._raw = request.context
        self._lc: dict[str, Any] | None = None
        self._principal = request.principal

    def _derived(self, key: str) -> Any:
        p = self._principal
        if key == "aws:username":
            return p.username if p.kind == "user" and p.username else None
        if key == "aws:userid":
            return p.user_id or None
        if key == "aws:principalarn":
            if p.kind == "role_session" and p.role_arn:
                return p.role_arn
            return p.arn if p.kind != "anonymous" else None
        if key == "aws:principalaccount":
            return p.account or None
        if key == "aws:principaltype":
            return _PRINCIPAL_TYPES.get(p.kind)
        if key.startswith("aws:principaltag/"):
            wanted = key[len("aws:principaltag/") :]
            for tag, value in p.tags.items():
                if tag.lower() == wanted:
                    return value
        return None

    def values(self, key: str, spelled: str | None = None) -> Sequence[Any] | None:
        """The values of ``key`` (lower-cased); ``spelled`` is the policy's spelling, tried
        first against the request as given, which usually spells keys the same way."""
        if spelled is not None:
            value = self._raw.get(spelled, _UNSET)
            if value is not _UNSET:
                if value is None:
                    return None
                return value if isinstance(value, _SEQUENCE) else (value,)
        lc = self._lc
        if lc is None:
            raw = self._raw
            lc = self._lc = {k.lower(): v for k, v in raw.items()} if raw else {}
        value = lc.get(key, _UNSET)
        if value is _UNSET:
            value = self._derived(key) if key.startswith("aws:") else None
            lc[key] = value
        if value is None:
            return None
        if isinstance(value, _SEQUENCE):
            return value
        return (value,)

    def var(self, key: str) -> str | None:
        vals = self.values(key)
        if not vals or len(vals) != 1:
            return None
        value = vals[0]
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, str):
            return value
        if hasattr(value, "isoformat"):
            return str(value.isoformat())
        return str(value)


# ---- compiled statements ----------------------------------------------------------------

_RES_ALWAYS = 0
_RES_SINGLE = 1
_RES_GENERAL = 2
_RES_NEVER = 3

_DIRECT = 1  # the resource policy names this principal (or "*"): grants on its own
_ROLE = 2  # names the role of this session: limited by boundary and session policy
_ACCOUNT = 3  # names the principal's account: the account must delegate (identity allow)


class _Interned:
    """Compiled conditions shared by the statements of one compile, so equal ones are built
    once and a decision evaluates each one once however many statements repeat it (MFA
    conditions, say). Patterns are shared process-wide (``shared_pattern``)."""

    __slots__ = ("conditions",)

    def __init__(self) -> None:
        self.conditions: dict[tuple[Any, ...], CompiledCondition] = {}

    def condition(self, clause: ConditionClause, variables: bool, deny: bool) -> CompiledCondition:
        # Values keyed with their types: 1, 1.0 and true are equal in Python but not to a
        # condition (StringEquals compares "1" with "1.0"; Numeric rejects a boolean).
        values = tuple((v.__class__, v) for v in clause.values)
        key = (clause.operator, clause.key.lower(), values, variables, deny)
        found = self.conditions.get(key)
        if found is None:
            found = self.conditions[key] = CompiledCondition(clause, variables=variables, deny=deny)
        return found


class _CStmt:
    __slots__ = (
        "actions",
        "conds",
        "deny",
        "ms",
        "not_action",
        "not_principal",
        "not_resource",
        "order",
        "principal",
        "res_mode",
        "res_patterns",
        "res_single",
    )

    def __init__(
        self,
        stmt: Statement,
        variables: bool,
        policy_id: str,
        kind: PolicyKind,
        order: int,
        interned: _Interned,
    ) -> None:
        self.ms = build_frozen(
            MatchedStatement,
            policy_id=policy_id,
            policy_kind=kind,
            statement_index=stmt.index,
            sid=stmt.sid,
            effect=stmt.effect,
        )
        deny = self.deny = stmt.effect == "Deny"
        self.order = order
        self.actions = tuple([shared_pattern(a, False, True, False) for a in stmt.actions])
        self.not_action = stmt.not_action
        not_resource = self.not_resource = stmt.not_resource
        self.res_patterns: tuple[Pattern, ...] = ()
        self.res_single: Any = None
        resources = stmt.resources
        if resources is None:
            self.res_mode = _RES_ALWAYS
        else:
            pats = self.res_patterns = tuple(
                [shared_pattern(r, True, False, variables) for r in resources]
            )
            first = pats[0]
            if len(pats) == 1 and first.static is not None and not first.is_any:
                if not_resource:
                    self.res_mode = _RES_GENERAL
                else:
                    self.res_mode = _RES_SINGLE
                    self.res_single = first.static
            elif any(p.is_any for p in pats):
                self.res_mode = _RES_NEVER if not_resource else _RES_ALWAYS
            else:
                self.res_mode = _RES_GENERAL
        conditions = stmt.conditions
        if conditions:
            condition = interned.condition
            self.conds: tuple[CompiledCondition, ...] = tuple(
                [condition(c, variables, deny) for c in conditions]
            )
        else:
            self.conds = ()
        self.principal: PrincipalSpec | None = stmt.principal
        self.not_principal = stmt.not_principal

    def action_applies(self, action_lower: str) -> bool:
        hit = False
        for p in self.actions:
            if p.match(action_lower, None):
                hit = True
                break
        return hit != self.not_action

    def resource_applies(self, resource: str, lookup: Any) -> bool:
        hit = False
        for p in self.res_patterns:
            static = p.static
            if static(resource) if static is not None else p.match(resource, lookup):
                hit = True
                break
        return hit != self.not_resource


class _AnyOf:
    """Answers "does any of these statements apply to this resource?" as cheaply as the
    statements allow, for the fast path, which needs only that answer: unconditional
    statements by ``*``, by exact resource (a set) and by literal prefix (one bisect in a
    sorted, prefix-free list), then the rest one by one, unconditional ones first."""

    __slots__ = ("always", "exact", "prefixes", "rest")

    def __init__(self, stmts: Sequence[_CStmt]) -> None:
        always = False
        exact: set[str] = set()
        prefixes: set[str] = set()
        plain: list[_CStmt] = []
        conditional: list[_CStmt] = []
        for st in stmts:
            mode = st.res_mode
            if mode == _RES_NEVER:
                continue
            if st.conds:
                conditional.append(st)
            elif mode == _RES_ALWAYS:
                always = True
            elif mode == _RES_SINGLE and st.res_patterns[0].literal is not None:
                exact.add(st.res_patterns[0].literal)
            elif mode == _RES_SINGLE and st.res_patterns[0].prefix_only:
                prefixes.add(st.res_patterns[0].prefix)
            else:
                plain.append(st)
        self.always = always
        self.exact = frozenset(exact)
        # Keep only prefixes no shorter one covers: in a prefix-free sorted list the one
        # prefix of a value that can be present is the entry just before the value's place.
        kept: list[str] = []
        for prefix in sorted(prefixes):
            if not kept or not prefix.startswith(kept[-1]):
                kept.append(prefix)
        self.prefixes = tuple(kept)
        self.rest = tuple(plain + conditional)

    def any_applies(self, resource: str, scan: Any) -> bool:
        """``scan`` is the decision's _Scan; it may be None when ``rest`` is empty."""
        if self.always or resource in self.exact:
            return True
        prefixes = self.prefixes
        if prefixes:
            i = _bisect(prefixes, resource)
            if i and resource.startswith(prefixes[i - 1]):
                return True
        for st in self.rest:
            mode = st.res_mode
            if mode == _RES_SINGLE:
                if not st.res_single(resource):
                    continue
            elif mode == _RES_GENERAL:
                hit = False
                for pattern in st.res_patterns:
                    static = pattern.static
                    if (
                        static(resource)
                        if static is not None
                        else pattern.match(resource, scan.var)
                    ):
                        hit = True
                        break
                if hit == st.not_resource:
                    continue
            conds = st.conds
            if conds:
                cache = scan.cond_cache
                if cache is None:
                    cache = scan.cond_cache = {}
                ok = True
                for c in conds:
                    result = cache.get(c)
                    if result is None:
                        result = cache[c] = c.test(scan.context())
                    if not result:
                        ok = False
                        break
                if not ok:
                    continue
            return True
        return False


class _Plan:
    """The statements of one kind that can apply to one action.

    For the full scan (which reports every match) they are pre-sorted by how cheaply each
    can be decided: always (resource "*", no condition), by exact resource, by a resource
    prefix, or the general path (other patterns, variables, conditions). For the fast path
    the Deny and Allow statements are kept apart, each as an :class:`_AnyOf`.
    """

    __slots__ = (
        "allows",
        "always",
        "conditional",
        "denies",
        "empty",
        "exact",
        "general",
        "needs_scan",
        "prefix",
    )

    def __init__(self, stmts: tuple[_CStmt, ...]) -> None:
        always: list[_CStmt] = []
        exact: dict[str, list[_CStmt]] = {}
        prefix: list[tuple[Any, _CStmt]] = []
        general: list[_CStmt] = []
        for st in stmts:
            if st.conds:
                general.append(st)
            elif st.res_mode == _RES_ALWAYS:
                always.append(st)
            elif st.res_mode == _RES_NEVER:
                continue
            elif st.res_mode == _RES_SINGLE and st.res_patterns[0].literal is not None:
                exact.setdefault(st.res_patterns[0].literal, []).append(st)
            elif st.res_mode == _RES_SINGLE:
                prefix.append((st.res_single, st))
            else:
                general.append(st)
        self.always = tuple(always)
        self.exact = {k: tuple(v) for k, v in exact.items()}
        self.prefix = tuple(prefix)
        self.general = tuple(general)
        self.empty = not (always or exact or prefix or general)
        # Whether a scan can evaluate a condition, and so report a missing context key.
        self.conditional = any(st.conds and st.res_mode != _RES_NEVER for st in stmts)
        denies = [st for st in stmts if st.deny]
        self.denies = _AnyOf(denies) if denies else None
        allows = [st for st in stmts if not st.deny]
        self.allows = _AnyOf(allows) if allows else None
        # Whether the fast path may test a statement one by one (and so need the context).
        self.needs_scan = bool(
            (self.denies is not None and self.denies.rest)
            or (self.allows is not None and self.allows.rest)
        )


class _Index:
    """Statements of one kind, indexed by action, with a memo of per-action plans."""

    __slots__ = ("by_service", "exact", "fallback", "memo", "stmts")

    def __init__(self, stmts: list[_CStmt]) -> None:
        self.stmts = stmts
        self.exact: dict[str, list[int]] = {}
        self.by_service: dict[str, list[tuple[int, Pattern]]] = {}
        self.fallback: list[int] = []
        for i, s in enumerate(stmts):
            if s.not_action:
                self.fallback.append(i)
                continue
            for p in s.actions:
                src = p.source.lower()
                if p.literal is not None:
                    self.exact.setdefault(src, []).append(i)
                    continue
                service, sep, _ = src.partition(":")
                if sep and "*" not in service and "?" not in service:
                    self.by_service.setdefault(service, []).append((i, p))
                else:
                    self.fallback.append(i)
        self.memo: dict[str, _Plan] = {}

    def candidates(self, action: str) -> tuple[_CStmt, ...]:
        """The statements whose Action/NotAction covers ``action``, in policy order."""
        lower = action.lower()
        ids: set[int] = set(self.exact.get(lower, ()))
        for i, p in self.by_service.get(lower.partition(":")[0], ()):
            if i not in ids and p.match(lower, None):
                ids.add(i)
        for i in self.fallback:
            if i not in ids and self.stmts[i].action_applies(lower):
                ids.add(i)
        return tuple(self.stmts[i] for i in sorted(ids))

    def plan(self, action: str) -> _Plan:
        found = self.memo.get(action)
        if found is not None:
            return found
        result = _Plan(self.candidates(action))
        if len(self.memo) < _MEMO_LIMIT:
            self.memo[action] = result
        return result


def _document_text(doc: Policy | str | Mapping[str, Any]) -> str:
    if isinstance(doc, Policy):
        return doc.text
    if isinstance(doc, str):
        return doc
    return json.dumps(doc, separators=(",", ":"))


def _parsed(source: SourcedPolicy, policy_type: PolicyType) -> Policy:
    doc = source.document
    if isinstance(doc, Policy):
        return doc
    return parse_policy(doc, policy_type=policy_type)


def _compile_statements(
    sources: Sequence[SourcedPolicy],
    kind: PolicyKind,
    policy_type: PolicyType,
    interned: _Interned,
    first_order: int = 0,
) -> list[_CStmt]:
    out: list[_CStmt] = []
    order = first_order
    for source in sources:
        policy = _parsed(source, policy_type)
        variables = policy.variables_enabled
        policy_id = source.policy_id
        for stmt in policy.statements:
            out.append(_CStmt(stmt, variables, policy_id, kind, order, interned))
            order += 1
    return out


def _tuple_or_none(
    sources: Sequence[SourcedPolicy] | None,
) -> tuple[SourcedPolicy, ...] | None:
    return None if sources is None else tuple(sources)


class CompiledPolicySet:
    """A principal's identity policies, permissions boundary and session policies, compiled.

    Immutable after compile (apart from the action memo, see the module docstring) and safe
    to share between threads. Build with :func:`compile_policy_set`.
    """

    __slots__ = ("_boundary", "_identity", "_session", "_sources", "statement_count")

    def __init__(
        self,
        identity: Sequence[SourcedPolicy],
        boundary: Sequence[SourcedPolicy] | None,
        session: Sequence[SourcedPolicy] | None,
    ) -> None:
        self._sources = (tuple(identity), _tuple_or_none(boundary), _tuple_or_none(session))
        interned = _Interned()
        ident = _compile_statements(identity, "identity", PolicyType.IDENTITY, interned)
        self._identity = _Index(ident)
        self._boundary: _Index | None = None
        self._session: _Index | None = None
        count = len(ident)
        if boundary is not None:
            stmts = _compile_statements(boundary, "boundary", PolicyType.IDENTITY, interned, count)
            self._boundary = _Index(stmts)
            count += len(stmts)
        if session is not None:
            stmts = _compile_statements(session, "session", PolicyType.IDENTITY, interned, count)
            self._session = _Index(stmts)
            count += len(stmts)
        self.statement_count = count

    @property
    def has_boundary(self) -> bool:
        return self._boundary is not None

    @property
    def has_session_policy(self) -> bool:
        return self._session is not None

    def decides_without_context(self, action: str) -> bool:
        """Whether every decision on ``action`` for this set's principal is a function of the
        resource alone: no permissions boundary or session policy, and no statement that can
        apply to ``action`` has a condition or a resource needing one-by-one testing (policy
        variables, wildcards inside the ARN). A caller may then reuse an ``allowed`` answer
        for the same set, action and resource whatever the request context."""
        if self._boundary is not None or self._session is not None:
            return False
        plan = self._identity.plan(action)
        return not plan.needs_scan and not plan.conditional

    def to_json(self) -> str:
        """The sources this set was compiled from; :func:`compile_policy_set_from_json`
        turns it back into an identical set."""
        return policy_set_to_json(*self._sources)


class CompiledResourcePolicy:
    """A resource-based (or role trust) policy, compiled, with the account owning it."""

    __slots__ = ("_index", "kind", "policy_id", "resource_account")

    def __init__(self, policy: SourcedPolicy, resource_account: str, kind: PolicyKind) -> None:
        policy_type = PolicyType.TRUST if kind == "trust" else PolicyType.RESOURCE
        self._index = _Index(_compile_statements([policy], kind, policy_type, _Interned(), 1 << 30))
        self.resource_account = resource_account
        self.policy_id = policy.policy_id
        self.kind = kind


def clear_shared_caches() -> None:
    """Empty the process-wide caches compiling fills (patterns, CIDR blocks, operator
    names). Never needed for correctness, as everything cached is immutable; the benchmark
    uses it to time a compile from nothing."""
    shared_pattern.cache_clear()
    _compiled_regex.cache_clear()
    _network.cache_clear()
    parse_operator.cache_clear()


def compile_policy_set(
    *,
    identity: Sequence[SourcedPolicy],
    boundary: Sequence[SourcedPolicy] | None = None,
    session: Sequence[SourcedPolicy] | None = None,
) -> CompiledPolicySet:
    """Compile a principal's policies. ``boundary=None`` means no permissions boundary;
    ``session=None`` means no session policy, while an empty list is a session policy
    that allows nothing. Raises PolicyParseError for a document that does not parse: a
    broken stored policy must never become an allow."""
    return CompiledPolicySet(identity, boundary, session)


def compile_resource_policy(
    policy: SourcedPolicy, *, resource_account: str
) -> CompiledResourcePolicy:
    """Compile a resource-based policy; a Document without Principal raises."""
    doc = policy.document
    kind: PolicyKind = "resource"
    if isinstance(doc, Policy) and doc.policy_type == PolicyType.TRUST:
        kind = "trust"
    return CompiledResourcePolicy(policy, resource_account, kind)


def compile_trust_policy(policy: SourcedPolicy, *, role_arn: str) -> CompiledResourcePolicy:
    """Compile a role's trust policy (parsed as ROLE_TRUST_POLICY: no Resource element)."""
    account = role_arn.split(":")[4] if role_arn.count(":") >= 5 else ""
    return CompiledResourcePolicy(policy, account, "trust")


def _entries(sources: Sequence[SourcedPolicy] | None) -> list[list[str]] | None:
    if sources is None:
        return None
    return [[s.policy_id, _document_text(s.document)] for s in sources]


def policy_set_to_json(
    identity: Sequence[SourcedPolicy],
    boundary: Sequence[SourcedPolicy] | None,
    session: Sequence[SourcedPolicy] | None,
) -> str:
    """Serialise a principal's policy sources for propagation (e.g. to Redis)."""
    return json.dumps(
        {
            "v": 1,
            "identity": _entries(identity),
            "boundary": _entries(boundary),
            "session": _entries(session),
        },
        separators=(",", ":"),
    )


def policy_set_from_json(
    s: str,
) -> tuple[list[SourcedPolicy], list[SourcedPolicy] | None, list[SourcedPolicy] | None]:
    data = json.loads(s)
    if not isinstance(data, dict) or data.get("v") != 1:
        raise ValueError("not a Portcullis policy set")

    def sources(entries: Any) -> list[SourcedPolicy] | None:
        if entries is None:
            return None
        return [SourcedPolicy(str(pid), str(text)) for pid, text in entries]

    identity = sources(data["identity"]) or []
    return identity, sources(data["boundary"]), sources(data["session"])


def compile_policy_set_from_json(s: str) -> CompiledPolicySet:
    identity, boundary, session = policy_set_from_json(s)
    return compile_policy_set(identity=identity, boundary=boundary, session=session)


# ---- evaluation -------------------------------------------------------------------------


class _Scan:
    """Per-decision scratch: the lazily built context, condition results, missing keys."""

    __slots__ = ("cond_cache", "ctx", "missing", "request", "var_cache")

    def __init__(self, request: Request) -> None:
        self.request = request
        self.ctx: _Ctx | None = None
        self.missing: list[str] | None = None
        self.cond_cache: dict[CompiledCondition, bool] | None = None
        self.var_cache: dict[str, str | None] | None = None

    def context(self) -> _Ctx:
        ctx = self.ctx
        if ctx is None:
            ctx = self.ctx = _Ctx(self.request)
        return ctx

    def var(self, key: str) -> str | None:
        cache = self.var_cache
        if cache is None:
            cache = self.var_cache = {}
        elif key in cache:
            return cache[key]
        value = cache[key] = self.context().var(key)
        return value

    def statement_applies(self, s: _CStmt, resource: str) -> bool:
        """Resource and conditions (the action is already known to apply)."""
        mode = s.res_mode
        if mode:
            if mode == _RES_SINGLE:
                if not s.res_single(resource):
                    return False
            elif mode == _RES_NEVER or not s.resource_applies(resource, self.var):
                return False
        conds = s.conds
        if not conds:
            return True
        ctx = self.ctx
        if ctx is None:
            ctx = self.ctx = _Ctx(self.request)
        cache = self.cond_cache
        ok = True
        for c in conds:
            result = cache.get(c) if cache is not None else None
            if result is None:
                result = self.condition(c)
            if not result:
                ok = False
        return ok

    def condition(self, c: CompiledCondition) -> bool:
        """Evaluate ``c`` once for this decision, noting its key if the request lacks it
        (for MissingContextValues)."""
        ctx = self.ctx
        if ctx is None:
            ctx = self.ctx = _Ctx(self.request)
        result = c.test(ctx)
        cache = self.cond_cache
        if cache is None:
            cache = self.cond_cache = {}
        cache[c] = result
        if not ctx.values(c.key, c.spelled_key):
            if self.missing is None:
                self.missing = [c.spelled_key]
            elif c.spelled_key not in self.missing:
                self.missing.append(c.spelled_key)
        return result


def _scan(
    plan: _Plan, resource: str, scan: _Scan
) -> tuple[list[MatchedStatement] | None, list[MatchedStatement] | None]:
    """The Deny and Allow statements of one kind that match (None for none)."""
    if plan.empty:
        return None, None
    hits: list[_CStmt] = list(plan.always)
    groups = 1 if hits else 0
    exact = plan.exact.get(resource) if plan.exact else None
    if exact:
        hits.extend(exact)
        groups += 1
    if plan.prefix:
        n = len(hits)
        for test, st in plan.prefix:
            if test(resource):
                hits.append(st)
        groups += len(hits) > n
    if plan.general:
        # Inlined rather than a call per statement: this loop is most of a decision's time.
        n = len(hits)
        lookup = scan.var
        cache = scan.cond_cache
        for st in plan.general:
            mode = st.res_mode
            if mode == _RES_SINGLE:
                if not st.res_single(resource):
                    continue
            elif mode == _RES_GENERAL:
                hit = False
                for pattern in st.res_patterns:
                    static = pattern.static
                    if static(resource) if static is not None else pattern.match(resource, lookup):
                        hit = True
                        break
                if hit == st.not_resource:
                    continue
            elif mode == _RES_NEVER:
                continue
            conds = st.conds
            if conds:
                if cache is None:
                    cache = scan.cond_cache = {}
                ok = True
                for c in conds:
                    result = cache.get(c)
                    if result is None:
                        result = scan.condition(c)
                    if not result:
                        ok = False
                if not ok:
                    continue
            hits.append(st)
        groups += len(hits) > n
    if not hits:
        return None, None
    if groups > 1:
        hits.sort(key=_ORDER_KEY)
    denies: list[MatchedStatement] | None = None
    allows: list[MatchedStatement] | None = None
    for st in hits:
        if st.deny:
            if denies is None:
                denies = [st.ms]
            else:
                denies.append(st.ms)
        elif allows is None:
            allows = [st.ms]
        else:
            allows.append(st.ms)
    return denies, allows


_ORDER_KEY = attrgetter("order")


def _principal_grant(spec: PrincipalSpec, p: Principal) -> int:
    """How a Principal element covers ``p``: _DIRECT, _ROLE, _ACCOUNT or 0 (not at all)."""
    if spec.any:
        return _DIRECT
    kind = p.kind
    if kind == "anonymous":
        return 0
    if kind == "service":
        return _DIRECT if p.arn in spec.service else 0
    if kind == "federated_user" and p.arn in spec.federated:
        return _DIRECT
    if p.user_id and p.user_id in spec.canonical_user:
        return _DIRECT
    aws = spec.aws
    if not aws:
        return 0
    if p.arn in aws:
        return _DIRECT
    if kind == "role_session" and p.role_arn and p.role_arn in aws:
        return _ROLE
    account = p.account
    if account and (account in aws or f"arn:aws:iam::{account}:root" in aws):
        return _DIRECT if kind == "root" else _ACCOUNT
    return 0


def _not_principal_excludes(spec: PrincipalSpec, p: Principal) -> bool:
    """Whether ``p`` is among the principals a NotPrincipal element exempts.

    AWS evaluates every identity in the caller's chain: "When you use NotPrincipal with
    Deny, you must also specify the account ARN of the not-denied principal", and for a
    role session both the role ARN and the assumed-role session ARN
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_notprincipal.html).
    """
    if spec.any:
        return True
    kind = p.kind
    if kind == "anonymous":
        return False
    if kind == "service":
        return p.arn in spec.service
    account_listed = p.account in spec.aws or f"arn:aws:iam::{p.account}:root" in spec.aws
    if kind == "root":
        return account_listed
    if kind == "federated_user":
        listed = p.arn in spec.federated or p.arn in spec.aws
        return listed and (account_listed or p.arn in spec.federated)
    if kind == "role_session":
        return account_listed and p.arn in spec.aws and (p.role_arn or "") in spec.aws
    return account_listed and p.arn in spec.aws


def _scan_resource(
    stmts: tuple[_CStmt, ...], request: Request, scan: _Scan
) -> tuple[list[MatchedStatement], list[tuple[MatchedStatement, int]]]:
    denies: list[MatchedStatement] = []
    allows: list[tuple[MatchedStatement, int]] = []
    principal = request.principal
    resource = request.resource
    for s in stmts:
        spec = s.principal
        if spec is None:
            continue
        if s.not_principal:
            grant = 0 if _not_principal_excludes(spec, principal) else _DIRECT
        else:
            grant = _principal_grant(spec, principal)
        if not grant or not scan.statement_applies(s, resource):
            continue
        if s.deny:
            denies.append(s.ms)
        else:
            allows.append((s.ms, grant))
    return denies, allows


def _resource_account(request: Request, resource_policy: CompiledResourcePolicy | None) -> str:
    if request.resource_account:
        return request.resource_account
    if resource_policy is not None and resource_policy.resource_account:
        return resource_policy.resource_account
    parts = request.resource.split(":", 5)
    if len(parts) == 6 and parts[0] == "arn" and parts[4]:
        return parts[4]
    return request.principal.account


_ERROR = Decision("explicitDeny", (), (), "evaluation error")


def evaluate(
    policy_set: CompiledPolicySet,
    request: Request,
    *,
    resource_policy: CompiledResourcePolicy | None = None,
) -> Decision:
    """Decide ``request``. Never raises: an internal error is an explicit deny."""
    try:
        if resource_policy is None and request.principal.kind in _IDENTITY_KINDS:
            return _decide_identity(policy_set, request)
        return _evaluate(policy_set, request, resource_policy, trust=False)
    except Exception:
        return _ERROR


_IDENTITY_KINDS = frozenset(("user", "role_session", "federated_user"))


def _decision(
    kind: DecisionKind,
    matched: tuple[MatchedStatement, ...],
    missing: tuple[str, ...],
    reason: str,
) -> Decision:
    # Bypasses Decision.__init__ (a Python call frame, a visible share of a decision).
    decision = _new_decision(Decision)
    decision._kind = kind
    decision._matched = matched
    decision._missing = missing
    decision._reason = reason
    decision._set = None
    decision._request = None
    return decision


def _lazy(
    kind: DecisionKind, reason: str, policy_set: CompiledPolicySet, request: Request
) -> Decision:
    """A decision whose matched statements and missing keys are worked out on first use."""
    decision = _new_decision(Decision)
    decision._kind = kind
    decision._matched = ()
    decision._missing = ()
    decision._reason = reason
    decision._set = policy_set
    decision._request = request
    return decision


_new_decision = object.__new__


_IMPLICIT: dict[tuple[str, str], Decision] = {}


def _implicit(reason: str, action: str, missing: list[str] | None) -> Decision:
    if missing:
        return _decision(
            "implicitDeny", (), tuple(missing), f"no {reason} allows the {action} action"
        )
    key = (reason, action)
    found = _IMPLICIT.get(key)
    if found is None:
        found = _decision("implicitDeny", (), (), f"no {reason} allows the {action} action")
        if len(_IMPLICIT) < _MEMO_LIMIT:
            _IMPLICIT[key] = found
    return found


def _arn_account(resource: str) -> str | None:
    if resource.startswith("arn:"):
        parts = resource.split(":", 5)
        if len(parts) == 6 and parts[4]:
            return parts[4]
    return None


def _decide_identity(policy_set: CompiledPolicySet, request: Request) -> Decision:
    """The common case, an IAM user or role session with no resource-based policy, decided
    with the least work: any matching Deny decides, else the first matching Allow of each
    kind. Same outcome and reason as :func:`_evaluate_identity`, which the returned
    Decision calls on first access to ``matched_statements`` or
    ``missing_context_values``."""
    action = request.action
    index = policy_set._identity
    plan = index.memo.get(action)
    if plan is None:
        plan = index.plan(action)
    if policy_set._boundary is not None or policy_set._session is not None:
        return _decide_layered(policy_set, request, plan)
    resource = request.resource
    # Per-decision scratch only when a statement may need the context or a variable.
    scan = _Scan(request) if plan.needs_scan else None
    denies = plan.denies
    if denies is not None and denies.any_applies(resource, scan):
        return _lazy("explicitDeny", "identity-based policy", policy_set, request)
    allows = plan.allows
    if allows is not None and allows.any_applies(resource, scan):
        account = request.resource_account
        if not account and resource.startswith("arn:"):
            parts = resource.split(":", 5)
            if len(parts) == 6:
                account = parts[4]
        if not account or account == request.principal.account:
            return _lazy("allowed", "", policy_set, request)
        # Cross-account access also needs the resource's own policy, and there is none.
        reason = "resource-based policy"
    else:
        reason = "identity-based policy"
    if plan.conditional:
        # A condition may have been missing a key: the full scan reports which.
        return _lazy("implicitDeny", f"no {reason} allows the {action} action", policy_set, request)
    return _implicit(reason, action, None)


def _decide_layered(policy_set: CompiledPolicySet, request: Request, ident: _Plan) -> Decision:
    """:func:`_decide_identity` with a permissions boundary or session policies."""
    action = request.action
    resource = request.resource
    scan = _Scan(request)
    boundary = policy_set._boundary
    session = policy_set._session
    bplan = boundary.plan(action) if boundary is not None else None
    splan = session.plan(action) if session is not None else None
    denies = ident.denies
    if denies is not None and denies.any_applies(resource, scan):
        return _lazy("explicitDeny", "identity-based policy", policy_set, request)
    if bplan is not None:
        denies = bplan.denies
        if denies is not None and denies.any_applies(resource, scan):
            return _lazy("explicitDeny", "permissions boundary", policy_set, request)
    if splan is not None:
        denies = splan.denies
        if denies is not None and denies.any_applies(resource, scan):
            return _lazy("explicitDeny", "session policy", policy_set, request)
    allows = ident.allows
    if allows is None or not allows.any_applies(resource, scan):
        reason = "identity-based policy"
    elif bplan is not None and (
        bplan.allows is None or not bplan.allows.any_applies(resource, scan)
    ):
        reason = "permissions boundary"
    elif splan is not None and (
        splan.allows is None or not splan.allows.any_applies(resource, scan)
    ):
        reason = "session policy"
    else:
        account = request.resource_account or _arn_account(resource)
        if not account or account == request.principal.account:
            return _lazy("allowed", "", policy_set, request)
        # Cross-account access also needs the resource's own policy, and there is none.
        reason = "resource-based policy"
    if (
        ident.conditional
        or (bplan is not None and bplan.conditional)
        or (splan is not None and splan.conditional)
    ):
        # A condition may have been missing a key: the full scan reports which.
        return _lazy("implicitDeny", f"no {reason} allows the {action} action", policy_set, request)
    return _implicit(reason, action, None)


def _evaluate_identity(policy_set: CompiledPolicySet, request: Request) -> Decision:
    """The common case: an IAM user or role session, no resource-based policy."""
    action = request.action
    resource = request.resource
    scan = _Scan(request)
    id_deny, id_allow = _scan(policy_set._identity.plan(action), resource, scan)
    b_deny = b_allow = s_deny = s_allow = None
    boundary = policy_set._boundary
    if boundary is not None:
        b_deny, b_allow = _scan(boundary.plan(action), resource, scan)
    session = policy_set._session
    if session is not None:
        s_deny, s_allow = _scan(session.plan(action), resource, scan)
    missing = scan.missing
    if id_deny or b_deny or s_deny:
        if id_deny:
            reason = "identity-based policy"
        elif b_deny:
            reason = "permissions boundary"
        else:
            reason = "session policy"
        matched = tuple((id_deny or []) + (b_deny or []) + (s_deny or []))
        return _decision("explicitDeny", matched, tuple(missing) if missing else (), reason)
    if not id_allow:
        return _implicit("identity-based policy", action, missing)
    if boundary is not None and not b_allow:
        return _implicit("permissions boundary", action, missing)
    if session is not None and not s_allow:
        return _implicit("session policy", action, missing)
    account = request.resource_account or _arn_account(resource)
    if account and account != request.principal.account:
        # Cross-account access also needs the resource's own policy, and there is none.
        return _implicit("resource-based policy", action, missing)
    if boundary is None and session is None:
        matched = tuple(id_allow)
    else:
        matched = tuple(id_allow + (b_allow or []) + (s_allow or []))
    return _decision("allowed", matched, tuple(missing) if missing else (), "")


def _evaluate(
    policy_set: CompiledPolicySet | None,
    request: Request,
    resource_policy: CompiledResourcePolicy | None,
    *,
    trust: bool,
) -> Decision:
    action = request.action
    resource = request.resource
    principal = request.principal
    kind = principal.kind
    scan = _Scan(request)
    identity_side = kind not in ("service", "anonymous") and policy_set is not None

    id_deny = id_allow = b_deny = b_allow = s_deny = s_allow = None
    if identity_side and kind != "root" and policy_set is not None:
        id_deny, id_allow = _scan(policy_set._identity.plan(action), resource, scan)
        boundary = policy_set._boundary
        if boundary is not None:
            b_deny, b_allow = _scan(boundary.plan(action), resource, scan)
        session = policy_set._session
        if session is not None:
            s_deny, s_allow = _scan(session.plan(action), resource, scan)

    r_deny: list[MatchedStatement] = []
    r_allow: list[tuple[MatchedStatement, int]] = []
    if resource_policy is not None:
        r_deny, r_allow = _scan_resource(resource_policy._index.candidates(action), request, scan)

    missing = scan.missing
    missing_t = tuple(missing) if missing else ()
    if id_deny or b_deny or s_deny or r_deny:
        if id_deny:
            reason = "identity-based policy"
        elif r_deny:
            reason = "resource-based policy"
        elif b_deny:
            reason = "permissions boundary"
        else:
            reason = "session policy"
        matched = tuple((id_deny or []) + (b_deny or []) + (s_deny or []) + r_deny)
        return _decision("explicitDeny", matched, missing_t, reason)

    if kind == "root":
        identity_ok = boundary_ok = session_ok = True
    else:
        identity_ok = bool(id_allow) and identity_side
        boundary_ok = policy_set is None or policy_set._boundary is None or bool(b_allow)
        session_ok = policy_set is None or policy_set._session is None or bool(s_allow)
    grants = {g for _, g in r_allow}
    same_account = kind not in ("service", "anonymous") and principal.account == _resource_account(
        request, resource_policy
    )
    side_ok = identity_ok and boundary_ok and session_ok

    if kind in ("service", "anonymous"):
        allowed = _DIRECT in grants
    elif trust:
        # The trust policy must always allow. Naming the caller itself (or "*") grants on
        # its own within the account; naming the account delegates to the caller's
        # identity policies; across accounts both sides must allow.
        # https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_use_permissions-to-switch.html
        if not grants:
            allowed = False
        elif same_account:
            allowed = (
                _DIRECT in grants or (_ROLE in grants and boundary_ok and session_ok) or side_ok
            )
        else:
            allowed = side_ok
    elif same_account:
        allowed = side_ok or _DIRECT in grants or (_ROLE in grants and boundary_ok and session_ok)
    else:
        allowed = side_ok and bool(grants)

    if allowed:
        matched_allows = (id_allow or []) + (b_allow or []) + (s_allow or [])
        matched_allows += [ms for ms, _ in r_allow]
        return _decision("allowed", tuple(matched_allows), missing_t, "")

    if kind in ("service", "anonymous") or (trust and not grants):
        return _implicit("resource-based policy", action, missing)
    if not identity_ok and _ROLE not in grants:
        return _implicit("identity-based policy", action, missing)
    if not boundary_ok:
        return _implicit("permissions boundary", action, missing)
    if not session_ok:
        return _implicit("session policy", action, missing)
    return _implicit("resource-based policy", action, missing)


def evaluate_trust(
    *,
    trust_policy: CompiledResourcePolicy,
    role_arn: str,
    caller_policy_set: CompiledPolicySet | None,
    request: Request,
) -> Decision:
    """Decide sts:AssumeRole / AssumeRoleWithWebIdentity / AssumeRoleWithSAML.

    The role's trust policy is its resource-based policy and is always required to allow.
    Within the role's account, a trust policy naming the caller's user or session ARN is
    enough on its own; one naming the account (``arn:aws:iam::<acct>:root`` or the account
    id) needs the caller's identity policies to allow ``sts:AssumeRole`` on the role too.
    Across accounts, both the trust policy and the caller's identity policies must allow.
    ``caller_policy_set`` is None for callers with no identity policies in Portcullis (web
    identity, SAML, services). Never raises.
    """
    try:
        if request.resource != role_arn or request.resource_account is None:
            account = role_arn.split(":")[4] if role_arn.count(":") >= 5 else ""
            request = Request(
                principal=request.principal,
                action=request.action,
                resource=role_arn,
                context=request.context,
                resource_account=request.resource_account or account,
            )
        return _evaluate(caller_policy_set, request, trust_policy, trust=True)
    except Exception:
        return _ERROR


def access_denied_message(
    principal_arn: str, action: str, resource: str, decision: Decision
) -> str:
    """AWS's AccessDenied text for a denied decision ("" when allowed)."""
    if decision.allowed:
        return ""
    head = f"User: {principal_arn} is not authorized to perform: {action} on resource: {resource}"
    reason = decision.deny_reason
    if decision.decision == "explicitDeny":
        if reason == "evaluation error":
            return f"{head} because the request could not be evaluated"
        article = "an" if reason[:1] in "aeiou" else "a"
        return f"{head} with an explicit deny in {article} {reason}"
    return f"{head} because {reason}" if reason else head

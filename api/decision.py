"""The decision API for applications: "may principal P do action A on resource R?"

``POST /v1/authorize`` takes one request, ``POST /v1/authorize/batch`` up to 100, as JSON::

    {"principal": "arn:aws:iam::111111111111:user/alice", "action": "s3:GetObject",
     "resource": "arn:aws:s3:::bucket/key", "context": {"aws:SourceIp": "192.0.2.1"}}

and answers with the engine's decision (``allowed`` / ``explicitDeny`` / ``implicitDeny``), the
statements that decided it, the context keys a condition needed but did not get, and the change
sequence the decision reflects (see ``policies.store``). The document at ``/v1/openapi.json``
describes it (``api.openapi``).

Callers sign with SigV4 (service ``portcullis``, any region) using a Portcullis access key
(``api.sigv4.verify_request``) and need ``portcullis:Authorize`` on the principal they ask
about, decided by ``policies.access`` like every other action. A caller without it gets 403 and
the attempt is audited. Any error on the decision path answers 5xx with an explicit deny and
the error, never an allow.

The hot path keeps verified callers' keys in memory while the compiled-policy store vouches
for them (``_fast_caller``, built from ``api.sigv4``'s own parsing and signing steps), and
reads principals' compiled sets from the store: a decision makes no database query.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from api import openapi, sigv4
from audit.context import Actor
from audit.services import record_event
from identity import crypto
from identity.errors import IAMError
from identity.request_context import request_meta
from policies import access, engine, propagation, store

logger = logging.getLogger(__name__)

AUTHORIZE_ACTION = "portcullis:Authorize"
SIGNING_SERVICES = frozenset({"portcullis"})
MAX_BATCH = 100
MAX_BODY_BYTES = 256 * 1024
# Key last-used is a DB write; the decision path records it at most this often per key and
# process (AWS reports it at hour granularity anyway).
KEY_USE_INTERVAL_S = 60.0

# How long a verified caller's key is kept in memory (see ``_callers``).
CALLER_CACHE_S = 60.0

_key_use_recorded: dict[str, float] = {}


class BadRequest(Exception):
    def __init__(self, message: str, code: str = "ValidationError") -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _json(body: Any, status: int = 200) -> HttpResponse:
    # orjson: the decision API's answers are small and many; the standard library's encoder
    # costs more than the decision.
    return HttpResponse(orjson.dumps(body), content_type="application/json", status=status)


def _error(status: int, code: str, message: str, **extra: Any) -> HttpResponse:
    return _json({**extra, "error": {"code": code, "message": message}}, status)


def _json_body(request: HttpRequest) -> Any:
    if len(request.body) > MAX_BODY_BYTES:
        raise BadRequest(f"The request body exceeds {MAX_BODY_BYTES} bytes.")
    try:
        # RFC 8259 JSON in UTF-8: orjson refuses NaN, Infinity and invalid UTF-8, which the
        # standard library would let through.
        return orjson.loads(request.body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"The request body is not valid JSON: {exc}") from exc


def _string(item: Mapping[str, Any], name: str, *, default: str | None = None) -> str:
    value = item.get(name, default)
    if not isinstance(value, str) or not value:
        raise BadRequest(f"'{name}' must be a non-empty string.")
    if len(value) > 2048:
        raise BadRequest(f"'{name}' must be at most 2048 characters.")
    return value


def _context(item: Mapping[str, Any]) -> dict[str, Any]:
    context = item.get("context", {})
    if not isinstance(context, dict):
        raise BadRequest("'context' must be an object of condition keys to values.")
    for key, value in context.items():
        values = value if isinstance(value, list) else [value]
        if not all(isinstance(v, str | int | float | bool) for v in values):
            raise BadRequest(
                f"Context key '{key}' must be a string, number, boolean or a list of them."
            )
    return context


def _parse_request(item: Any) -> tuple[str, str, str, dict[str, Any]]:
    if not isinstance(item, dict):
        raise BadRequest("A request must be a JSON object.")
    principal = _string(item, "principal")
    action = _string(item, "action")
    if ":" not in action:
        raise BadRequest("'action' must be of the form service:Action.")
    resource = _string(item, "resource", default="*")
    return principal, action, resource, _context(item)


def _statement(m: engine.MatchedStatement) -> dict[str, Any]:
    return {
        "policyId": m.policy_id,
        "policyKind": m.policy_kind,
        "statementIndex": m.statement_index,
        "sid": m.sid,
        "effect": m.effect,
    }


def _result(result: access.PrincipalDecision) -> dict[str, Any]:
    decision = result.decision
    body: dict[str, Any] = {
        "decision": decision.decision,
        "allowed": decision.allowed,
        "matchedStatements": [_statement(m) for m in decision.matched_statements],
        "missingContextValues": list(decision.missing_context_values),
        "denyReason": decision.deny_reason,
        "changeSequence": result.sequence,
        "source": result.source,
    }
    if result.error:
        body["error"] = {"code": "ServiceUnavailable", "message": result.error}
    return body


@dataclass
class _Caller:
    caller: sigv4.AuthenticatedCaller
    secret: str = field(repr=False)
    cached_at: float
    signers: dict[tuple[str, str, str], sigv4.KeyedHmac] = field(default_factory=dict, repr=False)


# Verified callers by access key id, so a decision does not read and decrypt the key from
# PostgreSQL each time. An entry is used only while the compiled-policy store holds a trusted,
# active entry for the key: deactivating or deleting it (priority propagation), or any change
# to its user, makes the next request verify against the database again.
_callers: dict[str, _Caller] = {}


def _fast_caller(request: HttpRequest) -> sigv4.AuthenticatedCaller | None:
    """The caller from the in-process cache, or None (then ``verify_request`` decides)."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if not header.startswith(sigv4.ALGORITHM):
        return None
    parsed = sigv4._parse_header(request, header)
    cached = _callers.get(parsed.access_key_id)
    if cached is None or time.monotonic() - cached.cached_at > CALLER_CACHE_S:
        return None
    if (
        parsed.service not in SIGNING_SERVICES
        or parsed.security_token
        or "host" not in parsed.signed_headers
        or parsed.signed_headers != sorted(parsed.signed_headers)
    ):
        return None
    try:
        entry = store.read(unique_id=parsed.access_key_id)
    except store.StoreUnavailable:
        return None
    if entry is None or entry.tomb or entry.facts.get("status") != "Active":
        _callers.pop(parsed.access_key_id, None)
        return None
    sigv4._check_time(parsed, datetime.now(UTC))
    scope_key = (parsed.date, parsed.region, parsed.service)
    signer = cached.signers.get(scope_key)
    if signer is None:
        signer = cached.signers[scope_key] = sigv4.KeyedHmac(
            sigv4.signing_key(cached.secret, *scope_key)
        )
    scope = f"{parsed.date}/{parsed.region}/{parsed.service}/aws4_request"
    for payload_hash in sigv4._payload_hashes(request, parsed):
        to_sign = sigv4.string_to_sign(
            sigv4.canonical_request(request, parsed, payload_hash),
            amz_date=parsed.amz_date,
            scope=scope,
        )
        expected = signer.hexdigest(to_sign.encode("utf-8"))
        if hmac.compare_digest(expected, parsed.signature):
            caller = cached.caller
            actor = caller.actor
            return sigv4.AuthenticatedCaller(
                actor=Actor(
                    arn=actor.arn,
                    account_id=actor.account_id,
                    kind=actor.kind,
                    meta=request_meta(request),
                    user=actor.user,
                    access_key_id=actor.access_key_id,
                ),
                access_key_id=caller.access_key_id,
                service=parsed.service,
                region=parsed.region,
                presigned=False,
                credential=caller.credential,
            )
    return None


def _key_id(request: HttpRequest) -> str:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    _, found, rest = header.partition("Credential=")
    return rest.split("/", 1)[0] if found else request.GET.get("X-Amz-Credential", "").split("/")[0]


def _authenticate(request: HttpRequest) -> sigv4.AuthenticatedCaller:
    stamp = 0
    if store.enabled():
        fast = _fast_caller(request)
        if fast is not None:
            return fast
        stamp = propagation.current_sequence()
    # The store did not vouch for this key (new to this process, or changed): make
    # verify_request read it from the database, not from its own short-lived cache.
    # (``forget_credentials`` arrives with the Query API's credential cache.)
    forget = getattr(sigv4, "forget_credentials", None)
    key_id = _key_id(request)
    if key_id and forget is not None:
        forget(key_id)
    caller = sigv4.verify_request(request, services=SIGNING_SERVICES, record_use=False)
    now = time.monotonic()
    if now - _key_use_recorded.get(caller.access_key_id, -1e9) >= KEY_USE_INTERVAL_S:
        _key_use_recorded[caller.access_key_id] = now
        try:
            sigv4.record_key_use(
                caller.credential, service=caller.service, region=caller.region, now=timezone.now()
            )
        except Exception:
            logger.warning("could not record the use of key %s", caller.access_key_id)
    if store.enabled() and not caller.is_temporary:
        # Fill the store with the key's state as of ``stamp`` (read before the key was), so
        # the next request can take the fast path; a later change always has a larger stamp.
        try:
            store.publish([propagation.credential_entry(caller.access_key_id, stamp=stamp)])
            _callers[caller.access_key_id] = _Caller(
                caller=caller,
                secret=crypto.decrypt_text(caller.credential.secret_encrypted),
                cached_at=time.monotonic(),
            )
        except store.StoreUnavailable:
            pass
    return caller


# Principals a caller was allowed to ask about, kept with the caller's trusted compiled entry
# (``StoredSet.derived``: one per content digest, so any change to the caller's policies starts
# afresh) and only while its set decides portcullis:Authorize without the request context (no
# condition, variable or boundary can apply). The entry is re-read, and must be trusted, on
# every request; a refusal is never kept, so each one is decided and audited.
_ALLOWED_TO_ASK = "decision_api_allowed_to_ask"
ALLOWED_TO_ASK_LIMIT = 100_000


def _caller_entry(caller: sigv4.AuthenticatedCaller) -> store.StoredSet | None:
    """The caller's trusted store entry when it is a user signing with its own access key."""
    user = caller.actor.user
    if caller.actor.kind != "user" or caller.is_temporary or user is None or not store.enabled():
        return None
    try:
        return store.read(unique_id=user.unique_id)
    except store.StoreUnavailable:
        return None


def _caller_may_ask(
    caller: sigv4.AuthenticatedCaller,
    principal_arn: str,
    caller_set: engine.CompiledPolicySet | None = None,
) -> str | None:
    """None when the caller may ask about ``principal_arn``; AWS's AccessDenied text (and an
    audit event) otherwise. ``caller_set``: the caller's compiled set, when a batch holds it."""
    entry = _caller_entry(caller) if caller_set is None else None
    allowed_before: set[str] | None = None
    if entry is not None and entry.policy_set is not None:
        caller_set = entry.policy_set
        allowed_before = entry.derived.get(_ALLOWED_TO_ASK)
        if allowed_before is None:
            allowed_before = entry.derived.setdefault(_ALLOWED_TO_ASK, set())
        if principal_arn in allowed_before:
            return None
    decision = access.decide(caller.actor, AUTHORIZE_ACTION, principal_arn, policy_set=caller_set)
    if decision.allowed:
        if (
            allowed_before is not None
            and caller_set is not None
            and len(allowed_before) < ALLOWED_TO_ASK_LIMIT
            and caller_set.decides_without_context(AUTHORIZE_ACTION)
        ):
            allowed_before.add(principal_arn)
        return None
    message = engine.access_denied_message(
        caller.actor.arn, AUTHORIZE_ACTION, principal_arn, decision
    )
    record_event(
        actor=caller.actor,
        action=AUTHORIZE_ACTION,
        resource_arn=principal_arn,
        category="decision",
        parameters={"Principal": principal_arn},
        error_code="AccessDenied",
        error_message=message,
    )
    return message


def _decide_one(
    caller: sigv4.AuthenticatedCaller,
    item: Any,
    permitted: dict[str, str | None],
    prefetched: Mapping[str, Any] | None = None,
    caller_set: engine.CompiledPolicySet | None = None,
) -> tuple[int, dict[str, Any]]:
    try:
        principal, action, resource, context = _parse_request(item)
    except BadRequest as exc:
        return 400, {"error": {"code": exc.code, "message": exc.message}}
    if principal not in permitted:
        permitted[principal] = _caller_may_ask(caller, principal, caller_set)
    denied = permitted[principal]
    if denied is not None:
        return 403, {"error": {"code": "AccessDenied", "message": denied}}
    try:
        result = access.decide_for_principal(
            principal, action, resource, context=context, prefetched=prefetched
        )
    except access.UnknownPrincipal:
        return 404, {
            "decision": "implicitDeny",
            "allowed": False,
            "error": {
                "code": "NoSuchEntity",
                "message": f"The principal {principal} does not exist.",
            },
        }
    return (503 if result.error else 200), _result(result)


def _prefetch(request: HttpRequest) -> None:
    """One Redis round trip for what this request will read: the caller's key entry and set
    (when the caller is cached) and, for a single decision, the principal's set. Not needed
    while the near cache is trusted: its misses are rare and read on their own."""
    if not store.enabled() or request.method != "POST" or store.near_cache_trusted():
        return
    key_id = _key_id(request)
    cached = _callers.get(key_id)
    ids = [key_id] if cached is not None else []
    user = cached.caller.actor.user if cached is not None else None
    if user is not None:
        ids.append(user.unique_id)
    arns: list[str] = []
    if request.path.endswith("/authorize"):
        try:
            principal = orjson.loads(request.body).get("principal")
        except Exception:
            principal = None
        if isinstance(principal, str) and principal:
            arns.append(principal)
    try:
        store.prefetch(ids=ids, arns=arns)
    except Exception as exc:  # each read then asks Redis (or the database) on its own
        logger.debug("prefetch skipped: %s", exc)


def _guarded(view: Any) -> Any:
    """Authenticate, and turn any unexpected error into an explicit 5xx deny."""

    def wrapper(request: HttpRequest) -> HttpResponse:
        try:
            _prefetch(request)
            return _run(request)
        finally:
            store.end_prefetch()

    def _run(request: HttpRequest) -> HttpResponse:
        try:
            caller = _authenticate(request)
        except IAMError as exc:
            return _error(exc.http_status, exc.code, exc.message)
        except Exception:
            logger.exception("decision API authentication failed")
            return _error(
                503,
                "ServiceUnavailable",
                "The caller could not be authenticated.",
                decision="explicitDeny",
                allowed=False,
            )
        try:
            return view(request, caller)
        except BadRequest as exc:
            return _error(400, exc.code, exc.message)
        except Exception:
            logger.exception("decision API failed")
            return _error(
                500,
                "InternalFailure",
                "The request could not be decided.",
                decision="explicitDeny",
                allowed=False,
            )

    wrapper.__name__ = view.__name__
    wrapper.__doc__ = view.__doc__
    return wrapper


@csrf_exempt
@require_POST
@_guarded
def authorize(request: HttpRequest, caller: sigv4.AuthenticatedCaller) -> HttpResponse:
    """``POST /v1/authorize``: one decision."""
    status, body = _decide_one(caller, _json_body(request), {})
    return _json(body, status)


@csrf_exempt
@require_POST
@_guarded
def authorize_batch(request: HttpRequest, caller: sigv4.AuthenticatedCaller) -> HttpResponse:
    """``POST /v1/authorize/batch``: up to 100 decisions, answered in order; each result has
    its own ``status`` (200, or the status it would have had alone)."""
    payload = _json_body(request)
    requests = payload.get("requests") if isinstance(payload, dict) else None
    if not isinstance(requests, list) or not requests:
        raise BadRequest("'requests' must be a non-empty list.")
    if len(requests) > MAX_BATCH:
        raise BadRequest(f"'requests' may hold at most {MAX_BATCH} requests.")
    permitted: dict[str, str | None] = {}
    principals = {
        item["principal"]
        for item in requests
        if isinstance(item, dict) and isinstance(item.get("principal"), str)
    }
    # Every principal's compiled set in one Redis round trip, not one per request.
    prefetched = access.prefetch_principals(sorted(principals))
    # The caller's own set once for the whole batch (decide fails closed if it is None).
    try:
        caller_set = access.compiled_policy_set(caller.actor)
    except Exception:
        logger.exception("no policy set for caller %s", caller.actor.arn)
        caller_set = None
    results = []
    for item in requests:
        status, body = _decide_one(caller, item, permitted, prefetched, caller_set)
        body["status"] = status
        results.append(body)
    worst = max((r["status"] for r in results if r["status"] >= 500), default=200)
    return _json({"results": results}, worst)


@require_GET
def openapi_document(request: HttpRequest) -> HttpResponse:
    """``GET /v1/openapi.json``: the OpenAPI 3.1 description of this API."""
    return JsonResponse(openapi.document(request.build_absolute_uri("/")))


_PING = b'{"ok":true}'


@csrf_exempt
def ping(request: HttpRequest) -> HttpResponse:
    """``/v1/ping``: a constant answer, for load balancers' health checks (and the benchmark's
    ceiling: the same stack with no work)."""
    return HttpResponse(_PING, content_type="application/json")

"""The Query API endpoint: IAM and STS at ``/``, as boto3 and the AWS CLI call them.

The console also lives at ``/``. ``root`` tells them apart by SigV4 itself — an
``Authorization: AWS4-HMAC-SHA256 …`` header or an ``X-Amz-Algorithm`` query parameter — and
hands everything else to the console's own URL map, with the console's CSRF and login checks
applied to the console view exactly as the middleware would. Only signed requests skip CSRF:
a browser cannot produce a SigV4 signature for a cross-site form post.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any
from urllib.parse import unquote_plus

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.urls import URLResolver, get_resolver
from django.urls.resolvers import RegexPattern
from django.utils.module_loading import import_string
from django.views.decorators.csrf import csrf_exempt

from api import (
    credential_ops,
    handlers_federation,
    iam_ops,
    policy_ops,
    protocol,
    sigv4,
    sts_ops,
)
from api.registry import OPERATIONS, Call
from audit.services import record_event
from identity.errors import AccessDenied, IAMError
from identity.models import Account

logger = logging.getLogger(__name__)

# The handler modules register their operations on import.
_HANDLER_MODULES = (iam_ops, policy_ops, credential_ops, sts_ops, handlers_federation)

# AWS's Query API takes requests of a few kilobytes; a megabyte is generous and bounds the work
# an unauthenticated caller can make us do.
MAX_BODY_BYTES = 1024 * 1024
MAX_PARAMETERS = 1000
# Parameters consumed by SigV4 itself, not by the operation.
_AUTH_PARAMETERS = {
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-Expires",
    "X-Amz-SignedHeaders",
    "X-Amz-Signature",
    "X-Amz-Security-Token",
}
# What GetSessionToken credentials may call in STS (IAM User Guide, "Comparing the AWS STS
# API operations"): they cannot call IAM at all unless MFA was given.
_SESSION_TOKEN_STS_ACTIONS = {"AssumeRole", "GetCallerIdentity"}


def _xml(body: str, status: int, request_id: str) -> HttpResponse:
    response = HttpResponse(body, status=status, content_type="text/xml")
    response["x-amzn-RequestId"] = request_id
    return response


def _error(service: str, error: IAMError, request_id: str) -> HttpResponse:
    return _xml(protocol.serialize_error(service, error, request_id), error.http_status, request_id)


def _pairs(raw: str) -> list[tuple[str, str]]:
    pairs = []
    for part in raw.split("&"):
        if not part:
            continue
        key, _, value = part.partition("=")
        pairs.append((unquote_plus(key), unquote_plus(value)))
    return pairs


def _parameters(request: HttpRequest) -> dict[str, str]:
    """Query and form parameters; a name given twice is refused, never silently picked."""
    pairs = _pairs(request.META.get("QUERY_STRING", ""))
    if request.method == "POST":
        content_type = request.META.get("CONTENT_TYPE", "").split(";")[0].strip().lower()
        if request.body and content_type != "application/x-www-form-urlencoded":
            raise protocol.MalformedQueryString(
                "The Query API takes application/x-www-form-urlencoded bodies."
            )
        try:
            pairs += _pairs(request.body.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise protocol.MalformedQueryString("The request body is not valid UTF-8.") from exc
    if len(pairs) > MAX_PARAMETERS:
        raise protocol.MalformedQueryString(
            f"A request may have at most {MAX_PARAMETERS} parameters."
        )
    params: dict[str, str] = {}
    for key, value in pairs:
        if key in params:
            raise protocol.MalformedQueryString(f"Parameter {key} is given more than once.")
        params[key] = value
    return params


def _scope_service(request: HttpRequest) -> str:
    """The service named by the credential scope, before verification: only to choose the XML
    namespace of an early error."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    credential = header.partition("Credential=")[2].split(",")[0]
    credential = credential or request.GET.get("X-Amz-Credential", "")
    parts = credential.split("/")
    return parts[3] if len(parts) == 5 and parts[3] in protocol.API_VERSIONS else "iam"


@csrf_exempt
def query_api(request: HttpRequest) -> HttpResponse:
    request_id = str(uuid.uuid4())
    request.portcullis_request_id = request_id  # type: ignore[attr-defined]
    service = _scope_service(request)
    call: Call | None = None
    try:
        if request.method not in ("GET", "POST"):
            raise protocol.InvalidAction(f"The Query API does not take {request.method} requests.")
        length = request.META.get("CONTENT_LENGTH") or "0"
        if not length.isdigit() or int(length) > MAX_BODY_BYTES:
            raise protocol.RequestEntityTooLarge(
                f"Request body must be at most {MAX_BODY_BYTES} bytes."
            )
        params = {k: v for k, v in _parameters(request).items() if k not in _AUTH_PARAMETERS}
        # Authentication comes before the action is looked at, as in AWS: an unsigned caller
        # learns nothing about what the endpoint offers.
        caller = sigv4.verify_request(request)
        service = caller.service
        action = params.pop("Action", None)
        version = params.pop("Version", None)
        if not action:
            raise protocol.MissingAction("Missing Action")
        op_model = protocol.operation(service, action)
        if version != protocol.API_VERSIONS[service]:
            raise protocol.InvalidAction(
                f"Could not find operation {action} for version {version or 'NO_VERSION_SPECIFIED'}"
            )
        registered = OPERATIONS.get((service, action))
        if registered is None:
            raise protocol.InvalidAction(
                f"Could not find operation {action} for version {protocol.API_VERSIONS[service]}"
            )
        _check_session_token_limits(caller, service, action)
        account = _account_of(caller)
        call = Call(
            request=request,
            caller=caller,
            service=service,
            action=action,
            params={},
            account=account,
        )
        call.params = protocol.parse_input(op_model, params)
        result = registered.handler(call)
        if registered.write:
            sigv4.after_write()
        if not registered.write or call.audit_read:
            _audit(call, params, error=None)
        body = protocol.serialize_response(service, op_model, result, request_id)
        return _xml(body, 200, request_id)
    except IAMError as error:
        if call is not None:
            _audit(call, call.params or {}, error=error)
        return _error(service, error, request_id)
    except Exception:
        logger.exception("Query API request %s failed", request_id)
        failure = IAMError("The request processing has failed because of an unknown error.")
        if call is not None:
            _audit(call, call.params or {}, error=failure)
        return _error(service, failure, request_id)


def _check_session_token_limits(
    caller: sigv4.AuthenticatedCaller, service: str, action: str
) -> None:
    session = caller.credential if caller.is_temporary else None
    if session is None:
        return
    if session.role_id is not None:
        if service == "sts" and action == "GetSessionToken":
            raise AccessDenied("Cannot call GetSessionToken with session credentials")
        return
    if service == "iam" and not session.mfa_authenticated:
        # AWS answers IAM calls made with GetSessionToken credentials without MFA so.
        raise sigv4.InvalidClientTokenId(sigv4.INVALID_TOKEN_MESSAGE)
    if service == "sts" and action not in _SESSION_TOKEN_STS_ACTIONS:
        raise AccessDenied(f"Cannot call {action} with session credentials")


def _account_of(caller: sigv4.AuthenticatedCaller) -> Account:
    credential = caller.credential
    if caller.is_temporary:
        return credential.account
    return credential.user.account


def _audit(call: Call, params: dict[str, Any], *, error: IAMError | None) -> None:
    """One event for a read, or for any failed call (the service's transaction rolled back
    with its own event), in its own transaction."""
    try:
        outermost = not transaction.get_connection().in_atomic_block
        with transaction.atomic():
            if error is None and outermost:
                _commit_without_waiting_for_disk()
            record_event(
                actor=call.actor,
                action=call.iam_action,
                resource_arn=call.resource_arn,
                category="api",
                parameters=params,
                error_code=error.code if error else "",
                error_message=error.message if error else "",
            )
    except Exception:
        logger.exception(
            "could not audit %s request %s", call.iam_action, call.actor.meta.request_id
        )


def _commit_without_waiting_for_disk() -> None:
    """Successful reads are audited with PostgreSQL's asynchronous commit.

    Every audited transaction locks the chain head row (``audit.services``) and, with a
    synchronous commit, holds it until the commit record is flushed to disk, so reads used to
    queue writers (and each other) behind one fsync each. Reads stay in the same hash chain —
    one ordered, verifiable trail, which a second chain or a batching buffer would give up or
    delay — but their transactions release the lock as soon as they commit in memory.

    The trade-off, per PostgreSQL's "Asynchronous Commit": after a database *crash* the read
    events of the last moments (at most 3 × ``wal_writer_delay``, 600 ms by default) may be
    missing. Never a broken chain: the event and its head update commit or vanish together,
    and any later synchronous commit (a change) flushes the write-ahead log up to itself, so
    a crash can only cut the tail of the trail, never remove a link from its middle. Changes,
    sign-ins and every failed or denied call keep synchronous commits.
    """
    connection = transaction.get_connection()
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")


# --- the shared root ----------------------------------------------------------------------------


def _console_resolver() -> URLResolver:
    """The project's URL map without the API's own root pattern."""
    from api import urls as api_urls

    root = get_resolver()
    patterns = [p for p in root.url_patterns if getattr(p, "urlconf_module", None) is not api_urls]
    return URLResolver(RegexPattern(r"^/"), patterns)


def _console(request: HttpRequest) -> HttpResponse:
    match = _console_resolver().resolve(request.path_info)
    request.resolver_match = match
    # Re-run the view middleware for the console view, so its CSRF protection and login rule
    # apply as if it had been resolved directly.
    for dotted in settings.MIDDLEWARE:
        middleware_class = import_string(dotted)
        if not hasattr(middleware_class, "process_view"):
            continue
        middleware = middleware_class(lambda r: HttpResponse())
        response = middleware.process_view(request, match.func, match.args, match.kwargs)
        if response is not None:
            return response
    return match.func(request, *match.args, **match.kwargs)


def _login_not_required(view: Any) -> Any:
    view.login_required = False
    return view


@_login_not_required
@csrf_exempt
def root(request: HttpRequest) -> HttpResponse:
    """``/``: the Query API for SigV4-signed requests, the console for everything else."""
    if sigv4.is_signed(request):
        return query_api(request)
    if handlers_federation.is_unsigned_sts_call(request):
        # AssumeRoleWithWebIdentity is unsigned in AWS: the ID token is the credential.
        return handlers_federation.unsigned_sts(request)
    if request.method not in ("GET", "HEAD") or "Action" in request.GET:
        # Any other non-GET, or a GET naming an Action, is an unsigned Query API call (the
        # rule identity.middleware applies too): AWS's MissingAuthenticationToken, not a
        # console page.
        return query_api(request)
    return _console(request)

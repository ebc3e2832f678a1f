"""Signature Version 4: who signed this request, verified exactly as AWS does.

Both forms are accepted: the ``Authorization: AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…,
Signature=…`` header and the presigned query (``X-Amz-Algorithm``, ``X-Amz-Credential``,
``X-Amz-Date``, ``X-Amz-Expires``, ``X-Amz-SignedHeaders``, ``X-Amz-Signature`` and, for
temporary credentials, ``X-Amz-Security-Token``). The steps follow AWS's "Create a signed AWS
API request" (https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html):
canonical request → string to sign over the credential scope → HMAC chain from the secret.

``verify_request(request)`` is the public entry point, shared by the Query API and the decision
API. It raises a ``SigV4Error`` (an ``identity.errors.IAMError`` with AWS's code, status and
message) or returns an ``AuthenticatedCaller`` whose ``actor`` services and ``policies.access``
understand. Secrets never appear in an error, a log line or the caller object's ``repr``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, unquote

from django.conf import settings
from django.db.models import Q
from django.http import HttpRequest
from django.utils import timezone

from audit.context import Actor
from identity import crypto, naming
from identity.errors import IAMError
from identity.models import AccessKey, TemporaryCredential
from identity.request_context import request_meta
from identity.sts import hash_session_token

ALGORITHM = "AWS4-HMAC-SHA256"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
# AWS refuses requests whose time is more than 5 minutes from its own clock.
MAX_SKEW = timedelta(minutes=5)
# Presigned URLs live at most 7 days (AWS SigV4 query-string authentication).
MAX_PRESIGNED_EXPIRES_S = 604800
DEFAULT_SERVICES = frozenset({"iam", "sts"})
# Access-key last-used is written at most this often per key: AWS reports it with hour-level
# granularity, and a write per signed call would make every read a write.
LAST_USED_RESOLUTION = timedelta(seconds=60)

_AMZ_DATE = re.compile(r"^\d{8}T\d{6}Z$")
_AUTH_PARAM = re.compile(r"\s*([A-Za-z]+)\s*=\s*([^,\s]*)\s*")

BAD_SIGNATURE_MESSAGE = (
    "The request signature we calculated does not match the signature you provided. Check your "
    "AWS Secret Access Key and signing method. Consult the service documentation for details."
)
INVALID_TOKEN_MESSAGE = "The security token included in the request is invalid."  # noqa: S105 - a message


class SigV4Error(IAMError):
    """An authentication failure, rendered like AWS's."""

    http_status = 403
    sender_fault = True


class InvalidClientTokenId(SigV4Error):
    code = "InvalidClientTokenId"


class SignatureDoesNotMatch(SigV4Error):
    code = "SignatureDoesNotMatch"


class IncompleteSignature(SigV4Error):
    code = "IncompleteSignature"
    http_status = 400


class MissingAuthenticationToken(SigV4Error):
    code = "MissingAuthenticationToken"


class ExpiredToken(SigV4Error):
    code = "ExpiredToken"


class AuthorizationQueryParametersError(SigV4Error):
    code = "AuthorizationQueryParametersError"
    http_status = 400


class RootAccessKeyRefused(SigV4Error):
    code = "AccessDenied"


@dataclass(frozen=True)
class AuthenticatedCaller:
    """A verified signer: the actor to authorize and audit, and what the signature scoped."""

    actor: Actor
    access_key_id: str
    service: str
    region: str
    presigned: bool
    # The stored credential: an ``AccessKey`` or a ``TemporaryCredential``.
    credential: Any = field(repr=False)

    @property
    def is_temporary(self) -> bool:
        return isinstance(self.credential, TemporaryCredential)


@dataclass(frozen=True)
class _Parsed:
    access_key_id: str
    date: str
    region: str
    service: str
    signed_headers: list[str]
    signature: str
    amz_date: str
    security_token: str | None
    presigned: bool
    expires_s: int | None


def is_signed(request: HttpRequest) -> bool:
    """Whether the request carries SigV4 in either form (the Query API dispatch test)."""
    if request.META.get("HTTP_AUTHORIZATION", "").startswith(ALGORITHM):
        return True
    return "X-Amz-Algorithm" in request.GET


# --- canonical request -----------------------------------------------------------------------


def _uri_encode(value: str) -> str:
    """AWS's URI encoding: every byte except the unreserved characters ``A-Za-z0-9-_.~``."""
    return quote(value, safe="-_.~")


def _raw_query_pairs(query_string: str) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for part in query_string.split("&"):
        if not part:
            continue
        key, _, value = part.partition("=")
        pairs.append((unquote(key), unquote(value)))
    return pairs


def canonical_query_string(query_string: str, *, exclude_signature: bool) -> str:
    """Each name and value decoded, re-encoded the one way AWS does, sorted by name then value."""
    encoded = [
        (_uri_encode(k), _uri_encode(v))
        for k, v in _raw_query_pairs(query_string)
        if not (exclude_signature and k == "X-Amz-Signature")
    ]
    encoded.sort()
    return "&".join(f"{k}={v}" for k, v in encoded)


def canonical_uri(raw_path: str) -> str:
    """The path as sent, normalized and encoded again (every service but S3 double-encodes)."""
    path = raw_path or "/"
    segments: list[str] = []
    for segment in path.split("/"):
        if segment in ("", "."):
            continue
        if segment == "..":
            if segments:
                segments.pop()
            continue
        segments.append(segment)
    normalized = "/" + "/".join(segments)
    if path.endswith("/") and normalized != "/":
        normalized += "/"
    return quote(normalized, safe="/~")


def _header_value(request: HttpRequest, name: str) -> str | None:
    if name == "content-type":
        value = request.META.get("CONTENT_TYPE")
    elif name == "content-length":
        value = request.META.get("CONTENT_LENGTH")
    else:
        value = request.META.get("HTTP_" + name.upper().replace("-", "_"))
    return value


def canonical_headers(request: HttpRequest, signed_headers: list[str]) -> str:
    lines = []
    for name in signed_headers:
        value = _header_value(request, name)
        if value is None:
            raise SignatureDoesNotMatch(BAD_SIGNATURE_MESSAGE)
        lines.append(f"{name}:{' '.join(value.split())}\n")
    return "".join(lines)


def _raw_path(request: HttpRequest) -> str:
    # The path exactly as the client sent it (still percent-encoded) where the server tells us.
    raw = request.META.get("RAW_URI") or request.META.get("REQUEST_URI")
    if raw:
        return raw.split("?", 1)[0]
    return request.get_full_path().split("?", 1)[0]


def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    key = hmac.new(f"AWS4{secret}".encode(), date.encode(), hashlib.sha256).digest()
    for part in (region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def string_to_sign(canonical_request: str, *, amz_date: str, scope: str) -> str:
    digest = hashlib.sha256(canonical_request.encode("utf-8")).hexdigest()
    return f"{ALGORITHM}\n{amz_date}\n{scope}\n{digest}"


# --- parsing the two forms --------------------------------------------------------------------


def _parse_credential(credential: str) -> tuple[str, str, str, str]:
    parts = credential.split("/")
    if len(parts) != 5 or parts[4] != "aws4_request" or not all(parts):
        raise IncompleteSignature(
            f"Credential should be scoped to a valid region. Credential must have exactly 5 "
            f"slash-delimited elements, e.g. keyid/date/region/service/term, got '{credential}'"
        )
    return parts[0], parts[1], parts[2], parts[3]


def _parse_header(request: HttpRequest, header: str) -> _Parsed:
    body = header[len(ALGORITHM) :]
    params: dict[str, str] = {}
    for item in body.split(","):
        match = _AUTH_PARAM.fullmatch(item)
        if match:
            params[match.group(1)] = match.group(2)
    missing = [name for name in ("Credential", "SignedHeaders", "Signature") if name not in params]
    if missing:
        raise IncompleteSignature(
            " ".join(f"Authorization header requires '{name}' parameter." for name in missing)
            + f" Authorization={ALGORITHM}"
        )
    amz_date = request.META.get("HTTP_X_AMZ_DATE", "")
    if not amz_date:
        raise IncompleteSignature(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
        )
    key_id, date, region, service = _parse_credential(params["Credential"])
    return _Parsed(
        access_key_id=key_id,
        date=date,
        region=region,
        service=service,
        signed_headers=params["SignedHeaders"].split(";"),
        signature=params["Signature"],
        amz_date=amz_date,
        security_token=request.META.get("HTTP_X_AMZ_SECURITY_TOKEN"),
        presigned=False,
        expires_s=None,
    )


def _parse_query(request: HttpRequest) -> _Parsed:
    query = dict(_raw_query_pairs(request.META.get("QUERY_STRING", "")))
    if query.get("X-Amz-Algorithm") != ALGORITHM:
        raise AuthorizationQueryParametersError(f'X-Amz-Algorithm only supports "{ALGORITHM}"')
    required = (
        "X-Amz-Credential",
        "X-Amz-Date",
        "X-Amz-Expires",
        "X-Amz-SignedHeaders",
        "X-Amz-Signature",
    )
    missing = [name for name in required if not query.get(name)]
    if missing:
        raise AuthorizationQueryParametersError(
            "Query-string authentication version 4 requires the X-Amz-Algorithm, "
            "X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and "
            "X-Amz-Expires parameters."
        )
    expires = query["X-Amz-Expires"]
    if not expires.isdigit():
        raise AuthorizationQueryParametersError("X-Amz-Expires should be a number")
    if int(expires) > MAX_PRESIGNED_EXPIRES_S:
        raise AuthorizationQueryParametersError(
            "X-Amz-Expires must be less than a week (in seconds) that is 604800"
        )
    key_id, date, region, service = _parse_credential(query["X-Amz-Credential"])
    return _Parsed(
        access_key_id=key_id,
        date=date,
        region=region,
        service=service,
        signed_headers=query["X-Amz-SignedHeaders"].split(";"),
        signature=query["X-Amz-Signature"],
        amz_date=query["X-Amz-Date"],
        security_token=query.get("X-Amz-Security-Token"),
        presigned=True,
        expires_s=int(expires),
    )


def _fmt(moment: datetime) -> str:
    return moment.strftime("%Y%m%dT%H%M%SZ")


def _check_time(parsed: _Parsed, now: datetime) -> None:
    if not _AMZ_DATE.match(parsed.amz_date):
        raise IncompleteSignature(
            f"Date must be in ISO-8601 'basic format'. Got '{parsed.amz_date}'. See "
            "http://en.wikipedia.org/wiki/ISO_8601"
        )
    signed_at = datetime.strptime(parsed.amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    if parsed.date != parsed.amz_date[:8]:
        raise SignatureDoesNotMatch(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
            f"from HTTP: '{parsed.date}' != '{parsed.amz_date[:8]}', from '{parsed.amz_date}'."
        )
    if signed_at > now + MAX_SKEW:
        raise SignatureDoesNotMatch(
            f"Signature not yet current: {parsed.amz_date} is still later than "
            f"{_fmt(now + MAX_SKEW)} ({_fmt(now)} + 5 min.)"
        )
    if parsed.presigned:
        assert parsed.expires_s is not None
        if now > signed_at + timedelta(seconds=parsed.expires_s):
            raise SignatureDoesNotMatch(
                f"Signature expired: {_fmt(signed_at + timedelta(seconds=parsed.expires_s))} "
                f"is now earlier than {_fmt(now)}"
            )
    elif signed_at < now - MAX_SKEW:
        raise SignatureDoesNotMatch(
            f"Signature expired: {parsed.amz_date} is now earlier than {_fmt(now - MAX_SKEW)} "
            f"({_fmt(now)} - 5 min.)"
        )


def _payload_hashes(request: HttpRequest, parsed: _Parsed) -> list[str]:
    """The payload hash(es) the signer may have used.

    A presigned URL cannot sign a body it does not know, so it may not carry one (or unsigned
    parameters could ride along with a valid signature). For it botocore signs the hash of the
    empty body, S3-style signers ``UNSIGNED-PAYLOAD``; with no body both mean the same.
    """
    actual = hashlib.sha256(request.body).hexdigest()
    if parsed.presigned:
        if request.body:
            raise SignatureDoesNotMatch(
                "A presigned request may not carry a body; put every parameter in the query."
            )
        return [actual, UNSIGNED_PAYLOAD]
    claimed = request.META.get("HTTP_X_AMZ_CONTENT_SHA256")
    if claimed is not None and claimed != actual:
        # UNSIGNED-PAYLOAD is an S3 feature; here the body is the request, so it is signed.
        raise SignatureDoesNotMatch(
            "The provided 'x-amz-content-sha256' header does not match what was computed."
        )
    return [actual]


def canonical_request(request: HttpRequest, parsed: _Parsed, payload_hash: str) -> str:
    return "\n".join(
        [
            request.method or "GET",
            canonical_uri(_raw_path(request)),
            canonical_query_string(
                request.META.get("QUERY_STRING", ""), exclude_signature=parsed.presigned
            ),
            canonical_headers(request, parsed.signed_headers),
            ";".join(parsed.signed_headers),
            payload_hash,
        ]
    )


# --- credentials ------------------------------------------------------------------------------


def _resolve(parsed: _Parsed, now: datetime) -> tuple[Any, str]:
    """The stored credential for the key id and its decrypted secret."""
    key_id = parsed.access_key_id
    if key_id.startswith(naming.TEMPORARY_ACCESS_KEY_PREFIX):
        credential = (
            TemporaryCredential.objects.select_related("account", "role", "user")
            .filter(access_key_id=key_id)
            .first()
        )
        if credential is None or not parsed.security_token:
            raise InvalidClientTokenId(INVALID_TOKEN_MESSAGE)
        if not hmac.compare_digest(
            credential.session_token_hash, hash_session_token(parsed.security_token)
        ):
            raise InvalidClientTokenId(INVALID_TOKEN_MESSAGE)
        if credential.expires_at <= now:
            raise ExpiredToken("The security token included in the request is expired")
        if credential.user is not None and not credential.user.is_active:
            raise InvalidClientTokenId(INVALID_TOKEN_MESSAGE)
        return credential, crypto.decrypt_text(credential.secret_encrypted)
    key = (
        AccessKey.objects.select_related("user", "user__account")
        .filter(access_key_id=key_id)
        .first()
    )
    if key is None or key.status != AccessKey.Status.ACTIVE or not key.user.is_active:
        raise InvalidClientTokenId(INVALID_TOKEN_MESSAGE)
    if parsed.security_token:
        # A long-term key with a session token is a confused client; AWS refuses it.
        raise InvalidClientTokenId(INVALID_TOKEN_MESSAGE)
    return key, crypto.decrypt_text(key.secret_encrypted)


def _actor_for(request: HttpRequest, credential: Any, key_id: str) -> Actor:
    meta = request_meta(request)
    if isinstance(credential, TemporaryCredential):
        if credential.role is not None:
            return Actor(
                arn=naming.assumed_role_arn(
                    credential.account_id, credential.role.name, credential.session_name
                ),
                account_id=credential.account_id,
                kind="role_session",
                meta=meta,
                session=credential,
                access_key_id=key_id,
            )
        user = credential.user
        return Actor(
            arn=user.arn,
            account_id=user.account_id,
            kind="root" if user.is_root else "user",
            meta=meta,
            user=user,
            session=credential,
            access_key_id=key_id,
        )
    user = credential.user
    return Actor(
        arn=user.arn,
        account_id=user.account_id,
        kind="root" if user.is_root else "user",
        meta=meta,
        user=user,
        access_key_id=key_id,
    )


def record_key_use(credential: Any, *, service: str, region: str, now: datetime) -> None:
    """Access-key (or role) last-used, as ``GetAccessKeyLastUsed`` and ``RoleLastUsed`` report.

    A conditional UPDATE: it writes only when the stored value is older than the resolution
    or names another service/region, so concurrent calls do not queue on the row.
    """
    stale = now - LAST_USED_RESOLUTION
    if isinstance(credential, AccessKey):
        from identity import services as identity_services

        record = getattr(identity_services, "record_access_key_use", None)
        if record is not None:
            record(access_key_id=credential.access_key_id, service=service, region=region)
            return
        AccessKey.objects.filter(access_key_id=credential.access_key_id).filter(
            Q(last_used_at__isnull=True)
            | Q(last_used_at__lt=stale)
            | ~Q(last_used_service=service)
            | ~Q(last_used_region=region)
        ).update(last_used_at=now, last_used_service=service, last_used_region=region)
    elif credential.role_id is not None:
        from identity.models import Role

        Role.objects.filter(pk=credential.role_id).filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lt=stale) | ~Q(last_used_region=region)
        ).update(last_used_at=now, last_used_region=region)


def verify_request(
    request: HttpRequest,
    *,
    services: frozenset[str] = DEFAULT_SERVICES,
    now: datetime | None = None,
    record_use: bool = True,
) -> AuthenticatedCaller:
    """Authenticate a SigV4-signed request, or raise a ``SigV4Error`` as AWS words it.

    Any region is accepted (IAM is global); the service must be one of ``services`` and is
    returned, since it tells the Query API whether this is an IAM or an STS call.
    """
    now = now or timezone.now()
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if header.startswith(ALGORITHM):
        parsed = _parse_header(request, header)
    elif "X-Amz-Algorithm" in request.GET:
        parsed = _parse_query(request)
    else:
        raise MissingAuthenticationToken("Request is missing Authentication Token")
    if parsed.service not in services:
        wanted = sorted(services)[0]
        raise SignatureDoesNotMatch(f"Credential should be scoped to correct service: '{wanted}'. ")
    if "host" not in parsed.signed_headers:
        raise SignatureDoesNotMatch(
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."
        )
    if parsed.signed_headers != sorted(parsed.signed_headers) or any(
        name != name.lower() for name in parsed.signed_headers
    ):
        raise SignatureDoesNotMatch(BAD_SIGNATURE_MESSAGE)
    _check_time(parsed, now)
    credential, secret = _resolve(parsed, now)
    scope = f"{parsed.date}/{parsed.region}/{parsed.service}/aws4_request"
    key = signing_key(secret, parsed.date, parsed.region, parsed.service)
    del secret
    matched = False
    for payload_hash in _payload_hashes(request, parsed):
        to_sign = string_to_sign(
            canonical_request(request, parsed, payload_hash), amz_date=parsed.amz_date, scope=scope
        )
        expected = hmac.new(key, to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
        matched = hmac.compare_digest(expected, parsed.signature) or matched
    if not matched:
        raise SignatureDoesNotMatch(BAD_SIGNATURE_MESSAGE)
    actor = _actor_for(request, credential, parsed.access_key_id)
    if actor.kind == "root" and not settings.ALLOW_ROOT_ACCESS_KEYS:
        # AWS: "We don't recommend that you create access keys for your root user." Checked
        # after the signature, so only the key's holder learns it is a root key.
        raise RootAccessKeyRefused(
            "Access keys of the root user are refused on this installation "
            "(set PORTCULLIS_ALLOW_ROOT_ACCESS_KEYS to allow them)."
        )
    if record_use:
        record_key_use(credential, service=parsed.service, region=parsed.region, now=now)
    return AuthenticatedCaller(
        actor=actor,
        access_key_id=parsed.access_key_id,
        service=parsed.service,
        region=parsed.region,
        presigned=parsed.presigned,
        credential=credential,
    )

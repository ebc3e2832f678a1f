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

import copy
import functools
import hashlib
import hmac
import logging
import re
import threading
import time
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

logger = logging.getLogger(__name__)

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
# The header as botocore and the AWS SDKs write it: parsed in one match, the general loop
# below handles every other spacing and order.
_AUTH_USUAL = re.compile(r" Credential=([^,\s]*), SignedHeaders=([^,\s]*), Signature=([^,\s]*)")

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


@dataclass(slots=True)  # built on every signed request: no frozen __setattr__ detour
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


@functools.lru_cache(maxsize=1024)  # a service has few paths; a pure function of one string
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


class KeyedHmac:
    """HMAC-SHA256 under one key with its padded key blocks hashed once (RFC 2104), for a key
    that signs many messages: each signature then costs two hash copies and two short updates
    instead of OpenSSL's HMAC set-up, which dominates for messages this short."""

    __slots__ = ("_inner", "_outer")

    def __init__(self, key: bytes) -> None:
        if len(key) > 64:  # SHA-256's block size; SigV4 signing keys are 32 bytes
            key = hashlib.sha256(key).digest()
        block = key.ljust(64, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in block))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in block))

    def hexdigest(self, message: bytes) -> str:
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest()


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
    usual = _AUTH_USUAL.fullmatch(body)
    if usual:
        params["Credential"], params["SignedHeaders"], params["Signature"] = usual.groups()
    else:
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


@functools.lru_cache(maxsize=256)  # requests signed in the same second share their X-Amz-Date
def _signed_at(amz_date: str) -> datetime:
    """The X-Amz-Date as a datetime; ValueError unless it is ISO 8601 basic format."""
    if not _AMZ_DATE.match(amz_date):
        raise ValueError(amz_date)
    # The regex fixed the layout; this is strptime's work at a fraction of its cost, and
    # datetime() itself refuses a month 13 or an hour 25.
    return datetime(
        int(amz_date[0:4]),
        int(amz_date[4:6]),
        int(amz_date[6:8]),
        int(amz_date[9:11]),
        int(amz_date[11:13]),
        int(amz_date[13:15]),
        tzinfo=UTC,
    )


def _check_time(parsed: _Parsed, now: datetime) -> None:
    try:
        signed_at = _signed_at(parsed.amz_date)
    except ValueError:
        raise IncompleteSignature(
            f"Date must be in ISO-8601 'basic format'. Got '{parsed.amz_date}'. See "
            "http://en.wikipedia.org/wiki/ISO_8601"
        ) from None
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
    # AWS words an expired signature "Signature expired: <date> is now earlier than <date>"
    # (IAM User Guide, "Troubleshoot signed requests for AWS APIs",
    # https://docs.aws.amazon.com/IAM/latest/UserGuide/signature-v4-troubleshooting.html): the
    # request's X-Amz-Date, then the earliest date still accepted, then how that was reckoned.
    # A presigned request is accepted for its X-Amz-Expires instead of the 5-minute window.
    if parsed.presigned:
        assert parsed.expires_s is not None
        if now > signed_at + timedelta(seconds=parsed.expires_s):
            raise SignatureDoesNotMatch(
                f"Signature expired: {parsed.amz_date} is now earlier than "
                f"{_fmt(now - timedelta(seconds=parsed.expires_s))} "
                f"({_fmt(now)} - {parsed.expires_s} sec.)"
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


def _load(parsed: _Parsed) -> Any:
    """The stored credential for the key id, with what authentication and the actor need."""
    if parsed.access_key_id.startswith(naming.TEMPORARY_ACCESS_KEY_PREFIX):
        return (
            TemporaryCredential.objects.select_related("account", "role", "user")
            .filter(access_key_id=parsed.access_key_id)
            .first()
        )
    return (
        AccessKey.objects.select_related("user", "user__account")
        .filter(access_key_id=parsed.access_key_id)
        .first()
    )


def _check_credential(credential: Any, parsed: _Parsed, now: datetime) -> None:
    """Whether the credential may sign now: status, owner, session token and expiry. Checked
    on every request, cached credential or not."""
    if credential is None:
        raise InvalidClientTokenId(INVALID_TOKEN_MESSAGE)
    if isinstance(credential, TemporaryCredential):
        if not parsed.security_token:
            raise InvalidClientTokenId(INVALID_TOKEN_MESSAGE)
        if not hmac.compare_digest(
            credential.session_token_hash, hash_session_token(parsed.security_token)
        ):
            raise InvalidClientTokenId(INVALID_TOKEN_MESSAGE)
        if credential.expires_at <= now:
            raise ExpiredToken("The security token included in the request is expired")
        if credential.user is not None and not credential.user.is_active:
            raise InvalidClientTokenId(INVALID_TOKEN_MESSAGE)
        return
    if credential.status != AccessKey.Status.ACTIVE or not credential.user.is_active:
        raise InvalidClientTokenId(INVALID_TOKEN_MESSAGE)
    if parsed.security_token:
        # A long-term key with a session token is a confused client; AWS refuses it.
        raise InvalidClientTokenId(INVALID_TOKEN_MESSAGE)


# --- the verified-credential cache ---------------------------------------------------------
#
# Every signed call used to look its key up (a three-table join) and decrypt its secret. A
# process now keeps, per long-term access key it verified, the key row (with its user and
# account) and the *signing keys* derived for the scopes it signed — never the secret itself,
# which is decrypted only to derive a key for a new date/region/service.
#
# When is a cached key still good? With the compiled-policy store (Redis), exactly as long as
# the store holds a trusted, active entry for the key (``propagation.credential_entry``): the
# entry depends on the key and its user, and every committed change to either (deactivation,
# deletion, a user renamed, tagged or disabled) sets a marker after commit that makes the
# entry untrusted (``policies.store``), so the next call reads PostgreSQL again. The decision
# API's caller cache (``api.decision``) relies on the same entries. Without the store (the
# embedded default), a cached key is used for at most CREDENTIAL_CACHE_S seconds: a change
# made in another process is seen that much later; one made through this process's Query API
# at once (``forget_credentials`` after every successful write). Either way the cache is capped
# at CREDENTIAL_CACHE_MAX_S. Temporary credentials are not cached: their validity also
# depends on their role (``sessions_revoked_before``), which those entries do not track.
# Only verified credentials are cached, so an unknown key id or a bad signature always reaches
# the database.
CREDENTIAL_CACHE_S = 2.0
CREDENTIAL_CACHE_MAX_S = 60.0
CREDENTIAL_CACHE_SIZE = 1024


@dataclass
class _Cached:
    credential: Any = field(repr=False)
    loaded_at: float
    signing_keys: dict[tuple[str, str, str], bytes] = field(default_factory=dict, repr=False)
    # The change sequence read before the key was (``propagation.current_sequence``).
    stamp: int | None = None


_cache: dict[str, _Cached] = {}
_cache_lock = threading.Lock()


def forget_credentials(access_key_id: str | None = None) -> None:
    """Drop one cached credential, or all of them."""
    with _cache_lock:
        if access_key_id is None:
            _cache.clear()
        else:
            _cache.pop(access_key_id, None)


def after_write() -> None:
    """After a successful write through this process: without the store (whose markers tell
    every process about committed changes), forget what this process cached, so its next call
    sees the change at once."""
    from policies import store

    if not store.enabled():
        forget_credentials()


def _store_vouches_for(key_id: str) -> bool:
    """Whether the compiled-policy store holds a trusted, active entry for the key."""
    from policies import store

    try:
        entry = store.read(unique_id=key_id)
    except Exception:
        # Unreachable or unreadable: the database decides (never a reason to trust the cache).
        return False
    return entry is not None and not entry.tomb and entry.facts.get("status") == "Active"


def _cached(key_id: str) -> _Cached | None:
    from policies import store

    if key_id.startswith(naming.TEMPORARY_ACCESS_KEY_PREFIX):
        return None
    entry = _cache.get(key_id)
    if entry is None:
        return None
    age = time.monotonic() - entry.loaded_at
    if store.enabled():
        good = age <= CREDENTIAL_CACHE_MAX_S and _store_vouches_for(key_id)
    else:
        good = age <= getattr(settings, "API_CREDENTIAL_CACHE_S", CREDENTIAL_CACHE_S)
    if not good:
        forget_credentials(key_id)
        return None
    return entry


def _remember(key_id: str, entry: _Cached) -> None:
    """Keep a verified long-term key; with the store, first publish its entry (stamped with
    the sequence read before the key was, so any later change outranks it)."""
    from policies import propagation, store

    if isinstance(entry.credential, TemporaryCredential):
        return
    if store.enabled():
        try:
            store.publish([propagation.credential_entry(key_id, stamp=entry.stamp or 0)])
        except Exception:
            # Not cached then; the request itself is already authenticated and goes on.
            logger.warning("could not publish the entry of key %s; not caching it", key_id)
            return
    with _cache_lock:
        if len(_cache) >= CREDENTIAL_CACHE_SIZE:
            _cache.clear()
        _cache[key_id] = entry


def _resolve(parsed: _Parsed, now: datetime) -> tuple[Any, bytes, _Cached | None]:
    """The stored credential for the key id and the signing key for the request's scope.

    Returns the cache entry to remember once the signature has been verified (None when the
    credential came from the cache already)."""
    from policies import propagation, store

    entry = _cached(parsed.access_key_id)
    fresh = entry is None
    if entry is None:
        stamp = None
        if store.enabled() and not parsed.access_key_id.startswith(
            naming.TEMPORARY_ACCESS_KEY_PREFIX
        ):
            stamp = propagation.current_sequence()
        loaded = _load(parsed)
        entry = _Cached(credential=loaded, loaded_at=time.monotonic(), stamp=stamp)
    credential = entry.credential
    _check_credential(credential, parsed, now)
    scope = (parsed.date, parsed.region, parsed.service)
    key = entry.signing_keys.get(scope)
    if key is None:
        secret = crypto.decrypt_text(credential.secret_encrypted)
        key = signing_key(secret, *scope)
        del secret
        entry.signing_keys[scope] = key
    # Each request gets its own instances (handlers may touch what they are given); the cache
    # keeps a pristine copy.
    if fresh:
        entry.credential = copy.deepcopy(credential)
        return credential, key, entry
    return copy.deepcopy(credential), key, None


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


# (key id, service, region) -> when this process last wrote it (time.monotonic()).
_last_recorded: dict[tuple[str, str, str], float] = {}


def record_key_use(credential: Any, *, service: str, region: str, now: datetime) -> None:
    """Access-key (or role) last-used, as ``GetAccessKeyLastUsed`` and ``RoleLastUsed`` report.

    Written at most once per ``LAST_USED_RESOLUTION`` per key, service and region by each
    process (it used to be an UPDATE on every signed call); the write itself is conditional
    and only moves the time forward, so concurrent processes never queue on the row.
    """
    memo = (credential.access_key_id, service, region)
    seen = _last_recorded.get(memo)
    if seen is not None and time.monotonic() - seen < LAST_USED_RESOLUTION.total_seconds():
        return
    if len(_last_recorded) >= CREDENTIAL_CACHE_SIZE:
        _last_recorded.clear()
    _last_recorded[memo] = time.monotonic()
    if isinstance(credential, AccessKey):
        from identity import services as identity_services

        identity_services.record_access_key_use(
            access_key_id=credential.access_key_id, service=service, region=region, when=now
        )
    elif credential.role_id is not None:
        from identity.models import Role

        stale = now - LAST_USED_RESOLUTION
        Role.objects.filter(pk=credential.role_id).filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lt=stale) | ~Q(last_used_region=region)
        ).update(last_used_at=now, last_used_region=region)


def forget_process_state() -> None:
    """Forget every cached credential and last-used memo (after a migrate or flush)."""
    forget_credentials()
    _last_recorded.clear()


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
    credential, key, to_remember = _resolve(parsed, now)
    scope = f"{parsed.date}/{parsed.region}/{parsed.service}/aws4_request"
    matched = False
    for payload_hash in _payload_hashes(request, parsed):
        to_sign = string_to_sign(
            canonical_request(request, parsed, payload_hash), amz_date=parsed.amz_date, scope=scope
        )
        expected = hmac.new(key, to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
        matched = hmac.compare_digest(expected, parsed.signature) or matched
    if not matched:
        raise SignatureDoesNotMatch(BAD_SIGNATURE_MESSAGE)
    if to_remember is not None:
        _remember(parsed.access_key_id, to_remember)
    actor = _actor_for(request, credential, parsed.access_key_id)
    if actor.kind == "root" and not settings.ALLOW_ROOT_ACCESS_KEYS:
        # AWS itself accepts root keys while advising against them: "We strongly recommend
        # that you do not create access key pairs for your root user" (AWS Account Management
        # Reference, "Create access keys for the root user",
        # https://docs.aws.amazon.com/accounts/latest/reference/root-user-access-key.html).
        # Portcullis follows the advice by default. The signature is valid, so this is not
        # InvalidClientTokenId (an unknown or inactive key) but AccessDenied, AWS's code for an
        # authenticated caller who may not do this; checked after the signature, so only the
        # key's holder learns it is a root key.
        raise RootAccessKeyRefused(
            f"User: {actor.arn} is not authorized to use access keys of the root user on this "
            "installation. Use an IAM user or role (AWS recommends not creating root access "
            "keys); an administrator can allow them with PORTCULLIS_ALLOW_ROOT_ACCESS_KEYS."
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

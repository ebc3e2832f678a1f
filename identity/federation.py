"""Identity federation with OpenID Connect providers, as IAM models it.

Three parts, each callable from the console, the Query API and tasks alike:

- **Providers** (``iam:CreateOpenIDConnectProvider`` and its family): the issuer URL, the client
  ids (audiences) and thumbprints, tags; named after the IAM actions, audited, with IAM's
  validation, quota and error texts (IAM API Reference, "CreateOpenIDConnectProvider").
- **Keys**: the provider's discovery document and JWKS, fetched with timeouts by a Celery task
  (``identity.tasks``), cached on the model, refreshed on a beat schedule and, rate-limited,
  when a token names a key id we do not have (key rotation). A provider that cannot be reached
  leaves its cached keys in use until ``OIDC_KEYS_MAX_AGE_S`` after their last fetch.
- **Web identities**: ID token verification (signature with the provider's key, ``alg`` limited
  to what the provider advertises and never ``none`` or a shared-secret HMAC, ``iss`` exactly
  the provider URL, ``aud`` one of its client ids, ``exp``/``iat``/``nbf`` with at most 60 s of
  clock skew, ``nonce`` for the console), the role trust decision with the context keys AWS
  defines for OIDC federation, and the role session that follows
  (``sts:AssumeRoleWithWebIdentity``, and the console's federated sign-in).

Reaching a provider (discovery document, JWKS, token endpoint) goes through ``_http``, which
refuses anything but https, resolves the host itself, refuses the request when *any* address
the name resolves to is private, loopback, link-local or otherwise not public, and then connects
to exactly the address it checked (so a DNS answer that changes between the check and the
connection cannot slip an internal address in). A redirect is followed only for a GET, at most
three times, and each hop is checked the same way; proxies from the environment are not used.
``OIDC_ALLOW_LOOPBACK_HTTP`` (tests only) allows loopback addresses, over http too.

Thumbprints: IAM validates, stores and returns them, and "no longer uses" them for providers
whose certificate chains to a well-known CA (IAM User Guide, "Obtain the thumbprint for an
OpenID Connect identity provider"). Portcullis does the same for every provider: the provider's
TLS certificate must verify against this machine's trusted CAs (with hostname check), and the
thumbprint list is kept for IAM compatibility only. A provider with a private CA needs that CA
in the system trust store (or ``SSL_CERT_FILE``); thumbprints do not stand in for it.

Every rejection is audited with the code and message the caller sees.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import ipaddress
import json
import logging
import re
import secrets
import socket
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from audit.context import Actor, RequestMeta
from audit.services import record_event
from identity import crypto, naming, quotas
from identity.errors import (
    AccessDenied,
    ClientError,
    EntityAlreadyExists,
    IAMError,
    InvalidInput,
    LimitExceeded,
    NoSuchEntity,
    ValidationError,
)
from identity.models import Account, OIDCProvider, Role, TemporaryCredential
from policies import engine

logger = logging.getLogger(__name__)

# --- STS's error vocabulary for web identities (STS API Reference, AssumeRoleWithWebIdentity) --


class InvalidIdentityToken(ClientError):
    """The web identity token that was passed could not be validated."""

    code = "InvalidIdentityToken"


class ExpiredTokenException(ClientError):
    """The web identity token that was passed is expired or is not valid."""

    code = "ExpiredTokenException"


class IDPRejectedClaim(ClientError):
    """The identity provider reported that authentication failed."""

    code = "IDPRejectedClaim"
    http_status = 403


class IDPCommunicationError(ClientError):
    """The identity provider could not be reached to verify the token."""

    code = "IDPCommunicationError"


# --- Limits (IAM API Reference, CreateOpenIDConnectProvider; IAM quotas) --------------------

MAX_CLIENT_IDS = 100
MAX_CLIENT_ID_LENGTH = 255
MAX_THUMBPRINTS = 5
MAX_URL_LENGTH = 255
MAX_WEB_IDENTITY_TOKEN_LENGTH = 20000
# How far a token's exp / iat / nbf may be off our clock.
CLOCK_SKEW_S = 60
FETCH_TIMEOUT_S = 5
FETCH_MAX_BYTES = 1024 * 1024
# At most one key refresh per provider in this many seconds when tokens name unknown keys, so a
# flood of forged kids cannot make us hammer the provider.
UNKNOWN_KID_REFRESH_INTERVAL_S = 30
# Asymmetric JWS algorithms only: an HMAC "signature" would be checked with a shared secret
# anyone holding the client secret could forge, and "none" is no signature at all.
ASYMMETRIC_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
# AWS's session-tag claim (IAM User Guide, "Passing session tags using
# AssumeRoleWithWebIdentity").
TAGS_CLAIM = "https://aws.amazon.com/tags"
ROLE_SESSION_NAME_PATTERN = re.compile(r"[\w+=,.@-]{2,64}", re.ASCII)
_THUMBPRINT_PATTERN = re.compile(r"[0-9a-fA-F]{40}")

ACTION_ASSUME = "sts:AssumeRoleWithWebIdentity"

# --- Providers ------------------------------------------------------------------------------


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def forbidden_address_kind(address: IPAddress) -> str | None:
    """Why Portcullis does not connect to ``address`` (None: it may). Everything that is not a
    public unicast address is refused, so neither a provider URL nor a URL in a provider's
    discovery document can make Portcullis reach the cloud metadata service or an internal
    host. Loopback only when ``OIDC_ALLOW_LOOPBACK_HTTP`` is on (the test providers)."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        elif address.sixtofour is not None or address.teredo is not None:
            # IPv4 tunnelled in IPv6 could carry any IPv4 address; no provider needs it.
            return "tunnelled"
    if address.is_loopback:
        return None if settings.OIDC_ALLOW_LOOPBACK_HTTP else "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_private:
        return "private"
    if address.is_multicast or address.is_reserved or address.is_unspecified:
        return "reserved"
    if not address.is_global:
        return "non-public"
    return None


def _literal_address(host: str) -> IPAddress | None:
    if host.lower() in ("localhost", "localhost.") or host.lower().endswith(".localhost"):
        # RFC 6761: localhost names always resolve to loopback.
        return ipaddress.ip_address("127.0.0.1")
    try:
        return ipaddress.ip_address(host.strip("[]").split("%")[0])
    except ValueError:
        return None


def check_fetchable_url(url: str) -> None:
    """https, and not a literal private, loopback or link-local address; plain http only to a
    loopback address when ``OIDC_ALLOW_LOOPBACK_HTTP`` is on (tests). Host names are checked
    when they are resolved, at every fetch (``_guarded_create_connection``)."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    literal = _literal_address(host) if host else None
    loopback_allowed = (
        settings.OIDC_ALLOW_LOOPBACK_HTTP and literal is not None and literal.is_loopback
    )
    if not host or not (parts.scheme == "https" or (parts.scheme == "http" and loopback_allowed)):
        raise InvalidInput(f"Invalid URL {url}: the URL must begin with https://.")
    kind = forbidden_address_kind(literal) if literal is not None else None
    if kind is not None:
        raise InvalidInput(
            f"Invalid URL {url}: {host} is a {kind} address; an identity provider must be "
            "reachable at a public address."
        )


def validate_provider_url(url: str) -> str:
    """``Url``: 1–255 characters, https, path allowed, no query or fragment (IAM API Reference,
    CreateOpenIDConnectProvider: "Per the OIDC standard, path components are allowed but query
    parameters are not")."""
    if not 1 <= len(url) <= MAX_URL_LENGTH:
        raise ValidationError(
            f"1 validation error detected: Value '{url}' at 'url' failed to satisfy constraint: "
            f"Member must have length less than or equal to {MAX_URL_LENGTH}"
        )
    check_fetchable_url(url)
    parts = urllib.parse.urlsplit(url)
    if parts.query or parts.fragment or parts.username or parts.password:
        raise InvalidInput(f"Invalid URL {url}: query parameters and fragments are not allowed.")
    return url


def validate_client_ids(client_ids: Sequence[str]) -> list[str]:
    cleaned: list[str] = []
    for client_id in client_ids:
        if not 1 <= len(client_id) <= MAX_CLIENT_ID_LENGTH:
            raise ValidationError(
                f"1 validation error detected: Value '{client_id}' at 'clientIDList' failed to "
                "satisfy constraint: Member must satisfy constraint: [Member must have length "
                f"less than or equal to {MAX_CLIENT_ID_LENGTH}, Member must have length greater "
                "than or equal to 1]"
            )
        if client_id not in cleaned:
            cleaned.append(client_id)
    if len(cleaned) > MAX_CLIENT_IDS:
        raise LimitExceeded(
            f"Cannot exceed quota for ClientIdsPerOpenIdConnectProvider: {MAX_CLIENT_IDS}"
        )
    return cleaned


def validate_thumbprints(thumbprints: Sequence[str]) -> list[str]:
    """Each the 40-hex-character SHA-1 of a certificate; at most five."""
    if len(thumbprints) > MAX_THUMBPRINTS:
        raise ValidationError(
            "1 validation error detected: Value at 'thumbprintList' failed to satisfy "
            f"constraint: Member must have length less than or equal to {MAX_THUMBPRINTS}"
        )
    cleaned: list[str] = []
    for thumbprint in thumbprints:
        if not _THUMBPRINT_PATTERN.fullmatch(thumbprint):
            raise ValidationError(
                f"1 validation error detected: Value '{thumbprint}' at 'thumbprintList' failed "
                "to satisfy constraint: Member must satisfy constraint: [Member must have "
                "length less than or equal to 40, Member must have length greater than or "
                "equal to 40, Member must be a hexadecimal string]"
            )
        if thumbprint.lower() not in cleaned:
            cleaned.append(thumbprint.lower())
    return cleaned


def provider_snapshot(provider: OIDCProvider) -> dict[str, Any]:
    """What the audit trail records of a provider (never the console client secret)."""
    return {
        "Arn": provider.arn,
        "Url": provider.url,
        "ClientIDList": list(provider.client_ids),
        "ThumbprintList": list(provider.thumbprints),
        "Tags": list(provider.tags),
        "MfaClaimSatisfiesMfa": provider.mfa_claim_satisfies_mfa,
        "ConsoleClientId": provider.console_client_id,
        "ConsoleClientSecretSet": bool(provider.console_client_secret_encrypted),
        "DisplayName": provider.display_name,
    }


def _not_found(arn: str) -> NoSuchEntity:
    return NoSuchEntity(f"OpenIDConnect Provider not found for arn {arn}")


def get_open_id_connect_provider(*, account: Account, arn: str) -> OIDCProvider:
    """``iam:GetOpenIDConnectProvider``: the provider with this ARN, or ``NoSuchEntity``."""
    parts = naming.parse_arn(arn)
    if (
        parts is None
        or parts["service"] != "iam"
        or not parts["resource"].startswith("oidc-provider/")
    ):
        raise InvalidInput(f"ARN {arn} is not valid.")
    if parts["account"] != account.id:
        raise _not_found(arn)
    host_and_path = parts["resource"].removeprefix("oidc-provider/")
    for provider in OIDCProvider.objects.filter(account=account):
        if provider.host_and_path == host_and_path:
            return provider
    raise _not_found(arn)


def list_open_id_connect_providers(*, account: Account) -> list[OIDCProvider]:
    """``iam:ListOpenIDConnectProviders``: every provider of the account, by ARN."""
    return sorted(OIDCProvider.objects.filter(account=account), key=lambda p: p.arn)


def create_open_id_connect_provider(
    *,
    account: Account,
    url: str,
    client_id_list: Sequence[str] = (),
    thumbprint_list: Sequence[str] = (),
    tags: Sequence[Mapping[str, str]] = (),
    mfa_claim_satisfies_mfa: bool = False,
    console_client_id: str = "",
    console_client_secret: str = "",
    display_name: str = "",
    actor: Actor,
) -> OIDCProvider:
    """``iam:CreateOpenIDConnectProvider``. The discovery document and keys are fetched after
    commit by a task; verification also fetches them on first use."""
    validate_provider_url(url)
    client_ids = validate_client_ids(client_id_list)
    thumbprints = validate_thumbprints(thumbprint_list)
    clean_tags = naming.validate_tags(tags)
    if console_client_id and console_client_id not in client_ids:
        raise InvalidInput(
            f"The console client id {console_client_id} must be one of the provider's client ids."
        )
    if len(display_name) > 64:
        raise InvalidInput("The display name must be at most 64 characters.")
    with transaction.atomic():
        # Lock the account row so concurrent creates cannot both pass the quota check.
        Account.objects.select_for_update().filter(pk=account.pk).exists()
        if (
            OIDCProvider.objects.filter(account=account).count()
            >= quotas.OIDC_PROVIDERS_PER_ACCOUNT
        ):
            raise LimitExceeded(
                "Cannot exceed quota for OpenIdConnectProvidersPerAccount: "
                f"{quotas.OIDC_PROVIDERS_PER_ACCOUNT}"
            )
        provider = OIDCProvider(
            account=account,
            url=url,
            client_ids=client_ids,
            thumbprints=thumbprints,
            tags=clean_tags,
            mfa_claim_satisfies_mfa=mfa_claim_satisfies_mfa,
            console_client_id=console_client_id,
            console_client_secret_encrypted=(
                crypto.encrypt(console_client_secret) if console_client_secret else ""
            ),
            display_name=display_name,
        )
        if any(p.host_and_path == provider.host_and_path for p in account.oidc_providers.all()):
            raise EntityAlreadyExists(f"Provider with url {url} already exists.")
        try:
            with transaction.atomic():
                provider.save(force_insert=True)
        except IntegrityError as exc:
            raise EntityAlreadyExists(f"Provider with url {url} already exists.") from exc
        record_event(
            actor=actor,
            action="iam:CreateOpenIDConnectProvider",
            resource_arn=provider.arn,
            parameters={
                "Url": url,
                "ClientIDList": client_ids,
                "ThumbprintList": thumbprints,
                "Tags": clean_tags,
            },
            after=provider_snapshot(provider),
        )
        provider_id = provider.pk
        transaction.on_commit(lambda: _enqueue_key_fetch(provider_id))
    return provider


def _enqueue_key_fetch(provider_id: int) -> None:
    from identity import tasks

    try:
        tasks.fetch_oidc_provider_keys.delay(provider_id)
    except Exception:
        # The beat refresh (and the first verification) will fetch them.
        logger.warning("could not queue the key fetch of OIDC provider %s", provider_id)


def _update(
    *,
    account: Account,
    arn: str,
    action: str,
    parameters: Mapping[str, Any],
    actor: Actor,
    change: Any,
) -> OIDCProvider:
    """One audited change to a provider: lock, apply ``change``, save, record."""
    with transaction.atomic():
        provider = get_open_id_connect_provider(account=account, arn=arn)
        provider = OIDCProvider.objects.select_for_update().get(pk=provider.pk)
        before = provider_snapshot(provider)
        fields = change(provider)
        if fields:
            provider.save(update_fields=fields)
        record_event(
            actor=actor,
            action=action,
            resource_arn=provider.arn,
            parameters=parameters,
            before=before,
            after=provider_snapshot(provider),
        )
    return provider


def add_client_id_to_open_id_connect_provider(
    *, account: Account, arn: str, client_id: str, actor: Actor
) -> OIDCProvider:
    """``iam:AddClientIDToOpenIDConnectProvider``; adding an existing id changes nothing."""
    validate_client_ids([client_id])

    def change(provider: OIDCProvider) -> list[str]:
        if client_id in provider.client_ids:
            return []
        provider.client_ids = validate_client_ids([*provider.client_ids, client_id])
        return ["client_ids"]

    return _update(
        account=account,
        arn=arn,
        action="iam:AddClientIDToOpenIDConnectProvider",
        parameters={"OpenIDConnectProviderArn": arn, "ClientID": client_id},
        actor=actor,
        change=change,
    )


def remove_client_id_from_open_id_connect_provider(
    *, account: Account, arn: str, client_id: str, actor: Actor
) -> OIDCProvider:
    """``iam:RemoveClientIDFromOpenIDConnectProvider``; removing an absent id changes nothing.
    Removing the console's client id turns console sign-in through the provider off."""

    def change(provider: OIDCProvider) -> list[str]:
        if client_id not in provider.client_ids:
            return []
        provider.client_ids = [c for c in provider.client_ids if c != client_id]
        fields = ["client_ids"]
        if provider.console_client_id == client_id:
            provider.console_client_id = ""
            provider.console_client_secret_encrypted = ""
            fields += ["console_client_id", "console_client_secret_encrypted"]
        return fields

    return _update(
        account=account,
        arn=arn,
        action="iam:RemoveClientIDFromOpenIDConnectProvider",
        parameters={"OpenIDConnectProviderArn": arn, "ClientID": client_id},
        actor=actor,
        change=change,
    )


def update_open_id_connect_provider_thumbprint(
    *, account: Account, arn: str, thumbprint_list: Sequence[str], actor: Actor
) -> OIDCProvider:
    """``iam:UpdateOpenIDConnectProviderThumbprint``: replaces the whole list."""
    thumbprints = validate_thumbprints(thumbprint_list)

    def change(provider: OIDCProvider) -> list[str]:
        provider.thumbprints = thumbprints
        return ["thumbprints"]

    return _update(
        account=account,
        arn=arn,
        action="iam:UpdateOpenIDConnectProviderThumbprint",
        parameters={"OpenIDConnectProviderArn": arn, "ThumbprintList": thumbprints},
        actor=actor,
        change=change,
    )


def update_open_id_connect_provider_sign_in(
    *,
    account: Account,
    arn: str,
    console_client_id: str,
    console_client_secret: str | None,
    display_name: str,
    mfa_claim_satisfies_mfa: bool,
    actor: Actor,
) -> OIDCProvider:
    """Portcullis's console sign-in settings of a provider (no IAM counterpart).
    ``console_client_secret`` None keeps the stored secret; "" clears it."""
    if len(display_name) > 64:
        raise InvalidInput("The display name must be at most 64 characters.")

    def change(provider: OIDCProvider) -> list[str]:
        if console_client_id and console_client_id not in provider.client_ids:
            raise InvalidInput(
                f"The console client id {console_client_id} must be one of the provider's "
                "client ids."
            )
        provider.console_client_id = console_client_id
        if console_client_secret is not None:
            provider.console_client_secret_encrypted = (
                crypto.encrypt(console_client_secret) if console_client_secret else ""
            )
        provider.display_name = display_name
        provider.mfa_claim_satisfies_mfa = mfa_claim_satisfies_mfa
        return [
            "console_client_id",
            "console_client_secret_encrypted",
            "display_name",
            "mfa_claim_satisfies_mfa",
        ]

    return _update(
        account=account,
        arn=arn,
        action="portcullis:UpdateOpenIDConnectProviderSignIn",
        parameters={
            "OpenIDConnectProviderArn": arn,
            "ConsoleClientId": console_client_id,
            "ConsoleClientSecret": console_client_secret,
            "DisplayName": display_name,
            "MfaClaimSatisfiesMfa": mfa_claim_satisfies_mfa,
        },
        actor=actor,
        change=change,
    )


def tag_open_id_connect_provider(
    *, account: Account, arn: str, tags: Sequence[Mapping[str, str]], actor: Actor
) -> OIDCProvider:
    """``iam:TagOpenIDConnectProvider``: a tag with an existing key replaces its value."""

    def change(provider: OIDCProvider) -> list[str]:
        provider.tags = naming.merge_tags(provider.tags, tags)
        return ["tags"]

    return _update(
        account=account,
        arn=arn,
        action="iam:TagOpenIDConnectProvider",
        parameters={"OpenIDConnectProviderArn": arn, "Tags": list(tags)},
        actor=actor,
        change=change,
    )


def untag_open_id_connect_provider(
    *, account: Account, arn: str, tag_keys: Sequence[str], actor: Actor
) -> OIDCProvider:
    """``iam:UntagOpenIDConnectProvider``."""
    tag_keys = naming.validate_tag_keys(tag_keys)

    def change(provider: OIDCProvider) -> list[str]:
        provider.tags = naming.remove_tags(provider.tags, tag_keys)
        return ["tags"]

    return _update(
        account=account,
        arn=arn,
        action="iam:UntagOpenIDConnectProvider",
        parameters={"OpenIDConnectProviderArn": arn, "TagKeys": list(tag_keys)},
        actor=actor,
        change=change,
    )


def delete_open_id_connect_provider(*, account: Account, arn: str, actor: Actor) -> None:
    """``iam:DeleteOpenIDConnectProvider``. Tokens from the provider are refused at once; role
    sessions already issued run to their expiry, as in IAM. "This operation is idempotent; it
    does not fail or return an error if you call the operation for a provider that does not
    exist" (IAM API Reference, DeleteOpenIDConnectProvider)."""
    with transaction.atomic():
        try:
            provider = get_open_id_connect_provider(account=account, arn=arn)
        except NoSuchEntity:
            return
        before = provider_snapshot(provider)
        provider.delete()
        record_event(
            actor=actor,
            action="iam:DeleteOpenIDConnectProvider",
            resource_arn=arn,
            parameters={"OpenIDConnectProviderArn": arn},
            before=before,
        )


# --- Discovery and keys ---------------------------------------------------------------------


class FetchError(Exception):
    pass


class ForbiddenAddress(OSError):
    """A provider's host name resolves to an address Portcullis does not connect to."""


MAX_REDIRECTS = 3


def _guarded_create_connection(
    address: tuple[str, int], timeout: Any = None, source_address: Any = None, *args: Any
) -> socket.socket:
    """``socket.create_connection`` that resolves the name once, refuses it when *any* of its
    addresses is forbidden (an attacker controlling the DNS answer must not get one internal
    address past the check by listing a public one first), and connects to exactly the
    addresses it checked."""
    host, port = address
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise OSError(f"{host} could not be resolved: {exc.strerror}") from exc
    for *_, sockaddr in infos:
        ip = ipaddress.ip_address(str(sockaddr[0]).split("%")[0])
        kind = forbidden_address_kind(ip)
        if kind is not None:
            raise ForbiddenAddress(
                f"{host} resolves to {ip}, a {kind} address; Portcullis does not fetch from "
                "private, loopback or link-local addresses"
            )
    last_error: OSError | None = None
    for family, socktype, proto, _, sockaddr in infos:
        sock = socket.socket(family, socktype, proto)
        try:
            if timeout is not None and timeout is not socket._GLOBAL_DEFAULT_TIMEOUT:  # type: ignore[attr-defined]
                sock.settimeout(timeout)
            if source_address:
                sock.bind(source_address)
            sock.connect(sockaddr)
            return sock
        except OSError as exc:
            sock.close()
            last_error = exc
    raise last_error or OSError(f"{host} has no address")


class _GuardedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._create_connection = _guarded_create_connection  # type: ignore[method-assign,assignment]


class _GuardedHTTPSConnection(http.client.HTTPSConnection):
    # TLS still verifies the certificate for the host name (server_hostname is self.host).
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._create_connection = _guarded_create_connection  # type: ignore[method-assign,assignment]


class _GuardedHTTPHandler(urllib.request.HTTPHandler):
    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_GuardedHTTPConnection, req)


class _GuardedHTTPSHandler(urllib.request.HTTPSHandler):
    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_GuardedHTTPSConnection, req, context=ssl.create_default_context())


class _CheckedRedirect(urllib.request.HTTPRedirectHandler):
    """Follow a GET's redirect only to a URL ``check_fetchable_url`` accepts (no downgrade to
    http, no literal internal address); the connection guard checks the new host's addresses.
    A POST (the token endpoint) is never redirected."""

    max_redirections = MAX_REDIRECTS

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: Any,
        code: int,
        msg: str,
        headers: Any,
        newurl: str,
    ) -> urllib.request.Request | None:
        if req.get_method() != "GET":
            return None
        try:
            check_fetchable_url(newurl)
        except InvalidInput as exc:
            fp.close()
            raise FetchError(
                f"{req.full_url} redirected to {newurl}, which is refused: {exc.message}"
            ) from exc
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_opener = urllib.request.build_opener(
    urllib.request.ProxyHandler({}), _GuardedHTTPHandler, _GuardedHTTPSHandler, _CheckedRedirect
)


def _http(url: str, *, data: bytes | None = None, headers: Mapping[str, str] | None = None) -> Any:
    """GET (or POST ``data``) a provider URL and parse its JSON answer, with timeouts and a
    size limit. Raises ``FetchError`` with a reason fit for the console."""
    try:
        check_fetchable_url(url)
    except InvalidInput as exc:
        raise FetchError(exc.message) from exc
    request = urllib.request.Request(  # noqa: S310 - scheme checked just above
        url, data=data, headers={"Accept": "application/json", **(headers or {})}
    )
    try:
        with _opener.open(request, timeout=FETCH_TIMEOUT_S) as response:
            body = response.read(FETCH_MAX_BYTES + 1)
    except urllib.error.HTTPError as exc:
        detail = exc.read(2000).decode("utf-8", "replace")
        raise FetchError(f"{url} answered HTTP {exc.code}: {detail[:300]}") from exc
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, ForbiddenAddress):
            raise FetchError(f"{url} was not fetched: {exc.reason}.") from exc
        raise FetchError(f"{url} could not be reached: {exc.reason}") from exc
    except ForbiddenAddress as exc:
        raise FetchError(f"{url} was not fetched: {exc}.") from exc
    except (TimeoutError, OSError, http.client.HTTPException) as exc:
        raise FetchError(f"{url} could not be reached: {exc}") from exc
    if len(body) > FETCH_MAX_BYTES:
        raise FetchError(f"{url} answered more than {FETCH_MAX_BYTES} bytes.")
    try:
        return json.loads(body)
    except ValueError as exc:
        raise FetchError(f"{url} did not answer JSON.") from exc


def discovery_url(provider_url: str) -> str:
    # OpenID Connect Discovery 1.0, section 4: the issuer with /.well-known/openid-configuration
    # appended (after removing any trailing slash).
    return provider_url.rstrip("/") + "/.well-known/openid-configuration"


def refresh_oidc_provider_keys(*, provider_id: int) -> bool:
    """Fetch a provider's discovery document and JWKS and cache them on the model.

    On failure the cached keys stay as they are and the error is kept for the console; the
    caller (a task, or verification on an unknown key id) decides whether to try again.
    Returns whether the keys were refreshed.

    Idempotent and safe to run concurrently (a redelivered task, the beat and an unknown key
    id can overlap): each write is a conditional UPDATE that applies only if no fetch that
    started later has stored its result meanwhile, so older documents never replace newer ones.
    """
    provider = OIDCProvider.objects.filter(pk=provider_id).first()
    if provider is None:
        return False
    started = timezone.now()
    not_newer = OIDCProvider.objects.filter(pk=provider_id).filter(
        Q(jwks_fetched_at__isnull=True) | Q(jwks_fetched_at__lt=started)
    )
    try:
        discovery = _http(discovery_url(provider.url))
        if not isinstance(discovery, dict):
            raise FetchError("The discovery document is not a JSON object.")
        if discovery.get("issuer") != provider.url:
            # OpenID Connect Discovery 1.0, section 4.3: the issuer must be identical.
            raise FetchError(
                f"The discovery document's issuer {discovery.get('issuer')!r} is not "
                f"{provider.url!r}."
            )
        jwks_uri = discovery.get("jwks_uri")
        if not isinstance(jwks_uri, str):
            raise FetchError("The discovery document has no jwks_uri.")
        jwks = _http(jwks_uri)
        if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
            raise FetchError(f"{jwks_uri} is not a JSON Web Key Set.")
    except FetchError as exc:
        not_newer.update(jwks_fetch_error=str(exc)[:2000])
        logger.warning("OIDC provider %s: %s", provider.url, exc)
        return False
    not_newer.update(
        discovery_document=discovery,
        jwks={"keys": [k for k in jwks["keys"] if isinstance(k, dict)]},
        jwks_fetched_at=started,
        jwks_fetch_error="",
    )
    return True


FETCH_KEYS_ACTION = "portcullis:FetchOpenIDConnectProviderKeys"


def fetch_open_id_connect_provider_keys(*, account: Account, arn: str, actor: Actor) -> bool:
    """Fetch a provider's discovery document and keys now, on an administrator's request (the
    beat refreshes them hourly anyway), and audit the outcome. The fetch runs outside any
    transaction: a slow provider must not hold a database transaction open."""
    provider = get_open_id_connect_provider(account=account, arn=arn)
    refreshed = refresh_oidc_provider_keys(provider_id=provider.pk)
    provider.refresh_from_db(fields=["jwks", "jwks_fetched_at", "jwks_fetch_error"])
    with transaction.atomic():
        record_event(
            actor=actor,
            action=FETCH_KEYS_ACTION,
            resource_arn=provider.arn,
            parameters={"OpenIDConnectProviderArn": provider.arn},
            after=(
                {"KeyIds": [k.get("kid", "") for k in provider.jwks.get("keys", [])]}
                if refreshed
                else None
            ),
            error_code="" if refreshed else IDPCommunicationError.code,
            error_message="" if refreshed else provider.jwks_fetch_error,
        )
    return refreshed


def _refresh_rate_limited(provider: OIDCProvider) -> bool:
    """Refresh now unless another refresh of this provider started in the last interval."""
    key = f"oidc-key-refresh:{provider.pk}:{hashlib.sha256(provider.url.encode()).hexdigest()[:16]}"
    if not cache.add(key, 1, timeout=UNKNOWN_KID_REFRESH_INTERVAL_S):
        return False
    refreshed = refresh_oidc_provider_keys(provider_id=provider.pk)
    provider.refresh_from_db(
        fields=["discovery_document", "jwks", "jwks_fetched_at", "jwks_fetch_error"]
    )
    return refreshed


def keys_are_current(provider: OIDCProvider) -> bool:
    if provider.jwks_fetched_at is None:
        return False
    age = (timezone.now() - provider.jwks_fetched_at).total_seconds()
    return age <= settings.OIDC_KEYS_MAX_AGE_S


def advertised_algorithms(provider: OIDCProvider) -> list[str]:
    """The ID token algorithms the provider advertises, less the symmetric ones and ``none``;
    RS256 when it advertises none (OpenID Connect Discovery 1.0: RS256 must be included)."""
    values = provider.discovery_document.get("id_token_signing_alg_values_supported") or ["RS256"]
    return [v for v in values if v in ASYMMETRIC_ALGORITHMS]


# --- Verifying an ID token ------------------------------------------------------------------


@dataclass(frozen=True)
class WebIdentity:
    """A verified ID token: who the provider says signed in, for which client, and how."""

    provider: OIDCProvider
    subject: str
    audience: str
    amr: tuple[str, ...]
    claims: Mapping[str, Any]
    session_tags: tuple[tuple[str, str], ...] = ()
    transitive_tag_keys: tuple[str, ...] = ()
    expires_at: datetime | None = None

    @property
    def mfa(self) -> bool:
        return "mfa" in self.amr

    def as_session(self) -> dict[str, Any]:
        """What the console keeps between the callback and the role choice."""
        return {
            "provider_id": self.provider.pk,
            "subject": self.subject,
            "audience": self.audience,
            "amr": list(self.amr),
            "claims": {k: v for k, v in self.claims.items() if k in ("email", "name", "iss")},
            "session_tags": [list(t) for t in self.session_tags],
            "transitive_tag_keys": list(self.transitive_tag_keys),
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
        }

    @classmethod
    def from_session(cls, data: Mapping[str, Any]) -> WebIdentity | None:
        provider = OIDCProvider.objects.filter(pk=data.get("provider_id")).first()
        if provider is None:
            return None
        expires = data.get("expires_at")
        return cls(
            provider=provider,
            subject=data["subject"],
            audience=data["audience"],
            amr=tuple(data["amr"]),
            claims=data["claims"],
            session_tags=tuple((k, v) for k, v in data["session_tags"]),
            transitive_tag_keys=tuple(data["transitive_tag_keys"]),
            expires_at=datetime.fromisoformat(expires) if expires else None,
        )


def _epoch(value: Any) -> datetime:
    return datetime.fromtimestamp(int(value), tz=UTC)


def _aws_time(value: datetime) -> str:
    return value.strftime("%a %b %d %H:%M:%S UTC %Y")


def _session_tags(claims: Mapping[str, Any]) -> tuple[tuple[tuple[str, str], ...], tuple[str, ...]]:
    """AWS's tag claim: {"principal_tags": {"key": ["value"]}, "transitive_tag_keys": [...]}
    (IAM User Guide, "Passing session tags using AssumeRoleWithWebIdentity")."""
    raw = claims.get(TAGS_CLAIM)
    if raw is None:
        return (), ()
    if not isinstance(raw, dict) or not isinstance(raw.get("principal_tags", {}), dict):
        raise InvalidIdentityToken(f"The {TAGS_CLAIM} claim is not in AWS's session-tag format.")
    tags: list[dict[str, str]] = []
    for key, values in raw.get("principal_tags", {}).items():
        value = values[0] if isinstance(values, list) and len(values) == 1 else values
        if not isinstance(value, str):
            raise InvalidIdentityToken(
                f"The session tag {key} in the {TAGS_CLAIM} claim must have exactly one value."
            )
        tags.append({"Key": str(key), "Value": value})
    try:
        clean = naming.validate_tags(tags)
    except ClientError as exc:
        raise InvalidIdentityToken(
            f"The {TAGS_CLAIM} claim has an invalid tag: {exc.message}"
        ) from exc
    transitive = raw.get("transitive_tag_keys", [])
    if not isinstance(transitive, list) or not all(isinstance(k, str) for k in transitive):
        raise InvalidIdentityToken("transitive_tag_keys must be a list of tag keys.")
    keys = {t["Key"].lower() for t in clean}
    if any(k.lower() not in keys for k in transitive):
        raise InvalidIdentityToken("Every transitive tag key must be one of the session tags.")
    return tuple((t["Key"], t["Value"]) for t in clean), tuple(transitive)


def _find_key(provider: OIDCProvider, kid: str | None, alg: str) -> dict[str, Any] | None:
    keys = [k for k in provider.jwks.get("keys", []) if k.get("use", "sig") == "sig"]
    if kid is not None:
        keys = [k for k in keys if k.get("kid") == kid]
    keys = [k for k in keys if k.get("alg", alg) == alg]
    if len(keys) == 1 or (kid is not None and keys):
        return keys[0]
    return None


def find_provider_for_issuer(account: Account, issuer: str) -> OIDCProvider | None:
    return OIDCProvider.objects.filter(account=account, url=issuer).first()


def verify_id_token(
    *,
    account: Account,
    token: str,
    nonce: str | None = None,
    client_id: str | None = None,
) -> WebIdentity:
    """Verify an ID token issued by one of the account's providers.

    ``client_id`` (console sign-in) requires that audience; otherwise any of the provider's
    client ids will do, as in IAM. ``nonce`` (console sign-in) must match the token's.
    Raises ``InvalidIdentityToken`` / ``ExpiredTokenException`` / ``IDPCommunicationError``
    with a message that says what was wrong.
    """
    if not MAX_WEB_IDENTITY_TOKEN_LENGTH >= len(token) >= 4:
        raise ValidationError(
            "1 validation error detected: Value at 'webIdentityToken' failed to satisfy "
            "constraint: Member must have length less than or equal to "
            f"{MAX_WEB_IDENTITY_TOKEN_LENGTH}"
        )
    try:
        header = jwt.get_unverified_header(token)
        unverified = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise InvalidIdentityToken(
            "The web identity token is not a well-formed JSON Web Token."
        ) from exc
    issuer = unverified.get("iss")
    if not isinstance(issuer, str) or not issuer:
        raise InvalidIdentityToken("The web identity token has no iss claim.")
    provider = find_provider_for_issuer(account, issuer)
    if provider is None:
        # AWS's own wording for a token from an issuer the account does not trust.
        raise InvalidIdentityToken(f"No OpenIDConnect provider found in your account for {issuer}")

    alg = header.get("alg")
    if not isinstance(alg, str) or alg.lower() == "none":
        raise InvalidIdentityToken(
            "The web identity token is unsigned (alg none); only signed ID tokens are accepted."
        )
    if alg.upper().startswith("HS"):
        raise InvalidIdentityToken(
            f"The web identity token is signed with {alg}, a shared-secret algorithm; only the "
            "provider's public-key signatures are accepted."
        )
    kid = header.get("kid")
    if provider.jwks_fetched_at is None or (
        kid is not None and _find_key(provider, kid, alg) is None
    ):
        # First use, or a key we have not seen (the provider rotated): fetch, rate-limited.
        _refresh_rate_limited(provider)
    if provider.jwks_fetched_at is None:
        raise IDPCommunicationError(
            f"The keys of {provider.url} could not be fetched: {provider.jwks_fetch_error}"
        )
    if not keys_are_current(provider):
        raise IDPCommunicationError(
            f"The cached keys of {provider.url} are older than the allowed "
            f"{settings.OIDC_KEYS_MAX_AGE_S} s and the provider cannot be reached: "
            f"{provider.jwks_fetch_error}"
        )
    allowed = advertised_algorithms(provider)
    if alg not in allowed:
        raise InvalidIdentityToken(
            f"The web identity token is signed with {alg}, which {provider.url} does not "
            f"advertise (id_token_signing_alg_values_supported: {', '.join(allowed) or 'none'})."
        )
    jwk = _find_key(provider, kid, alg)
    if jwk is None:
        raise InvalidIdentityToken(
            f"The web identity token's signing key {kid} is not among the keys of {provider.url}."
        )
    try:
        key = jwt.PyJWK(jwk, algorithm=alg).key
        claims = jwt.decode(
            token,
            key=key,
            algorithms=[alg],
            issuer=provider.url,
            leeway=CLOCK_SKEW_S,
            options={"require": ["iss", "sub", "aud", "exp", "iat"], "verify_aud": False},
        )
    except jwt.ExpiredSignatureError as exc:
        now = timezone.now()
        raise ExpiredTokenException(
            f"Token expired: current date/time {_aws_time(now)} must be before the expiration "
            f"date/time {_aws_time(_epoch(unverified.get('exp', 0)))}"
        ) from exc
    except jwt.ImmatureSignatureError as exc:
        raise InvalidIdentityToken(
            "The web identity token is not valid yet (its iat or nbf is in the future)."
        ) from exc
    except jwt.InvalidSignatureError as exc:
        raise InvalidIdentityToken(
            f"The web identity token's signature does not verify with {provider.url}'s key "
            f"{jwk.get('kid', '')}."
        ) from exc
    except jwt.InvalidIssuerError as exc:
        raise InvalidIdentityToken(f"The token's iss is not exactly {provider.url}.") from exc
    except jwt.MissingRequiredClaimError as exc:
        raise InvalidIdentityToken(f"The web identity token has no {exc.claim} claim.") from exc
    except jwt.PyJWTError as exc:
        raise InvalidIdentityToken(f"The web identity token could not be validated: {exc}") from exc

    audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    azp = claims.get("azp")
    if client_id is not None:
        # OpenID Connect Core 1.0, 3.1.3.7: our client id in aud, and azp ours when present.
        if client_id not in audiences or (azp is not None and azp != client_id):
            raise InvalidIdentityToken("Incorrect token audience")
        audience = client_id
    else:
        candidates = [azp] if azp is not None else audiences
        matching = [a for a in candidates if a in provider.client_ids]
        if not matching:
            raise InvalidIdentityToken("Incorrect token audience")
        audience = matching[0]
    if nonce is not None and not hmac.compare_digest(
        str(claims.get("nonce", "")).encode(), nonce.encode()
    ):
        raise InvalidIdentityToken("The ID token's nonce does not match this sign-in.")
    subject = claims["sub"]
    if not isinstance(subject, str) or not 1 <= len(subject) <= 255:
        raise InvalidIdentityToken("The web identity token's sub claim is not a valid subject.")
    amr_claim = claims.get("amr", [])
    amr = tuple(str(a) for a in (amr_claim if isinstance(amr_claim, list) else [amr_claim]))
    tags, transitive = _session_tags(claims)
    return WebIdentity(
        provider=provider,
        subject=subject,
        audience=audience,
        amr=amr,
        claims=claims,
        session_tags=tags,
        transitive_tag_keys=transitive,
        expires_at=_epoch(claims["exp"]),
    )


# --- Trust ----------------------------------------------------------------------------------


def web_identity_context(identity: WebIdentity) -> dict[str, Any]:
    """The condition keys AWS sets for AssumeRoleWithWebIdentity (IAM User Guide, "Available
    keys for AWS OIDC federation"): ``<host/path>:aud`` (the azp when present), ``:sub``,
    ``:amr``, ``aws:FederatedProvider``, and the session tags as ``aws:RequestTag/*`` and
    ``aws:TagKeys``."""
    prefix = identity.provider.host_and_path
    context: dict[str, Any] = {
        f"{prefix}:aud": identity.audience,
        f"{prefix}:sub": identity.subject,
        "aws:FederatedProvider": identity.provider.arn,
    }
    if identity.amr:
        context[f"{prefix}:amr"] = list(identity.amr)
    if identity.session_tags:
        for key, value in identity.session_tags:
            context[f"aws:RequestTag/{key}"] = value
        context["aws:TagKeys"] = [key for key, _ in identity.session_tags]
    return context


def trust_decision(
    *, identity: WebIdentity, role: Role, action: str = ACTION_ASSUME, meta: RequestMeta
) -> engine.Decision:
    """Whether the role's trust policy lets this web identity assume it. Errors deny."""
    principal = engine.Principal(
        arn=identity.provider.arn,
        account=identity.provider.account_id,
        kind="federated_user",
        user_id=identity.subject,
    )
    context = web_identity_context(identity)
    now = datetime.now(UTC)
    context.update(
        {
            "aws:CurrentTime": now,
            "aws:EpochTime": int(now.timestamp()),
            "aws:SecureTransport": meta.secure_transport,
        }
    )
    if meta.source_ip:
        context["aws:SourceIp"] = meta.source_ip
    try:
        trust = engine.compile_trust_policy(
            engine.SourcedPolicy(
                policy_id=f"{role.arn}#trust", document=role.assume_role_policy_document
            ),
            role_arn=role.arn,
        )
        request = engine.Request(
            principal=principal,
            action=action,
            resource=role.arn,
            context=context,
            resource_account=role.account_id,
        )
        return engine.evaluate_trust(
            trust_policy=trust, role_arn=role.arn, caller_policy_set=None, request=request
        )
    except Exception:
        logger.exception("trust evaluation failed for %s on %s; denying", principal.arn, role.arn)
        return engine.Decision(
            decision="explicitDeny",
            matched_statements=(),
            missing_context_values=(),
            deny_reason="evaluation error",
        )


def role_trusts(identity: WebIdentity, role: Role, meta: RequestMeta) -> bool:
    if not trust_decision(identity=identity, role=role, meta=meta).allowed:
        return False
    if identity.session_tags:
        # Passing session tags needs sts:TagSession in the trust policy too (IAM User Guide,
        # "Passing session tags in AWS STS").
        return trust_decision(
            identity=identity, role=role, action="sts:TagSession", meta=meta
        ).allowed
    return True


def roles_for_identity(identity: WebIdentity, *, meta: RequestMeta) -> list[Role]:
    """The provider account's roles this identity may assume, by name."""
    arn = identity.provider.arn
    # A trust policy that does not name the provider cannot trust it: skip parsing it.
    candidates = Role.objects.filter(
        account_id=identity.provider.account_id, assume_role_policy_document__contains=arn
    ).order_by("name")
    return [role for role in candidates if role_trusts(identity, role, meta)]


# --- Role sessions --------------------------------------------------------------------------


@dataclass(frozen=True)
class IssuedSession:
    """A new role session. ``secret_access_key`` and ``session_token`` exist only here."""

    credential: TemporaryCredential
    secret_access_key: str
    session_token: str
    assumed_role_arn: str
    assumed_role_id: str
    identity: WebIdentity = field(repr=False)


def hash_session_token(token: str) -> str:
    from identity import sts

    return sts.hash_session_token(token)


def session_name_for(identity: WebIdentity) -> str:
    """A console role session's name: the email when it is a valid session name, else the
    subject, with characters outside ``[\\w+=,.@-]`` replaced."""
    for candidate in (identity.claims.get("email"), identity.subject):
        if isinstance(candidate, str):
            name = re.sub(r"[^\w+=,.@-]", "-", candidate, flags=re.ASCII)[:64]
            if len(name) >= 2:
                return name
    return "federated-" + hashlib.sha256(identity.subject.encode()).hexdigest()[:16]


def _issue_role_session(
    *,
    identity: WebIdentity,
    role: Role,
    session_name: str,
    duration_s: int,
    session_policy: str,
    policy_arns: Sequence[str],
) -> IssuedSession:
    """A role session for a web identity, minted by STS's helper (``ASIA`` key, encrypted
    secret, hashed token), inside the caller's transaction."""
    from identity import sts

    now = timezone.now()
    mfa = identity.provider.mfa_claim_satisfies_mfa and identity.mfa
    issued = sts._issue(
        account_id=role.account_id,
        role=role,
        session_name=session_name,
        issued_at=now,
        expires_at=now + timedelta(seconds=duration_s),
        mfa_authenticated=mfa,
        mfa_authenticated_at=now if mfa else None,
        session_policy=session_policy,
        session_policy_arns=list(policy_arns),
        session_tags=[{"Key": k, "Value": v} for k, v in identity.session_tags],
        transitive_tag_keys=list(identity.transitive_tag_keys),
        assumed_by_arn=identity.provider.arn,
        federated_subject=identity.subject,
        federated_provider_arn=identity.provider.arn,
    )
    return IssuedSession(
        credential=issued.credential,
        secret_access_key=issued.secret_access_key,
        session_token=issued.session_token,
        assumed_role_arn=naming.assumed_role_arn(role.account_id, role.name, session_name),
        assumed_role_id=f"{role.unique_id}:{session_name}",
        identity=identity,
    )


def web_identity_actor(*, account_id: str, provider_arn: str, meta: RequestMeta) -> Actor:
    """Who acts in a web-identity request before it has a session: the identity provider's
    federated user (CloudTrail's ``WebIdentityUser``)."""
    return Actor(arn=provider_arn, account_id=account_id, kind="federated_user", meta=meta)


def _unverified_issuer(token: str) -> str:
    try:
        return str(jwt.decode(token, options={"verify_signature": False}).get("iss", ""))
    except jwt.PyJWTError:
        return ""


def record_rejection(
    *,
    account_id: str,
    action: str,
    error: IAMError,
    meta: RequestMeta,
    provider_arn: str = "",
    parameters: Mapping[str, Any] | None = None,
    category: str = "api",
) -> None:
    """Audit a refused web identity in its own transaction, so it survives the error."""
    actor = web_identity_actor(account_id=account_id, provider_arn=provider_arn, meta=meta)
    with transaction.atomic():
        record_event(
            actor=actor,
            action=action,
            category=category,
            resource_arn=(parameters or {}).get("RoleArn", ""),
            parameters=parameters,
            error_code=error.code,
            error_message=error.message,
        )


def _role_from_arn(role_arn: str) -> Role | None:
    parts = naming.parse_arn(role_arn)
    if parts is None or parts["service"] != "iam" or not parts["resource"].startswith("role/"):
        return None
    name = parts["resource"].rsplit("/", 1)[-1]
    role = Role.objects.filter(account_id=parts["account"], name__iexact=name).first()
    return role if role is not None and role.arn == role_arn else None


def assume_role_with_web_identity(
    *,
    role_arn: str,
    role_session_name: str,
    web_identity_token: str,
    duration_seconds: int | None = None,
    policy: str = "",
    policy_arns: Sequence[str] = (),
    meta: RequestMeta,
) -> IssuedSession:
    """``sts:AssumeRoleWithWebIdentity`` (STS API Reference): an unsigned call whose only
    credential is the ID token; the role's trust policy decides.

    Every refusal is audited with the error the caller gets. Unknown roles and untrusted
    identities get the same ``AccessDenied``, so the call does not reveal which roles exist.
    """
    parts = naming.parse_arn(role_arn) or {}
    account_id = parts.get("account", "")
    params: dict[str, Any] = {
        "RoleArn": role_arn,
        "RoleSessionName": role_session_name,
        "DurationSeconds": duration_seconds,
        "WebIdentityToken": web_identity_token,
    }
    provider_arn = ""
    try:
        if not ROLE_SESSION_NAME_PATTERN.fullmatch(role_session_name or ""):
            raise ValidationError(
                f"1 validation error detected: Value '{role_session_name}' at 'roleSessionName' "
                r"failed to satisfy constraint: Member must satisfy regular expression pattern: "
                r"[\w+=,.@-]*"
            )
        if duration_seconds is not None and not 900 <= duration_seconds <= 43200:
            raise ValidationError(
                f"1 validation error detected: Value '{duration_seconds}' at 'durationSeconds' "
                "failed to satisfy constraint: Member must have value "
                + (
                    "greater than or equal to 900"
                    if duration_seconds < 900
                    else "less than or equal to 43200"
                )
            )
        account = Account.objects.filter(pk=account_id).first()
        if account is None:
            raise InvalidIdentityToken(
                f"No OpenIDConnect provider found in your account for "
                f"{_unverified_issuer(web_identity_token)}"
            )
        identity = verify_id_token(account=account, token=web_identity_token)
        provider_arn = identity.provider.arn
        params["Subject"] = identity.subject
        params["Audience"] = identity.audience
        params["ProviderArn"] = provider_arn
        role = _role_from_arn(role_arn)
        if role is None or not role_trusts(identity, role, meta):
            raise AccessDenied(f"Not authorized to perform {ACTION_ASSUME}")
        duration = 3600 if duration_seconds is None else duration_seconds
        if duration > role.max_session_duration:
            raise ValidationError(
                "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."
            )
        from identity import sts

        sts.validate_session_policy(policy or None, policy_arns)
        with transaction.atomic():
            issued = _issue_role_session(
                identity=identity,
                role=role,
                session_name=role_session_name,
                duration_s=duration,
                session_policy=policy,
                policy_arns=policy_arns,
            )
            Role.objects.filter(pk=role.pk).update(last_used_at=issued.credential.issued_at)
            record_event(
                actor=web_identity_actor(
                    account_id=role.account_id, provider_arn=provider_arn, meta=meta
                ),
                action=ACTION_ASSUME,
                resource_arn=role.arn,
                parameters=params,
                after=_session_snapshot(issued),
            )
        return issued
    except ClientError as error:
        record_rejection(
            account_id=account_id if naming.ACCOUNT_ID_PATTERN.fullmatch(account_id) else "",
            action=ACTION_ASSUME,
            error=error,
            meta=meta,
            provider_arn=provider_arn,
            parameters=params,
        )
        raise


def _session_snapshot(issued: IssuedSession) -> dict[str, Any]:
    credential = issued.credential
    return {
        "AssumedRoleUser": {
            "Arn": issued.assumed_role_arn,
            "AssumedRoleId": issued.assumed_role_id,
        },
        "AccessKeyId": credential.access_key_id,
        "Expiration": credential.expires_at.isoformat(),
        "SubjectFromWebIdentityToken": issued.identity.subject,
        "Audience": issued.identity.audience,
        "Provider": issued.identity.provider.arn,
        "Amr": list(issued.identity.amr),
        "MultiFactorAuthenticated": credential.mfa_authenticated,
        "SessionTags": credential.session_tags,
    }


# --- Console sign-in ------------------------------------------------------------------------

CONSOLE_ACTION = "portcullis:FederatedConsoleSignIn"
# A pending sign-in (the browser is at the provider) lives this long.
FLOW_LIFETIME_S = 10 * 60


def console_providers(account: Account) -> list[OIDCProvider]:
    """The account's providers with console sign-in configured, for the sign-in page."""
    return list(
        account.oidc_providers.exclude(console_client_id="").order_by("display_name", "url")
    )


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def begin_console_sign_in(
    *, provider: OIDCProvider, redirect_uri: str
) -> tuple[str, dict[str, Any]]:
    """The provider's authorization URL and the flow to keep in the browser's session:
    authorization code flow with PKCE (S256, RFC 7636), ``state`` (CSRF, single use) and
    ``nonce`` (binds the ID token to this sign-in)."""
    if not provider.console_client_id:
        raise InvalidInput("Console sign-in is not configured for this provider.")
    if provider.jwks_fetched_at is None or not provider.discovery_document:
        _refresh_rate_limited(provider)
    endpoint = provider.discovery_document.get("authorization_endpoint")
    if not isinstance(endpoint, str):
        raise IDPCommunicationError(
            f"The discovery document of {provider.url} could not be fetched: "
            f"{provider.jwks_fetch_error or 'it has no authorization_endpoint'}"
        )
    check_fetchable_url(endpoint)
    state = secrets.token_urlsafe(32)
    nonce = secrets.token_urlsafe(32)
    verifier = secrets.token_urlsafe(64)
    challenge = _b64url(hashlib.sha256(verifier.encode("ascii")).digest())
    query = urllib.parse.urlencode(
        {
            "response_type": "code",
            "client_id": provider.console_client_id,
            "redirect_uri": redirect_uri,
            "scope": "openid email profile",
            "state": state,
            "nonce": nonce,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    )
    separator = "&" if "?" in endpoint else "?"
    flow = {
        "state": state,
        "nonce": nonce,
        "code_verifier": verifier,
        "provider_id": provider.pk,
        "redirect_uri": redirect_uri,
        "started_at": timezone.now().isoformat(),
    }
    return f"{endpoint}{separator}{query}", flow


def state_hash(state: str) -> str:
    return hashlib.sha256(state.encode("utf-8")).hexdigest()


def spend_state(state: str) -> bool:
    """Mark a state as used, everywhere: False if it was used before (a replay), even from
    another copy of the session."""
    return bool(cache.add(f"oidc-state-used:{state_hash(state)}", 1, timeout=FLOW_LIFETIME_S * 2))


def exchange_code(*, provider: OIDCProvider, code: str, flow: Mapping[str, Any]) -> str:
    """Redeem the authorization code at the provider's token endpoint; the ID token."""
    endpoint = provider.discovery_document.get("token_endpoint")
    if not isinstance(endpoint, str):
        raise IDPCommunicationError(f"{provider.url} advertises no token_endpoint.")
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": flow["redirect_uri"],
        "code_verifier": flow["code_verifier"],
    }
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if provider.console_client_secret_encrypted:
        # RFC 6749, 2.3.1: client_secret_basic, each part form-encoded first.
        secret = crypto.decrypt_text(provider.console_client_secret_encrypted)
        pair = (
            f"{urllib.parse.quote(provider.console_client_id, safe='')}:"
            f"{urllib.parse.quote(secret, safe='')}"
        )
        headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode("ascii")
    else:
        form["client_id"] = provider.console_client_id
    try:
        answer = _http(endpoint, data=urllib.parse.urlencode(form).encode(), headers=headers)
    except FetchError as exc:
        raise IDPRejectedClaim(f"The provider refused the sign-in code: {exc}") from exc
    id_token = answer.get("id_token") if isinstance(answer, dict) else None
    if not isinstance(id_token, str):
        raise IDPRejectedClaim("The provider's token response has no id_token.")
    return id_token


def complete_console_sign_in(
    *, account: Account, flow: Mapping[str, Any], code: str
) -> WebIdentity:
    """Exchange the code and verify the ID token against the flow's nonce and our client."""
    provider = OIDCProvider.objects.filter(pk=flow["provider_id"], account=account).first()
    if provider is None or not provider.console_client_id:
        raise InvalidIdentityToken("This identity provider no longer allows console sign-in.")
    id_token = exchange_code(provider=provider, code=code, flow=flow)
    return verify_id_token(
        account=account, token=id_token, nonce=flow["nonce"], client_id=provider.console_client_id
    )


def start_console_role_session(
    *, identity: WebIdentity, role: Role, meta: RequestMeta
) -> IssuedSession:
    """Sign a federated identity in to the console as a session of ``role``, for the role's
    maximum session duration. Trust is decided again here: the role list shown to the user is
    only a convenience."""
    account = identity.provider.account
    params = {
        "RoleArn": role.arn,
        "ProviderArn": identity.provider.arn,
        "Subject": identity.subject,
        "Audience": identity.audience,
        "Amr": list(identity.amr),
    }
    try:
        if not role_trusts(identity, role, meta):
            raise AccessDenied(f"Not authorized to perform {ACTION_ASSUME}")
        mfa_satisfied = identity.provider.mfa_claim_satisfies_mfa and identity.mfa
        if account.require_mfa_for_console and not mfa_satisfied:
            raise AccessDenied(
                "Your account requires multi-factor authentication for console sign-in, and "
                f"{identity.provider.display_name or identity.provider.url} did not report a "
                "multi-factor sign-in that this provider is trusted for."
            )
        with transaction.atomic():
            issued = _issue_role_session(
                identity=identity,
                role=role,
                session_name=session_name_for(identity),
                duration_s=role.max_session_duration,
                session_policy="",
                policy_arns=(),
            )
            Role.objects.filter(pk=role.pk).update(last_used_at=issued.credential.issued_at)
            record_event(
                actor=web_identity_actor(
                    account_id=account.id, provider_arn=identity.provider.arn, meta=meta
                ),
                action=CONSOLE_ACTION,
                category="signin",
                resource_arn=role.arn,
                parameters=params,
                after=_session_snapshot(issued),
            )
        return issued
    except ClientError as error:
        record_rejection(
            account_id=account.id,
            action=CONSOLE_ACTION,
            error=error,
            meta=meta,
            provider_arn=identity.provider.arn,
            parameters=params,
            category="signin",
        )
        raise


def console_session_credential(access_key_id: str) -> TemporaryCredential | None:
    """A federated console session's credential, valid or not (None if it does not exist)."""
    return (
        TemporaryCredential.objects.select_related("role", "account")
        .filter(access_key_id=access_key_id, role__isnull=False)
        .exclude(federated_provider_arn="")
        .first()
    )


def active_console_session(access_key_id: str) -> TemporaryCredential | None:
    """The federated console session's credential while it is valid; None once it expired or
    its role's sessions were revoked."""
    credential = console_session_credential(access_key_id)
    if credential is None or credential.expires_at <= timezone.now():
        return None
    revoked = credential.role.sessions_revoked_before  # type: ignore[union-attr]
    if revoked is not None and credential.issued_at < revoked:
        return None
    return credential

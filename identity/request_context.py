"""Turning an HTTP request into the ``Actor`` that services and the engine see."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.http import HttpRequest

from audit.context import Actor, RequestMeta, new_request_id

# Session keys written by sign-in: when the password step and the MFA step happened (ISO 8601).
AUTHENTICATED_AT_SESSION_KEY = "portcullis_authenticated_at"
MFA_AUTHENTICATED_AT_SESSION_KEY = "portcullis_mfa_authenticated_at"


def client_ip(request: HttpRequest) -> str:
    """The caller's address. X-Forwarded-For is trusted only when a proxy we run sets it
    (``TRUST_X_FORWARDED_FOR``); otherwise anyone could choose their own ``aws:SourceIp``."""
    if settings.TRUST_X_FORWARDED_FOR:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        if forwarded:
            # The proxy appends the address it saw; the right-most entry is the one it vouches for.
            return forwarded.split(",")[-1].strip()
    return request.META.get("REMOTE_ADDR", "")


def request_meta(request: HttpRequest) -> RequestMeta:
    request_id = getattr(request, "portcullis_request_id", None)
    if request_id is None:
        request_id = new_request_id()
        request.portcullis_request_id = request_id  # type: ignore[attr-defined]
    return RequestMeta(
        source_ip=client_ip(request),
        user_agent=request.META.get("HTTP_USER_AGENT", "")[:512],
        request_id=request_id,
        secure_transport=request.is_secure(),
    )


def mfa_authenticated_at(request: HttpRequest) -> datetime | None:
    value = request.session.get(MFA_AUTHENTICATED_AT_SESSION_KEY)
    return datetime.fromisoformat(value) if value else None


def actor_from_request(request: HttpRequest) -> Actor:
    """The signed-in console user as an ``Actor`` (sign-in guarantees one is signed in)."""
    user = request.user
    credential = getattr(user, "credential", None)
    if getattr(user, "is_federated", False) and credential is not None:
        # A console signed in through an OIDC provider: the role session is the principal
        # (identity.federation_views.FederatedConsoleUser); its MFA facts are the session's.
        return Actor(
            arn=user.arn,  # type: ignore[union-attr]
            account_id=credential.account_id,
            kind="role_session",
            session=credential,
            access_key_id=credential.access_key_id,
            meta=request_meta(request),
        )
    return Actor(
        arn=user.arn,  # type: ignore[union-attr]
        account_id=user.account_id,  # type: ignore[union-attr]
        kind="root" if user.is_root else "user",  # type: ignore[union-attr]
        user=user,
        meta=request_meta(request),
        mfa_authenticated_at=mfa_authenticated_at(request),
    )

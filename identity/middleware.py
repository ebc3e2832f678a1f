"""Console session rules, enforced on every request.

Deny by default, like Django's ``LoginRequiredMiddleware``: every console path needs a signed-in
user except sign-in itself, ``/healthz``, static files and the APIs, which authenticate their
own callers (SigV4 on ``/`` and ``/v1/``). For a signed-in user, in order:

1. the session ends when the user's ``session_generation`` moved on (password changed, an
   administrator ended their sessions) or its ``ConsoleSession`` row was ended;
2. the account's absolute lifetime and idle timeout (PCI DSS v4 8.2.8: 15 minutes idle);
3. MFA enrolment when the account requires MFA and the user has no device: nothing else;
4. a password marked reset-required or expired must be changed first (IAM User Guide,
   "Managing passwords": ``PasswordResetRequired`` and ``MaxPasswordAge``);
5. a banner some days before the password expires (``password_expiry_banner``, a context
   processor, puts it on every page until the password is changed);
6. step-up for anything the root user changes: a state-changing request by root whose last
   authentication is older than ``STEP_UP_MAX_AGE_S`` goes to re-authentication first (the
   sign-in issue: "anything by the root user").

``requires_recent_authentication`` is the step-up decorator for sensitive views.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import Resolver404, resolve, reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode

from identity import mfa, passwords, signin
from identity.models import ConsoleSession, User
from identity.request_context import (
    AUTHENTICATED_AT_SESSION_KEY,
    MFA_AUTHENTICATED_AT_SESSION_KEY,
)
from policies.engine import catalog

V = TypeVar("V", bound=Callable[..., HttpResponse])

# Paths that need no console session. Other engineers' public paths (e.g. federation
# callbacks) are added here.
PUBLIC_PREFIXES: tuple[str, ...] = (
    "/signin",
    "/healthz",
    "/static/",
    "/v1/",
    "/favicon.ico",
    "/federation/",
    "/oidc/",
    # The Query API's test-double reset endpoint (off unless enabled; see api.testdouble).
    "/_portcullis/",
)
# Reachable while a password change or MFA enrolment is pending.
ALWAYS_ALLOWED_PREFIXES: tuple[str, ...] = ("/signout/", "/static/")
EXPIRY_WARNING_DAYS = 14
LAST_SEEN_WRITE_INTERVAL_S = 60
STEP_UP_MAX_AGE_S = 5 * 60
SAFE_METHODS = ("GET", "HEAD", "OPTIONS", "TRACE")
# Read-only actions outside the engine's IAM/STS catalogue (Service Authorization Reference:
# access-analyzer:ValidatePolicy is a Read action).
READ_ONLY_ACTIONS = frozenset({"access-analyzer:ValidatePolicy"})


def _is_api_request(request: HttpRequest) -> bool:
    """The Query API lives on ``/``: a SigV4 header or presigned query, or any non-GET there
    (the API answers unsigned calls with AWS's own error, not a sign-in redirect)."""
    if request.path != "/":
        return False
    if request.headers.get("Authorization", "").startswith("AWS4-"):
        return True
    if "X-Amz-Algorithm" in request.GET or "Action" in request.GET:
        return True
    return request.method not in ("GET", "HEAD")


def is_public(request: HttpRequest) -> bool:
    return request.path.startswith(PUBLIC_PREFIXES) or _is_api_request(request)


def _parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _end(request: HttpRequest, reason: str, message: str) -> HttpResponse:
    signin.sign_out(request, reason=reason)
    messages.info(request, message)
    return redirect_to_login(request.get_full_path(), reverse("signin"))


class ConsoleSessionMiddleware:
    """Deny-by-default plus the session rules above. Goes after authentication and messages."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.check(request)
        if response is not None:
            return response
        return self.get_response(request)

    def check(self, request: HttpRequest) -> HttpResponse | None:
        public = is_public(request)
        if not request.user.is_authenticated:
            if public:
                return None
            return redirect_to_login(request.get_full_path(), reverse("signin"))
        if request.path.startswith("/static/") or _is_api_request(request):
            return None
        if getattr(request.user, "is_federated", False):
            # A federated role session has no User: identity.federation_views'
            # FederatedSessionMiddleware enforces its expiry and idle timeout.
            return None
        user: User = request.user  # type: ignore[assignment]
        session = request.session
        moment = signin.now()

        if signin.SESSION_GENERATION_KEY not in session:
            signin.adopt_session(request, user)
        if session.get(signin.SESSION_GENERATION_KEY) != user.session_generation:
            return _end(request, "SessionRevoked", "Your session has ended. Please sign in again.")
        console_session_id = session.get(signin.CONSOLE_SESSION_KEY)
        row = (
            ConsoleSession.objects.filter(pk=console_session_id, ended_at__isnull=True).first()
            if console_session_id
            else None
        )
        if row is None or row.session_key != session.session_key:
            return _end(request, "SessionRevoked", "Your session has ended. Please sign in again.")

        account = user.account
        authenticated_at = _parse(session.get(AUTHENTICATED_AT_SESSION_KEY))
        if (
            authenticated_at is None
            or (moment - authenticated_at).total_seconds() > account.session_absolute_lifetime_s
        ):
            return _end(
                request,
                "AbsoluteTimeout",
                "Your session reached its maximum length. Sign in again.",
            )
        last_seen = _parse(session.get(signin.LAST_SEEN_KEY))
        if (
            last_seen is None
            or (moment - last_seen).total_seconds() > account.session_idle_timeout_s
        ):
            return _end(request, "IdleTimeout", "Your session timed out. Sign in again.")
        session[signin.LAST_SEEN_KEY] = moment.isoformat()
        if (moment - row.last_seen_at).total_seconds() > LAST_SEEN_WRITE_INTERVAL_S:
            ConsoleSession.objects.filter(pk=row.pk).update(last_seen_at=moment)

        if public and not request.path.startswith(("/signin/reauth", "/signin/mfa")):
            # A signed-in visitor on the sign-in pages: nothing to enforce there.
            return None
        allowed = request.path.startswith(ALWAYS_ALLOWED_PREFIXES)

        if session.get(signin.MFA_ENROLMENT_REQUIRED_KEY):
            if mfa.has_mfa(user):
                session.pop(signin.MFA_ENROLMENT_REQUIRED_KEY, None)
            elif not allowed and not request.path.startswith("/my/mfa/enrol"):
                return HttpResponseRedirect(reverse("identity:mfa_enrol"))

        if not user.is_root:
            policy = passwords.effective_policy(account)
            expired = passwords.password_expired(user, policy)
            if expired and policy.hard_expiry:
                return _end(request, "PasswordExpired", signin.HARD_EXPIRED_MESSAGE)
            if (user.password_reset_required or expired) and not (
                allowed or request.path.startswith("/my/password")
            ):
                return HttpResponseRedirect(reverse("identity:change_password"))
            expires_at = passwords.password_expires_at(user, policy)
            if expires_at is not None and not expired:
                request.password_expires_in_days = (  # type: ignore[attr-defined]
                    expires_at - moment
                ).days

        if user.is_root and _changes_state(request) and not (allowed or public):
            # Step-up for anything the root user changes. The request is not carried out: the
            # person re-authenticates and sends it again from the page they were on.
            return _step_up_redirect(request, max_age_s=STEP_UP_MAX_AGE_S)
        return None


def _changes_state(request: HttpRequest) -> bool:
    """Whether a request may change something: any unsafe method, unless its view declares an
    action AWS's Service Authorization Reference lists as List or Read (validating a policy,
    simulating one). A view that declares nothing counts as a change (fail safe)."""
    if request.method in SAFE_METHODS:
        return False
    try:
        match = resolve(request.path_info)
    except Resolver404:
        return True
    declared = getattr(match.func, "console_action", None)
    action = getattr(declared, "action", "")
    return not (action in READ_ONLY_ACTIONS or catalog.access_level(action) in ("List", "Read"))


def password_expiry_banner(request: HttpRequest) -> dict[str, str]:
    """Context processor: the expiry warning on every page while it applies (not a one-time
    message, which a person could miss), from what the middleware found for this request."""
    days = getattr(request, "password_expires_in_days", None)
    if days is None or days >= EXPIRY_WARNING_DAYS:
        return {}
    when = "today" if days <= 0 else f"in {days} day{'s' if days != 1 else ''}"
    return {
        "password_expiry_banner": f"Your password expires {when}. "
        "Change it from My security credentials."
    }


def authentication_age_s(request: HttpRequest) -> float | None:
    """Seconds since the last full authentication (password, and MFA when the user has a
    device) in this session; None when it never happened."""
    password_at = _parse(request.session.get(AUTHENTICATED_AT_SESSION_KEY))
    if password_at is None:
        return None
    newest = password_at
    if mfa.has_mfa(request.user):  # type: ignore[arg-type]
        mfa_at = _parse(request.session.get(MFA_AUTHENTICATED_AT_SESSION_KEY))
        if mfa_at is None:
            return None
        newest = min(password_at, mfa_at)
    return (signin.now() - newest).total_seconds()


def _step_up_redirect(request: HttpRequest, *, max_age_s: int) -> HttpResponse | None:
    """A redirect to re-authentication when the last one is older than ``max_age_s``, with a
    ``next`` inside Portcullis (the page itself for a GET, the page the form was on for a
    POST); None when the last authentication is recent enough."""
    age = authentication_age_s(request)
    if age is not None and age <= max_age_s:
        return None
    target = request.get_full_path() if request.method == "GET" else None
    url = reverse("reauth")
    if target is None:
        target = request.META.get("HTTP_REFERER", "") or reverse("identity:security")
    if not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        target = reverse("identity:security")
    location = f"{url}?{urlencode({'next': target})}"
    if request.headers.get("HX-Request"):
        # An htmx request would swap the sign-in page into a fragment: have htmx load the page.
        return HttpResponse(status=200, headers={"HX-Redirect": location})
    return HttpResponseRedirect(location)


def requires_recent_authentication(
    view: V | None = None, *, max_age_s: int = STEP_UP_MAX_AGE_S
) -> Any:
    """Step-up for sensitive views: when the last authentication is older than ``max_age_s``,
    send the user to re-enter their password (and a TOTP code) and come back.

    Usable bare (``@requires_recent_authentication``) or with an age
    (``@requires_recent_authentication(max_age_s=120)``).
    """

    def decorate(func: V) -> V:
        @functools.wraps(func)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path(), reverse("signin"))
            response = _step_up_redirect(request, max_age_s=max_age_s)
            if response is not None:
                return response
            return func(request, *args, **kwargs)

        wrapper.requires_recent_authentication = max_age_s  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    if view is not None:
        return decorate(view)
    return decorate

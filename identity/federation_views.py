"""Federated console sign-in through an OpenID Connect provider, and the providers' pages.

Sign-in (``/signin/oidc/...``, public):

1. ``signin_oidc`` — the account's providers with console sign-in, one button each;
2. ``signin_oidc_start`` — POST: a new flow (state, nonce, PKCE verifier) kept in this browser's
   session, then off to the provider's authorization endpoint;
3. ``signin_oidc_callback`` — the provider sends the browser back with a code and the state. The
   state must be one this session started and not used before (a replayed state is refused,
   even from a copy of the session); the code is redeemed and the ID token verified (nonce, our
   client id, the provider's keys);
4. ``signin_oidc_roles`` — the roles whose trust policy accepts this identity; choosing one
   issues a role session and the console runs as it (``FederatedSessionMiddleware``).

There is no Django user for such a session: ``request.user`` is a ``FederatedConsoleUser``
standing for the role session, and ``identity.request_context.actor_from_request`` turns it
into a ``role_session`` actor whose decisions use the role's policies.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.contrib import messages
from django.contrib.auth.models import AnonymousUser
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from audit.context import Actor
from audit.services import record_event
from console.access import (
    DeclaredAction,
    account_resource,
    authorize,
    console_action,
    console_actor,
    everything,
    render_page,
)
from identity import federation, naming
from identity.errors import ClientError, IAMError
from identity.models import Account, OIDCProvider, Role, TemporaryCredential
from identity.request_context import MFA_AUTHENTICATED_AT_SESSION_KEY, request_meta

FLOWS_SESSION_KEY = "portcullis_oidc_flows"
IDENTITY_SESSION_KEY = "portcullis_oidc_identity"
FEDERATED_CREDENTIAL_SESSION_KEY = "portcullis_federated_credential"
FEDERATED_LAST_SEEN_SESSION_KEY = "portcullis_federated_last_seen"
# Pending sign-ins one browser session may have at once (several tabs).
MAX_PENDING_FLOWS = 5
# How long a verified identity may take to choose a role.
IDENTITY_LIFETIME_S = 10 * 60


# --- The console session of a federated role session ------------------------------------------


class FederatedConsoleUser:
    """``request.user`` for a console signed in as a federated role session.

    It answers what the console asks of a signed-in user (``is_authenticated``, ``account``,
    ``arn``) and is never saved: the role session (``TemporaryCredential``) is the truth.
    """

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_root = False
    is_federated = True
    is_staff = False
    is_superuser = False
    pk = None
    id = None
    has_login_profile = False
    tags: list[dict[str, str]] = []

    def __init__(self, credential: TemporaryCredential) -> None:
        self.credential = credential
        role: Role = credential.role  # type: ignore[assignment]
        self.role = role
        self.account = credential.account
        self.account_id = credential.account_id
        self.name = credential.session_name
        self.arn = naming.assumed_role_arn(role.account_id, role.name, credential.session_name)

    def __str__(self) -> str:
        return self.arn

    def get_username(self) -> str:
        return self.arn

    def is_verified(self) -> bool:
        # django-otp's question: did this session pass MFA? Here: did the provider say so, and
        # is it trusted to?
        return self.credential.mfa_authenticated


def federated_user(request: HttpRequest) -> FederatedConsoleUser | None:
    user = getattr(request, "user", None)
    return user if isinstance(user, FederatedConsoleUser) else None


def _session_actor(request: HttpRequest, credential: TemporaryCredential) -> Actor:
    """The role session as the actor of its own sign-out (``actor_from_request`` needs a
    signed-in request; an expired session no longer is one)."""
    role: Role = credential.role  # type: ignore[assignment]
    return Actor(
        arn=naming.assumed_role_arn(role.account_id, role.name, credential.session_name),
        account_id=credential.account_id,
        kind="role_session",
        session=credential,
        access_key_id=credential.access_key_id,
        meta=request_meta(request),
    )


def end_federated_session(
    request: HttpRequest, *, reason: str = "SignOut", credential: TemporaryCredential | None = None
) -> None:
    """End this browser's federated console session and audit it as the role session
    (``signin:ConsoleLogout``, with the provider and subject it came from), like an IAM user's
    sign-out. The role session's credential itself runs to its expiry, as a role session's
    credentials do in STS; only this browser's hold on it ends."""
    if credential is None:
        user = federated_user(request)
        credential = user.credential if user is not None else None
    if credential is not None:
        actor = _session_actor(request, credential)
        with transaction.atomic():
            record_event(
                actor=actor,
                action="signin:ConsoleLogout",
                category="signin",
                resource_arn=actor.arn,
                parameters={
                    "Reason": reason,
                    "ProviderArn": credential.federated_provider_arn,
                    "Subject": credential.federated_subject,
                },
            )
    request.session.flush()
    request.user = AnonymousUser()


class FederatedSessionMiddleware:
    """Signs a request in as its federated role session, between Django's authentication and
    ``ConsoleSessionMiddleware``. The session ends when the role session expires (its duration
    is the role's maximum), when the role's sessions are revoked, or after the account's idle
    timeout."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        key = request.session.get(FEDERATED_CREDENTIAL_SESSION_KEY)
        if key:
            response = self._sign_in(request, key)
            if response is not None:
                return response
        return self.get_response(request)

    def _sign_in(self, request: HttpRequest, key: str) -> HttpResponse | None:
        credential = federation.active_console_session(key)
        now = timezone.now()
        last_seen = request.session.get(FEDERATED_LAST_SEEN_SESSION_KEY)
        idle = credential is not None and (
            last_seen is None
            or (now - datetime.fromisoformat(last_seen)).total_seconds()
            > credential.account.session_idle_timeout_s
        )
        if credential is None or idle:
            ended = credential or federation.console_session_credential(key)
            reason = "IdleTimeout" if idle else "SessionEnded"
            end_federated_session(request, reason=reason, credential=ended)
            messages.info(request, "Your federated session has ended. Sign in again.")
            return HttpResponseRedirect(reverse("signin_oidc"))
        request.session[FEDERATED_LAST_SEEN_SESSION_KEY] = now.isoformat()
        request.user = FederatedConsoleUser(credential)  # type: ignore[assignment]
        if request.path.startswith("/my/"):
            # Passwords, MFA devices and access keys of a federated identity live at its
            # provider; a role session has none here.
            messages.info(
                request, "Your credentials are managed by your identity provider, not here."
            )
            return HttpResponseRedirect("/")
        return None


# --- Sign-in ----------------------------------------------------------------------------------


def _account_from(reference: str) -> Account | None:
    from identity.signin import resolve_account

    return resolve_account(reference) if reference else None


def _error_page(request: HttpRequest, message: str, *, status: int = 400) -> HttpResponse:
    return render(
        request,
        "identity/federation/signin_error.html",
        {"message": message},
        status=status,
    )


@never_cache
@require_GET
def signin_oidc_view(request: HttpRequest) -> HttpResponse:
    reference = request.GET.get("account", "").strip()
    account = _account_from(reference)
    providers = federation.console_providers(account) if account is not None else []
    return render(
        request,
        "identity/federation/signin.html",
        {
            "reference": reference,
            "account": account,
            "providers": providers,
            "unknown": bool(reference) and account is None,
        },
    )


signin_oidc_view.console_action = DeclaredAction("signin:ConsoleLogin", None)  # type: ignore[attr-defined]


# A link, not a form: the CSP's form-action 'self' would stop a form's redirect to the
# provider. Starting a flow grants nothing; the state it creates is bound to this session.
@never_cache
@require_GET
def signin_oidc_start_view(request: HttpRequest) -> HttpResponse:
    account = _account_from(request.GET.get("account", ""))
    provider = None
    if account is not None and request.GET.get("provider", "").isdigit():
        provider = (
            OIDCProvider.objects.filter(account=account, pk=int(request.GET["provider"]))
            .exclude(console_client_id="")
            .first()
        )
    if provider is None:
        return _error_page(request, "That identity provider does not offer console sign-in.")
    redirect_uri = request.build_absolute_uri(reverse("signin_oidc_callback"))
    try:
        url, flow = federation.begin_console_sign_in(provider=provider, redirect_uri=redirect_uri)
    except IAMError as exc:
        return _error_page(request, exc.message, status=502)
    flows = dict(request.session.get(FLOWS_SESSION_KEY, {}))
    flows[flow["state"]] = flow
    # Keep the newest few: an abandoned sign-in in another tab cannot pile up.
    newest = sorted(flows.values(), key=lambda f: f["started_at"])[-MAX_PENDING_FLOWS:]
    request.session[FLOWS_SESSION_KEY] = {f["state"]: f for f in newest}
    return HttpResponseRedirect(url)


signin_oidc_start_view.console_action = DeclaredAction("signin:ConsoleLogin", None)  # type: ignore[attr-defined]


def _refuse(
    request: HttpRequest,
    error: ClientError,
    *,
    account_id: str = "",
    provider_arn: str = "",
    parameters: dict[str, Any] | None = None,
) -> HttpResponse:
    federation.record_rejection(
        account_id=account_id,
        action=federation.CONSOLE_ACTION,
        error=error,
        meta=request_meta(request),
        provider_arn=provider_arn,
        parameters=parameters,
        category="signin",
    )
    return _error_page(request, error.message, status=error.http_status)


@never_cache
@require_GET
def signin_oidc_callback_view(request: HttpRequest) -> HttpResponse:
    state = request.GET.get("state", "")
    flows = dict(request.session.get(FLOWS_SESSION_KEY, {}))
    flow = flows.pop(state, None) if state else None
    request.session[FLOWS_SESSION_KEY] = flows
    if flow is None or not federation.spend_state(state):
        # Unknown here, or already used: a replayed or forged callback (RFC 6749, 10.12).
        return _refuse(
            request,
            federation.InvalidIdentityToken(
                "This sign-in response was already used or was not started in this browser. "
                "Start the sign-in again."
            ),
            parameters={"StateHash": federation.state_hash(state)[:16] if state else ""},
        )
    provider = OIDCProvider.objects.filter(pk=flow["provider_id"]).first()
    if provider is None:
        return _error_page(request, "This identity provider no longer exists.")
    params = {"ProviderArn": provider.arn}
    started = datetime.fromisoformat(flow["started_at"])
    if (timezone.now() - started).total_seconds() > federation.FLOW_LIFETIME_S:
        return _refuse(
            request,
            federation.InvalidIdentityToken("This sign-in took too long. Start it again."),
            account_id=provider.account_id,
            provider_arn=provider.arn,
            parameters=params,
        )
    if request.GET.get("error"):
        description = request.GET.get("error_description", "")[:300]
        return _refuse(
            request,
            federation.IDPRejectedClaim(
                f"{provider.display_name or provider.url} refused the sign-in: "
                f"{request.GET['error']}{' — ' + description if description else ''}"
            ),
            account_id=provider.account_id,
            provider_arn=provider.arn,
            parameters=params,
        )
    issuer = request.GET.get("iss")
    if issuer is not None and issuer != provider.url:
        # RFC 9207: the response names its issuer; another one means a mix-up attack.
        return _refuse(
            request,
            federation.InvalidIdentityToken(
                f"The sign-in response came from {issuer}, not {provider.url}."
            ),
            account_id=provider.account_id,
            provider_arn=provider.arn,
            parameters=params,
        )
    try:
        identity = federation.complete_console_sign_in(
            account=provider.account, flow=flow, code=request.GET.get("code", "")
        )
    except ClientError as error:
        return _refuse(
            request,
            error,
            account_id=provider.account_id,
            provider_arn=provider.arn,
            parameters=params,
        )
    # A fresh session key for the identity, so a key fixed before sign-in is worthless.
    request.session.cycle_key()
    request.session[IDENTITY_SESSION_KEY] = {
        **identity.as_session(),
        "verified_at": timezone.now().isoformat(),
    }
    return HttpResponseRedirect(reverse("signin_oidc_roles"))


signin_oidc_callback_view.console_action = DeclaredAction("signin:ConsoleLogin", None)  # type: ignore[attr-defined]


def _pending_identity(request: HttpRequest) -> federation.WebIdentity | None:
    data = request.session.get(IDENTITY_SESSION_KEY)
    if not data:
        return None
    verified = datetime.fromisoformat(data["verified_at"])
    if (timezone.now() - verified).total_seconds() > IDENTITY_LIFETIME_S:
        request.session.pop(IDENTITY_SESSION_KEY, None)
        return None
    return federation.WebIdentity.from_session(data)


@never_cache
@csrf_protect
@require_http_methods(["GET", "POST"])
def signin_oidc_roles_view(request: HttpRequest) -> HttpResponse:
    identity = _pending_identity(request)
    if identity is None:
        messages.info(request, "Sign in with your identity provider first.")
        return HttpResponseRedirect(reverse("signin_oidc"))
    meta = request_meta(request)
    roles = federation.roles_for_identity(identity, meta=meta)
    if request.method == "POST":
        role = next((r for r in roles if str(r.pk) == request.POST.get("role")), None)
        if role is None:
            # Not offered (or no longer trusted): the service decides again and audits it.
            role = Role.objects.filter(
                account_id=identity.provider.account_id, pk=request.POST.get("role") or 0
            ).first()
        if role is None:
            return _error_page(request, "Choose one of the roles offered.")
        try:
            issued = federation.start_console_role_session(identity=identity, role=role, meta=meta)
        except ClientError as error:
            return _error_page(request, error.message, status=error.http_status)
        request.session.cycle_key()
        request.session.pop(IDENTITY_SESSION_KEY, None)
        request.session.pop(FLOWS_SESSION_KEY, None)
        request.session[FEDERATED_CREDENTIAL_SESSION_KEY] = issued.credential.access_key_id
        request.session[FEDERATED_LAST_SEEN_SESSION_KEY] = timezone.now().isoformat()
        if issued.credential.mfa_authenticated:
            request.session[MFA_AUTHENTICATED_AT_SESSION_KEY] = timezone.now().isoformat()
        return HttpResponseRedirect("/")
    return render(
        request,
        "identity/federation/roles.html",
        {
            "identity": identity,
            "roles": roles,
            "email": identity.claims.get("email", ""),
            "mfa_counts": identity.provider.mfa_claim_satisfies_mfa and identity.mfa,
        },
    )


signin_oidc_roles_view.console_action = DeclaredAction("sts:AssumeRoleWithWebIdentity", None)  # type: ignore[attr-defined]


# --- The providers' console pages --------------------------------------------------------------


def _provider_or_404(request: HttpRequest, provider_id: int, action: str) -> OIDCProvider:
    """Fetch-and-authorize: authorized on the provider's ARN; another account's is a 404."""
    user: Any = request.user
    provider = OIDCProvider.objects.filter(account_id=user.account_id, pk=provider_id).first()
    if provider is None:
        authorize(request, action, account_resource("oidc-provider/*")(request))
        raise Http404("No such identity provider.")
    authorize(request, action, provider.arn)
    return provider


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.replace(",", "\n").splitlines() if line.strip()]


@console_action("iam:ListOpenIDConnectProviders", resource=everything)
@require_GET
def providers_view(request: HttpRequest) -> HttpResponse:
    user: Any = request.user
    return render_page(
        request,
        "identity/federation/providers.html",
        {"providers": federation.list_open_id_connect_providers(account=user.account)},
    )


@console_action("iam:CreateOpenIDConnectProvider")
@csrf_protect
@require_http_methods(["GET", "POST"])
def provider_create_view(request: HttpRequest) -> HttpResponse:
    user: Any = request.user
    error = ""
    values = request.POST if request.method == "POST" else {}
    if request.method == "POST":
        url = request.POST.get("url", "").strip()
        probe = OIDCProvider(account_id=user.account_id, url=url)
        authorize(request, "iam:CreateOpenIDConnectProvider", probe.arn)
        try:
            provider = federation.create_open_id_connect_provider(
                account=user.account,
                url=url,
                client_id_list=_lines(request.POST.get("client_ids", "")),
                thumbprint_list=_lines(request.POST.get("thumbprints", "")),
                mfa_claim_satisfies_mfa=request.POST.get("mfa_claim_satisfies_mfa") == "on",
                console_client_id=request.POST.get("console_client_id", "").strip(),
                console_client_secret=request.POST.get("console_client_secret", ""),
                display_name=request.POST.get("display_name", "").strip(),
                actor=console_actor(request),
            )
        except IAMError as exc:
            error = f"{exc.code}: {exc.message}"
        else:
            messages.success(request, f"Identity provider {provider.arn} created.")
            return HttpResponseRedirect(reverse("federation:provider", args=[provider.pk]))
    else:
        authorize(
            request, "iam:CreateOpenIDConnectProvider", account_resource("oidc-provider/*")(request)
        )
    return render_page(
        request,
        "identity/federation/provider_create.html",
        {"error": error, "values": values},
        status=400 if error else 200,
    )


@console_action("iam:GetOpenIDConnectProvider")
@require_GET
def provider_view(request: HttpRequest, provider_id: int) -> HttpResponse:
    provider = _provider_or_404(request, provider_id, "iam:GetOpenIDConnectProvider")
    keys = [
        {"kid": k.get("kid", ""), "kty": k.get("kty", ""), "alg": k.get("alg", "")}
        for k in provider.jwks.get("keys", [])
    ]
    return render_page(
        request,
        "identity/federation/provider.html",
        {
            "provider": provider,
            "keys": keys,
            "algorithms": federation.advertised_algorithms(provider),
            "keys_current": federation.keys_are_current(provider),
        },
    )


@console_action("iam:AddClientIDToOpenIDConnectProvider")
@csrf_protect
@require_POST
def provider_add_client_view(request: HttpRequest, provider_id: int) -> HttpResponse:
    provider = _provider_or_404(request, provider_id, "iam:AddClientIDToOpenIDConnectProvider")
    user: Any = request.user
    try:
        federation.add_client_id_to_open_id_connect_provider(
            account=user.account,
            arn=provider.arn,
            client_id=request.POST.get("client_id", "").strip(),
            actor=console_actor(request),
        )
    except IAMError as exc:
        messages.error(request, f"{exc.code}: {exc.message}")
    return HttpResponseRedirect(reverse("federation:provider", args=[provider.pk]))


@console_action("iam:RemoveClientIDFromOpenIDConnectProvider")
@csrf_protect
@require_POST
def provider_remove_client_view(request: HttpRequest, provider_id: int) -> HttpResponse:
    provider = _provider_or_404(request, provider_id, "iam:RemoveClientIDFromOpenIDConnectProvider")
    user: Any = request.user
    federation.remove_client_id_from_open_id_connect_provider(
        account=user.account,
        arn=provider.arn,
        client_id=request.POST.get("client_id", ""),
        actor=console_actor(request),
    )
    return HttpResponseRedirect(reverse("federation:provider", args=[provider.pk]))


@console_action("iam:UpdateOpenIDConnectProviderThumbprint")
@csrf_protect
@require_POST
def provider_thumbprints_view(request: HttpRequest, provider_id: int) -> HttpResponse:
    """Replace the thumbprint list (kept for IAM compatibility; see ``identity.federation``)."""
    provider = _provider_or_404(request, provider_id, "iam:UpdateOpenIDConnectProviderThumbprint")
    user: Any = request.user
    try:
        federation.update_open_id_connect_provider_thumbprint(
            account=user.account,
            arn=provider.arn,
            thumbprint_list=_lines(request.POST.get("thumbprints", "")),
            actor=console_actor(request),
        )
    except IAMError as exc:
        messages.error(request, f"{exc.code}: {exc.message}")
    else:
        messages.success(request, "Thumbprints updated.")
    return HttpResponseRedirect(reverse("federation:provider", args=[provider.pk]))


# Fetching keys reads the provider and changes only Portcullis's cache of its public keys, so
# it is authorized as GetOpenIDConnectProvider (IAM has no action for it); it is audited as
# portcullis:FetchOpenIDConnectProviderKeys.
@console_action("iam:GetOpenIDConnectProvider")
@csrf_protect
@require_POST
def provider_refresh_keys_view(request: HttpRequest, provider_id: int) -> HttpResponse:
    """Fetch the discovery document and keys now (they are also refreshed hourly)."""
    provider = _provider_or_404(request, provider_id, "iam:GetOpenIDConnectProvider")
    user: Any = request.user
    if federation.fetch_open_id_connect_provider_keys(
        account=user.account, arn=provider.arn, actor=console_actor(request)
    ):
        messages.success(request, "Discovery document and keys fetched.")
    else:
        provider.refresh_from_db(fields=["jwks_fetch_error"])
        messages.error(request, f"Could not fetch the keys: {provider.jwks_fetch_error}")
    return HttpResponseRedirect(reverse("federation:provider", args=[provider.pk]))


@console_action("iam:DeleteOpenIDConnectProvider")
@csrf_protect
@require_POST
def provider_delete_view(request: HttpRequest, provider_id: int) -> HttpResponse:
    provider = _provider_or_404(request, provider_id, "iam:DeleteOpenIDConnectProvider")
    user: Any = request.user
    with transaction.atomic():
        federation.delete_open_id_connect_provider(
            account=user.account, arn=provider.arn, actor=console_actor(request)
        )
    messages.success(request, f"Identity provider {provider.arn} deleted.")
    return HttpResponseRedirect(reverse("federation:providers"))

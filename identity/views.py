"""Sign-in pages and "My security credentials" (self-service, under ``/my/``).

Every self-service action is authorized through ``policies.access`` with the IAM action AWS
uses for it, on the signed-in user's own ARN, except where AWS itself makes an exception:

- ``AllowUsersToChangePassword`` lets every IAM user change their own password and read the
  policy (IAM User Guide, "Permitting IAM users to change their own passwords");
- when the account requires MFA for the console and the user has no device yet, the first
  device may be enrolled (otherwise a user without that permission could never sign in);
- listing and ending one's *own* console sessions is like signing out: no permission needed.
"""

from __future__ import annotations

import base64
import csv
import dataclasses
import functools
import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods, require_POST

from audit.context import Actor
from identity import crypto, mfa, passwords, signin
from identity import services as identity_services
from identity.errors import AccessDenied, IAMError
from identity.forms import (
    ChangePasswordForm,
    EnableMFAForm,
    MFADeviceNameForm,
    MFAForm,
    ReauthForm,
    RootSigninForm,
    SigninForm,
)
from identity.middleware import requires_recent_authentication
from identity.models import AccessKey, ConsoleSession, MFADevice, User
from identity.request_context import actor_from_request
from policies.access import authorize, decide

V = TypeVar("V", bound=Callable[..., HttpResponse])

PENDING_DEVICE_KEY = "portcullis_pending_mfa_device"


@dataclass(frozen=True)
class DeclaredAction:
    """The IAM action a view performs (the console's URLconf test reads ``console_action``)."""

    action: str
    resource: Any = None


def self_service(action: str) -> Callable[[V], V]:
    """Declare a self-service view's IAM action and render ``AccessDenied`` as a 403 page."""

    def decorate(view: V) -> V:
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            try:
                return view(request, *args, **kwargs)
            except AccessDenied as exc:
                return render(request, "identity/403.html", {"message": exc.message}, status=403)

        wrapper.console_action = DeclaredAction(action)  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate


def _me(request: HttpRequest) -> User:
    return User.objects.select_related("account").get(pk=request.user.pk)


def _actor(request: HttpRequest) -> Actor:
    """The signed-in user as an Actor, holding the real ``User`` rather than the request's
    lazy wrapper (policy selectors filter on the user and need the model instance)."""
    return dataclasses.replace(actor_from_request(request), user=_me(request))


def _authorize(request: HttpRequest, action: str, resource: str) -> None:
    authorize(_actor(request), action, resource)


def _can(request: HttpRequest, action: str, resource: str) -> bool:
    return decide(_actor(request), action, resource).allowed


def safe_next(request: HttpRequest, candidate: str | None) -> str:
    """``next`` only ever points inside Portcullis; anything else goes to the dashboard."""
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return reverse(settings.LOGIN_REDIRECT_URL)


# --- Sign-in --------------------------------------------------------------------------------


def _after_password_step(
    request: HttpRequest, result: signin.Result, next_url: str
) -> HttpResponse:
    if result.outcome is signin.Outcome.MFA_REQUIRED:
        request.session["portcullis_next"] = next_url
        return HttpResponseRedirect(reverse("signin_mfa"))
    if result.outcome is signin.Outcome.ENROLMENT_REQUIRED:
        return HttpResponseRedirect(reverse("identity:mfa_enrol"))
    return HttpResponseRedirect(next_url)


def _signin_page(
    request: HttpRequest, form_class: type[Any], template: str, *, root: bool
) -> HttpResponse:
    next_url = safe_next(request, request.POST.get("next") or request.GET.get("next"))
    status = 200
    error = ""
    if request.method == "POST":
        form = form_class(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            if root:
                result = signin.password_step(
                    request, password=data["password"], root_email=data["email"]
                )
            else:
                result = signin.password_step(
                    request,
                    password=data["password"],
                    account_ref=data["account"],
                    user_name=data["user_name"],
                )
            if result.outcome in (
                signin.Outcome.SIGNED_IN,
                signin.Outcome.MFA_REQUIRED,
                signin.Outcome.ENROLMENT_REQUIRED,
            ):
                return _after_password_step(request, result, next_url)
            error = result.message
            status = 429 if result.outcome is signin.Outcome.THROTTLED else 401
            form = form_class(initial={k: v for k, v in data.items() if k != "password"})
        else:
            status = 400
    else:
        initial = {}
        if request.GET.get("account"):
            initial["account"] = request.GET["account"][:63]
        form = form_class(initial=initial)
    return render(
        request, template, {"form": form, "error": error, "next": next_url}, status=status
    )


@sensitive_post_parameters("password")
@csrf_protect
@never_cache
@require_http_methods(["GET", "POST"])
def signin_view(request: HttpRequest) -> HttpResponse:
    return _signin_page(request, SigninForm, "identity/signin.html", root=False)


signin_view.console_action = DeclaredAction("signin:ConsoleLogin")  # type: ignore[attr-defined]


@sensitive_post_parameters("password")
@csrf_protect
@never_cache
@require_http_methods(["GET", "POST"])
def signin_root_view(request: HttpRequest) -> HttpResponse:
    return _signin_page(request, RootSigninForm, "identity/signin_root.html", root=True)


signin_root_view.console_action = DeclaredAction("signin:ConsoleLogin")  # type: ignore[attr-defined]


@sensitive_post_parameters("code", "recovery_code")
@csrf_protect
@never_cache
@require_http_methods(["GET", "POST"])
def signin_mfa_view(request: HttpRequest) -> HttpResponse:
    user = signin.pending_user(request)
    if user is None:
        messages.info(request, "Sign in again.")
        return HttpResponseRedirect(reverse("signin"))
    error = ""
    status = 200
    if request.method == "POST":
        form = MFAForm(request.POST)
        if form.is_valid():
            result = signin.mfa_step(
                request,
                code=form.cleaned_data["code"],
                recovery_code=form.cleaned_data["recovery_code"],
            )
            if result.outcome is signin.Outcome.SIGNED_IN:
                next_url = safe_next(request, request.session.pop("portcullis_next", None))
                return HttpResponseRedirect(next_url)
            if signin.pending_user(request) is None:
                messages.error(request, signin.GENERIC_FAILURE)
                return HttpResponseRedirect(reverse("signin"))
            error = result.message
            status = 429 if result.outcome is signin.Outcome.THROTTLED else 401
            form = MFAForm()
        else:
            status = 400
    else:
        form = MFAForm()
    return render(
        request, "identity/signin_mfa.html", {"form": form, "error": error}, status=status
    )


signin_mfa_view.console_action = DeclaredAction("signin:ConsoleLogin")  # type: ignore[attr-defined]


@csrf_protect
@require_http_methods(["GET", "POST"])
def signout_view(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        if getattr(request.user, "is_federated", False):
            # A federated role session has no User; it is audited as the role session.
            from identity.federation_views import end_federated_session

            end_federated_session(request)
        else:
            signin.sign_out(request)
        messages.success(request, "You have signed out.")
        return HttpResponseRedirect(reverse("signin"))
    return render(request, "identity/signout.html", {})


signout_view.console_action = DeclaredAction("signin:ConsoleLogout")  # type: ignore[attr-defined]


@sensitive_post_parameters("password", "code")
@csrf_protect
@never_cache
@require_http_methods(["GET", "POST"])
def reauth_view(request: HttpRequest) -> HttpResponse:
    """Step-up: password (and TOTP) again, then back to where the user was going."""
    if not request.user.is_authenticated:
        return HttpResponseRedirect(reverse("signin"))
    next_url = safe_next(request, request.POST.get("next") or request.GET.get("next"))
    needs_code = mfa.has_mfa(request.user)  # type: ignore[arg-type]
    error = ""
    status = 200
    if request.method == "POST":
        form = ReauthForm(request.POST)
        if form.is_valid():
            if signin.reauthenticate(
                request, password=form.cleaned_data["password"], code=form.cleaned_data["code"]
            ):
                return HttpResponseRedirect(next_url)
            error = signin.GENERIC_FAILURE
            status = 401
            form = ReauthForm()
        else:
            status = 400
    else:
        form = ReauthForm()
    return render(
        request,
        "identity/reauth.html",
        {"form": form, "error": error, "next": next_url, "needs_code": needs_code},
        status=status,
    )


reauth_view.console_action = DeclaredAction("signin:Reauthenticate")  # type: ignore[attr-defined]


# --- My security credentials ----------------------------------------------------------------


@never_cache
@self_service("iam:GetUser")
def security_view(request: HttpRequest) -> HttpResponse:
    """The overview: password, MFA devices, recovery codes, access keys, sessions. Sections
    the user may not read are left out; the actions themselves are authorized again."""
    user = _me(request)
    policy = passwords.effective_policy(user.account)
    arn = user.arn
    can_list_mfa = _can(request, "iam:ListMFADevices", arn)
    can_list_keys = _can(request, "iam:ListAccessKeys", arn)
    context = {
        "me": user,
        "policy": policy,
        "expires_at": passwords.password_expires_at(user, policy),
        "can_change_password": passwords.may_change_own_password(_actor(request)),
        "can_list_mfa": can_list_mfa,
        "devices": mfa.list_mfa_devices(user=user) if can_list_mfa else [],
        "recovery_remaining": mfa.remaining_recovery_codes(user),
        "can_list_keys": can_list_keys,
        "keys": list(AccessKey.objects.filter(user=user).order_by("created_at"))
        if can_list_keys
        else [],
        "sessions": signin.active_sessions(user),
        "current_session": request.session.get(signin.CONSOLE_SESSION_KEY),
    }
    return render(request, "identity/security.html", context)


@sensitive_post_parameters("current_password", "new_password", "confirm_password")
@never_cache
@self_service("iam:ChangePassword")
def change_password_view(request: HttpRequest) -> HttpResponse:
    user = _me(request)
    actor = _actor(request)
    policy = passwords.DEFAULT_POLICY if user.is_root else passwords.effective_policy(user.account)
    forced = user.password_reset_required or (
        not user.is_root and passwords.password_expired(user, policy)
    )
    # A forced change is always allowed: the middleware lets the user do nothing else, so
    # refusing it would be a dead end (AWS's console attaches IAMUserChangePassword for the
    # same reason when it creates a user with "require password reset").
    if not forced and not passwords.may_change_own_password(actor):
        _authorize(request, "iam:ChangePassword", user.arn)  # raises with AWS's message
    if request.method == "POST":
        form = ChangePasswordForm(request.POST, user=user)
        if form.is_valid():
            data = form.cleaned_data
            try:
                if user.is_root:
                    passwords.change_root_password(
                        user=user,
                        old_password=data["current_password"],
                        new_password=data["new_password"],
                        actor=actor,
                    )
                else:
                    passwords.change_password(
                        user=user,
                        old_password=data["current_password"],
                        new_password=data["new_password"],
                        actor=actor,
                    )
            except IAMError as exc:
                field = "current_password" if "old password" in exc.message else "new_password"
                form.add_error(field, exc.message)
            else:
                signin.restamp_after_password_change(request)
                messages.success(
                    request, "Your password has been changed. Your other sessions have ended."
                )
                return HttpResponseRedirect(reverse("identity:security"))
    else:
        form = ChangePasswordForm(user=user)
    return render(
        request,
        "identity/change_password.html",
        {"form": form, "rules": policy.describe(), "forced": forced, "me": user},
        status=400 if request.method == "POST" else 200,
    )


def _enrolment_is_forced(request: HttpRequest, user: User) -> bool:
    return signin.mfa_required_for(user) and not mfa.has_mfa(user)


def _render_enrolment(
    request: HttpRequest, device: MFADevice, form: EnableMFAForm, status: int = 200
) -> HttpResponse:
    """The QR code (rendered here, no third-party service) and the secret for manual entry.
    Shown only to the session that created the still-unassigned device."""
    import segno

    seed = crypto.decrypt_text(device.seed_encrypted)
    account = device.account
    from urllib.parse import quote

    label = quote(f"{mfa.ISSUER}:{device.name}@{account.alias or account.id}")
    uri = f"otpauth://totp/{label}?secret={seed.rstrip('=')}&issuer={mfa.ISSUER}"
    qr = segno.make(uri, error="m")
    return render(
        request,
        "identity/mfa_confirm.html",
        {
            "device": device,
            "qr_data_uri": qr.png_data_uri(scale=5, border=4),
            "secret": seed.rstrip("="),
            "form": form,
        },
        status=status,
    )


def _pending_device(request: HttpRequest) -> MFADevice | None:
    pk = request.session.get(PENDING_DEVICE_KEY)
    if not pk:
        return None
    return (
        MFADevice.objects.select_related("account")
        .filter(pk=pk, user__isnull=True, account_id=request.user.account_id)  # type: ignore[union-attr]
        .first()
    )


@sensitive_post_parameters("code1", "code2")
@never_cache
@self_service("iam:EnableMFADevice")
@requires_recent_authentication
def mfa_enrol_view(request: HttpRequest) -> HttpResponse:
    """Enrol a virtual MFA device: name it, scan the QR code, enter two consecutive codes."""
    user = _me(request)
    actor = _actor(request)
    forced = _enrolment_is_forced(request, user)
    if not forced:
        _authorize(request, "iam:EnableMFADevice", user.arn)
    pending = _pending_device(request)
    if request.method == "POST" and "name" in request.POST:
        name_form = MFADeviceNameForm(request.POST)
        if name_form.is_valid():
            name = name_form.cleaned_data["name"]
            if not forced:
                _authorize(
                    request,
                    "iam:CreateVirtualMFADevice",
                    f"arn:aws:iam::{user.account_id}:mfa/{name}",
                )
            if pending is not None:
                # An abandoned enrolment of this session: its seed was never confirmed.
                mfa.delete_virtual_mfa_device(
                    account=user.account, serial_number=pending.serial_number, actor=actor
                )
            try:
                created = mfa.create_virtual_mfa_device(
                    account=user.account, virtual_mfa_device_name=name, actor=actor
                )
            except IAMError as exc:
                name_form.add_error("name", exc.message)
            else:
                request.session[PENDING_DEVICE_KEY] = created.device.pk
                return _render_enrolment(request, created.device, EnableMFAForm())
        return render(
            request,
            "identity/mfa_enrol.html",
            {"form": name_form, "forced": forced},
            status=400,
        )
    if request.method == "POST" and pending is not None:
        form = EnableMFAForm(request.POST)
        if form.is_valid():
            try:
                mfa.enable_mfa_device(
                    account=user.account,
                    user_name=user.name,
                    serial_number=pending.serial_number,
                    authentication_code1=form.cleaned_data["code1"],
                    authentication_code2=form.cleaned_data["code2"],
                    actor=actor,
                    user=user,
                )
            except IAMError as exc:
                form.add_error("code2", exc.message)
            else:
                request.session.pop(PENDING_DEVICE_KEY, None)
                request.session.pop(signin.MFA_ENROLMENT_REQUIRED_KEY, None)
                # The user just proved possession of the device with two codes.
                request.session[signin.MFA_AUTHENTICATED_AT_SESSION_KEY] = signin.now().isoformat()
                messages.success(request, f"MFA device {pending.name} is assigned to you.")
                return HttpResponseRedirect(reverse("identity:security"))
        return _render_enrolment(request, pending, form, status=400)
    default_name = user.name if not user.is_root else f"root-{user.account_id}"
    if MFADevice.objects.filter(account=user.account, name__iexact=default_name).exists():
        default_name = f"{default_name}-{MFADevice.objects.filter(user=user).count() + 1}"
    return render(
        request,
        "identity/mfa_enrol.html",
        {"form": MFADeviceNameForm(initial={"name": default_name}), "forced": forced},
    )


@require_POST
@self_service("iam:DeactivateMFADevice")
@requires_recent_authentication
def mfa_remove_view(request: HttpRequest, device_id: int) -> HttpResponse:
    """Deactivate and delete one of my devices (step-up required)."""
    user = _me(request)
    device = MFADevice.objects.filter(pk=device_id, user=user).first()
    if device is None:
        raise Http404("No such MFA device.")
    _authorize(request, "iam:DeactivateMFADevice", user.arn)
    _authorize(request, "iam:DeleteVirtualMFADevice", device.serial_number)
    actor = _actor(request)
    serial = device.serial_number
    mfa.deactivate_mfa_device(
        account=user.account, user_name=user.name, serial_number=serial, actor=actor, user=user
    )
    mfa.delete_virtual_mfa_device(account=user.account, serial_number=serial, actor=actor)
    messages.success(request, f"MFA device {device.name} was removed.")
    return HttpResponseRedirect(reverse("identity:security"))


@never_cache
@require_POST
@self_service("iam:EnableMFADevice")
@requires_recent_authentication
def recovery_codes_view(request: HttpRequest) -> HttpResponse:
    """(Re)generate my ten recovery codes; shown once on this response."""
    user = _me(request)
    if not mfa.has_mfa(user):
        messages.error(request, "Enrol an MFA device before creating recovery codes.")
        return HttpResponseRedirect(reverse("identity:security"))
    _authorize(request, "iam:EnableMFADevice", user.arn)
    codes = mfa.generate_recovery_codes(user=user, actor=_actor(request))
    return render(request, "identity/recovery_codes.html", {"codes": codes})


@never_cache
@self_service("iam:ListAccessKeys")
def access_keys_view(request: HttpRequest) -> HttpResponse:
    user = _me(request)
    _authorize(request, "iam:ListAccessKeys", user.arn)
    keys = list(AccessKey.objects.filter(user=user).order_by("created_at"))
    return render(request, "identity/access_keys.html", {"keys": keys, "me": user})


@never_cache
@require_POST
@self_service("iam:CreateAccessKey")
@requires_recent_authentication
def access_key_create_view(request: HttpRequest) -> HttpResponse:
    """Create a key; the secret is on this response only, with a CSV to download."""
    user = _me(request)
    _authorize(request, "iam:CreateAccessKey", user.arn)
    try:
        created = identity_services.create_access_key(account=user.account, actor=_actor(request))
    except IAMError as exc:
        messages.error(request, exc.message)
        return HttpResponseRedirect(reverse("identity:access_keys"))
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["Access key ID", "Secret access key"])
    writer.writerow([created.access_key.access_key_id, created.secret_access_key])
    csv_data_uri = "data:text/csv;base64," + base64.b64encode(
        buffer.getvalue().encode("utf-8")
    ).decode("ascii")
    return render(
        request,
        "identity/access_key_created.html",
        {
            "key": created.access_key,
            "secret": created.secret_access_key,
            "csv_data_uri": csv_data_uri,
            "csv_name": f"{created.access_key.access_key_id}_accessKeys.csv",
        },
    )


@require_POST
@self_service("iam:UpdateAccessKey")
def access_key_status_view(request: HttpRequest, access_key_id: str) -> HttpResponse:
    user = _me(request)
    _authorize(request, "iam:UpdateAccessKey", user.arn)
    status = request.POST.get("status", "")
    try:
        identity_services.update_access_key(
            account=user.account,
            access_key_id=access_key_id,
            status=status,
            actor=_actor(request),
        )
    except IAMError as exc:
        messages.error(request, exc.message)
    return HttpResponseRedirect(reverse("identity:access_keys"))


@require_POST
@self_service("iam:DeleteAccessKey")
def access_key_delete_view(request: HttpRequest, access_key_id: str) -> HttpResponse:
    user = _me(request)
    _authorize(request, "iam:DeleteAccessKey", user.arn)
    try:
        identity_services.delete_access_key(
            account=user.account, access_key_id=access_key_id, actor=_actor(request)
        )
    except IAMError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Access key {access_key_id} was deleted.")
    return HttpResponseRedirect(reverse("identity:access_keys"))


@never_cache
@self_service("portcullis:ListMyConsoleSessions")
def sessions_view(request: HttpRequest) -> HttpResponse:
    user = _me(request)
    return render(
        request,
        "identity/sessions.html",
        {
            "sessions": signin.active_sessions(user),
            "current_session": request.session.get(signin.CONSOLE_SESSION_KEY),
        },
    )


@require_POST
@self_service("portcullis:EndMyConsoleSessions")
def sessions_end_view(request: HttpRequest) -> HttpResponse:
    """End one of my sessions (``session``) or all the others (``all``)."""
    user = _me(request)
    actor = _actor(request)
    current_key = request.session.session_key or ""
    if request.POST.get("all"):
        count = signin.end_sessions(user=user, actor=actor, keep_key=current_key)
    else:
        try:
            session_id = int(request.POST.get("session", ""))
        except ValueError as exc:
            raise Http404("No such session.") from exc
        if not ConsoleSession.objects.filter(pk=session_id, user=user).exists():
            raise Http404("No such session.")
        count = signin.end_sessions(user=user, actor=actor, session_ids=[session_id])
    messages.success(request, f"Ended {count} session{'s' if count != 1 else ''}.")
    return HttpResponseRedirect(reverse("identity:sessions"))

"""Administrators' sign-in actions on the users and groups of their account.

Create, reset or remove a user's console password (generated, random, policy-compliant, reset
required at the next sign-in, shown once), unlock a locked user, exempt a break-glass user from
lockout, re-enable a disabled one,
deactivate one of a user's MFA devices, end a user's console sessions, and require MFA of a
group's members.

Authorization is the console's (``console.access``), which asks ``policies.access``: each view
declares its action and fetches the user or group *in the signed-in account only* with
``access_user``/``access_group`` — denied is a 403 with AWS's message whether or not the name
exists, allowed but absent (or another account's) is a 404. The IAM actions are AWS's
(``iam:CreateLoginProfile``, ``iam:UpdateLoginProfile``, ``iam:DeleteLoginProfile``,
``iam:DeactivateMFADevice`` on the user's ARN, as in the Service Authorization Reference);
IAM has no unlock, enable or end-sessions operation, so those are ``portcullis:*`` actions on
the user's ARN, known to policy validation through ``policies.engine.catalog``.

Every page and action asks for a recent authentication (step-up): these change how someone
else signs in. Every change is audited by the service it calls.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from console.access import (
    access_group,
    access_user,
    can,
    console_action,
    console_actor,
    render_page,
    signed_in_account,
)
from identity import mfa, passwords, signin
from identity.errors import IAMError, NoSuchEntity
from identity.middleware import requires_recent_authentication
from identity.models import Group, User


def _page(user: User) -> HttpResponseRedirect:
    return HttpResponseRedirect(
        reverse("identity_admin:user_console_access", kwargs={"user_name": user.name})
    )


@requires_recent_authentication
@never_cache
@console_action("iam:GetUser")
def user_console_access(request: HttpRequest, user_name: str) -> HttpResponse:
    """A user's console sign-in: password, lockout, MFA devices, sessions, groups' MFA rule."""
    user = access_user(request, user_name)
    arn = user.arn
    can_list_mfa = can(request, "iam:ListMFADevices", arn)
    groups = list(Group.objects.filter(memberships__user=user).order_by("name"))
    return render_page(
        request,
        "identity/admin_user.html",
        {
            "subject": user,
            "locked": signin.is_locked(user),
            "policy": passwords.effective_policy(user.account),
            "can_list_mfa": can_list_mfa,
            "devices": mfa.list_mfa_devices(user=user) if can_list_mfa else [],
            "session_count": len(signin.active_sessions(user)),
            "groups": groups,
            "mfa_required": signin.mfa_required_for(user),
            "can": {
                "create_password": can(request, "iam:CreateLoginProfile", arn),
                "reset_password": can(request, "iam:UpdateLoginProfile", arn),
                "delete_password": can(request, "iam:DeleteLoginProfile", arn),
                "unlock": can(request, "portcullis:UnlockUser", arn),
                "exempt": can(request, "portcullis:SetLockoutExemption", arn),
                "enable": can(request, "portcullis:EnableUser", arn),
                "deactivate_mfa": can(request, "iam:DeactivateMFADevice", arn),
                "end_sessions": can(request, "portcullis:EndUserSessions", arn),
            },
        },
    )


def _set_generated_password(
    request: HttpRequest, user: User, service: Callable[..., Any]
) -> HttpResponse:
    """Give ``user`` a generated password (reset required) through ``service`` (create or
    update the login profile) and show it on this response only: never stored in clear, never
    shown again. The calling view has authorized its action on the user."""
    account = signed_in_account(request)
    password = passwords.generate_password(account, user)
    try:
        service(
            account=account,
            user_name=user.name,
            password=password,
            password_reset_required=True,
            actor=console_actor(request),
        )
    except IAMError as exc:
        messages.error(request, f"{exc.code}: {exc.message}")
        return _page(user)
    return render_page(
        request, "identity/admin_password.html", {"subject": user, "password": password}
    )


@requires_recent_authentication
@never_cache
@require_POST
@console_action("iam:CreateLoginProfile")
def user_password_create(request: HttpRequest, user_name: str) -> HttpResponse:
    """Give a user a console password: generated, random, policy-compliant, reset required."""
    user = access_user(request, user_name)
    return _set_generated_password(request, user, passwords.create_login_profile)


@requires_recent_authentication
@never_cache
@require_POST
@console_action("iam:UpdateLoginProfile")
def user_password_reset(request: HttpRequest, user_name: str) -> HttpResponse:
    """Replace a user's console password with a generated one (reset required); the user's
    console sessions end, as with any new password."""
    user = access_user(request, user_name)
    return _set_generated_password(request, user, passwords.update_login_profile)


@requires_recent_authentication
@require_POST
@console_action("iam:DeleteLoginProfile")
def user_password_delete(request: HttpRequest, user_name: str) -> HttpResponse:
    """Remove a user's console password: no more console sign-in; their sessions end."""
    user = access_user(request, user_name)
    try:
        passwords.delete_login_profile(
            account=signed_in_account(request), user_name=user.name, actor=console_actor(request)
        )
    except IAMError as exc:
        messages.error(request, f"{exc.code}: {exc.message}")
    else:
        messages.success(request, f"The console password of {user.name} was removed.")
    return _page(user)


@requires_recent_authentication
@require_POST
@console_action("portcullis:UnlockUser")
def user_unlock(request: HttpRequest, user_name: str) -> HttpResponse:
    user = access_user(request, user_name)
    signin.unlock_user(user=user, actor=console_actor(request))
    messages.success(request, f"{user.name} is unlocked and may sign in again.")
    return _page(user)


@requires_recent_authentication
@require_POST
@console_action("portcullis:SetLockoutExemption")
def user_lockout_exemption(request: HttpRequest, user_name: str) -> HttpResponse:
    """Exempt a break-glass user from lockout, or end the exemption."""
    user = access_user(request, user_name)
    exempt = request.POST.get("exempt") == "true"
    signin.set_lockout_exemption(user=user, exempt=exempt, actor=console_actor(request))
    messages.success(
        request, f"{user.name} is {'now' if exempt else 'no longer'} exempt from lockout."
    )
    return _page(user)


@requires_recent_authentication
@require_POST
@console_action("portcullis:EnableUser")
def user_enable(request: HttpRequest, user_name: str) -> HttpResponse:
    """Re-enable a user disabled for inactivity."""
    user = access_user(request, user_name)
    signin.enable_user(user=user, actor=console_actor(request))
    messages.success(request, f"{user.name} is enabled.")
    return _page(user)


@requires_recent_authentication
@require_POST
@console_action("iam:DeactivateMFADevice")
def user_mfa_deactivate(request: HttpRequest, user_name: str, serial_number: str) -> HttpResponse:
    """Detach an MFA device from a user (``DeactivateMFADevice``: the virtual device itself
    remains, unassigned, as in IAM). A serial number that is not this user's is a 404."""
    user = access_user(request, user_name)
    try:
        mfa.deactivate_mfa_device(
            account=signed_in_account(request),
            user_name=user.name,
            serial_number=serial_number,
            actor=console_actor(request),
        )
    except NoSuchEntity as exc:
        raise Http404(exc.message) from exc
    messages.success(request, f"MFA device {serial_number} was deactivated for {user.name}.")
    return _page(user)


@requires_recent_authentication
@require_POST
@console_action("portcullis:EndUserSessions")
def user_sessions_end(request: HttpRequest, user_name: str) -> HttpResponse:
    user = access_user(request, user_name)
    count = signin.end_user_sessions(user=user, actor=console_actor(request))
    messages.success(
        request, f"Ended {count} console session{'s' if count != 1 else ''} of {user.name}."
    )
    return _page(user)


@requires_recent_authentication
@never_cache
@console_action("iam:GetGroup")
def group_console_access(request: HttpRequest, group_name: str) -> HttpResponse:
    """A group's console rule: whether its members must use MFA to sign in."""
    group = access_group(request, group_name)
    return render_page(
        request,
        "identity/admin_group.html",
        {
            "group": group,
            "account_requires_mfa": signed_in_account(request).require_mfa_for_console,
            "can_set": can(request, "portcullis:SetGroupMFARequirement", group.arn),
        },
    )


@requires_recent_authentication
@require_POST
@console_action("portcullis:SetGroupMFARequirement")
def group_mfa_requirement(request: HttpRequest, group_name: str) -> HttpResponse:
    group = access_group(request, group_name)
    required = request.POST.get("required") == "true"
    signin.set_group_mfa_requirement(group=group, required=required, actor=console_actor(request))
    messages.success(
        request,
        f"Members of {group.name} {'must' if required else 'no longer have to'} use MFA "
        "to sign in to the console.",
    )
    return HttpResponseRedirect(
        reverse("identity_admin:group_console_access", kwargs={"group_name": group.name})
    )

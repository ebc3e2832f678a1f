"""Account settings: alias, password policy (with NIST's advice and a hardened preset), the MFA
rule and session timeouts."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from console import services as console_services
from console.access import can, console_action, everything, render_page, signed_in_account
from console.forms import HARDENED_PRESET, AliasForm, PasswordPolicyForm, SessionSettingsForm
from console.views.common import actor, form_error
from identity import passwords as identity_passwords
from identity import services as identity_services
from identity.errors import IAMError, NoSuchEntity
from identity.models import Account


def _policy_initial(account: Account) -> tuple[dict, bool]:
    try:
        policy = identity_passwords.get_account_password_policy(account=account)
    except NoSuchEntity:
        return {}, False
    fields = PasswordPolicyForm.base_fields
    return {name: getattr(policy, name) for name in fields}, True


def _page(request: HttpRequest, status: int = 200, **forms) -> HttpResponse:  # type: ignore[no-untyped-def]
    account = Account.objects.get(pk=signed_in_account(request).pk)
    initial, has_policy = _policy_initial(account)
    root = account.root_arn
    context = {
        "account": account,
        "has_policy": has_policy,
        "policy_form": forms.get("policy_form") or PasswordPolicyForm(initial=initial),
        "alias_form": forms.get("alias_form")
        or AliasForm(initial={"account_alias": account.alias}),
        "session_form": forms.get("session_form")
        or SessionSettingsForm(
            initial={
                "require_mfa_for_console": account.require_mfa_for_console,
                "session_idle_timeout_minutes": account.session_idle_timeout_s // 60,
                "session_absolute_lifetime_hours": account.session_absolute_lifetime_s // 3600,
            }
        ),
        "can_update_policy": can(request, "iam:UpdateAccountPasswordPolicy", "*"),
        "can_alias": can(request, "iam:CreateAccountAlias", "*"),
        "can_settings": can(request, "portcullis:UpdateAccountSettings", root),
        "preset": HARDENED_PRESET,
    }
    return render_page(request, "console/account.html", context, status=status)


@console_action("iam:GetAccountPasswordPolicy", resource=everything)
def account_settings(request: HttpRequest) -> HttpResponse:
    return _page(request)


@require_POST
@console_action("iam:UpdateAccountPasswordPolicy", resource=everything)
def account_password_policy(request: HttpRequest) -> HttpResponse:
    account = signed_in_account(request)
    if request.POST.get("preset") == "hardened":
        data = dict(HARDENED_PRESET)
        form = None
    else:
        form = PasswordPolicyForm(request.POST)
        if not form.is_valid():
            return _page(request, 400, policy_form=form)
        data = form.cleaned_data
    try:
        identity_passwords.update_account_password_policy(
            account=account, actor=actor(request), **data
        )
        if request.POST.get("preset") == "hardened":
            # The preset also requires MFA for the console (NIST SP 800-63B AAL2).
            current = Account.objects.get(pk=account.pk)
            console_services.update_account_settings(
                account=current,
                require_mfa_for_console=True,
                session_idle_timeout_s=current.session_idle_timeout_s,
                session_absolute_lifetime_s=current.session_absolute_lifetime_s,
                actor=actor(request),
            )
    except IAMError as exc:
        form = form or PasswordPolicyForm(initial=data)
        form_error(form, exc)
        return _page(request, 400, policy_form=form)
    return redirect("console:account")


@require_POST
@console_action("iam:CreateAccountAlias", resource=everything)
def account_alias(request: HttpRequest) -> HttpResponse:
    account = signed_in_account(request)
    form = AliasForm(request.POST)
    if form.is_valid():
        alias = form.cleaned_data["account_alias"].strip()
        try:
            if alias:
                identity_services.create_account_alias(
                    account=account, account_alias=alias, actor=actor(request)
                ) if not account.alias else identity_services.update_account_alias(
                    account=account, account_alias=alias, actor=actor(request)
                )
            elif account.alias:
                identity_services.delete_account_alias(
                    account=account, account_alias=account.alias, actor=actor(request)
                )
        except IAMError as exc:
            form_error(form, exc, "account_alias")
        else:
            return redirect("console:account")
    return _page(request, 400, alias_form=form)


def _root_arn(request: HttpRequest, **kwargs: object) -> str:
    return signed_in_account(request).root_arn


@require_POST
@console_action("portcullis:UpdateAccountSettings", resource=_root_arn)
def account_sessions(request: HttpRequest) -> HttpResponse:
    form = SessionSettingsForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            console_services.update_account_settings(
                account=signed_in_account(request),
                require_mfa_for_console=data["require_mfa_for_console"],
                session_idle_timeout_s=data["session_idle_timeout_minutes"] * 60,
                session_absolute_lifetime_s=data["session_absolute_lifetime_hours"] * 3600,
                actor=actor(request),
            )
        except IAMError as exc:
            form_error(form, exc, "session_idle_timeout_minutes")
        else:
            return redirect("console:account")
    return _page(request, 400, session_form=form)

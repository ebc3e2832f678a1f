"""Forms for sign-in and "My security credentials". They validate; services write."""

from __future__ import annotations

from typing import Any

from django import forms

from identity import passwords
from identity.models import User


class SigninForm(forms.Form):
    """IAM user sign-in: account id or alias, user name, password."""

    account = forms.CharField(
        label="Account ID (12 digits) or account alias",
        max_length=63,
        widget=forms.TextInput(attrs={"autocomplete": "organization", "autofocus": True}),
    )
    user_name = forms.CharField(
        label="IAM user name",
        max_length=64,
        widget=forms.TextInput(attrs={"autocomplete": "username"}),
    )
    password = forms.CharField(
        label="Password",
        strip=False,
        max_length=1024,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )


class RootSigninForm(forms.Form):
    """Root user sign-in: email and password, as AWS separates them."""

    email = forms.EmailField(
        label="Root user email address",
        widget=forms.EmailInput(attrs={"autocomplete": "username", "autofocus": True}),
    )
    password = forms.CharField(
        label="Password",
        strip=False,
        max_length=1024,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )


class MFAForm(forms.Form):
    code = forms.CharField(
        label="MFA code",
        required=False,
        max_length=8,
        help_text="The 6-digit code your authenticator app shows now.",
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}
        ),
    )
    recovery_code = forms.CharField(
        label="Or a recovery code",
        required=False,
        max_length=20,
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not data.get("code") and not data.get("recovery_code"):
            raise forms.ValidationError("Enter the code from your MFA device or a recovery code.")
        return data


class ReauthForm(forms.Form):
    password = forms.CharField(
        label="Password",
        strip=False,
        max_length=1024,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password", "autofocus": True}),
    )
    code = forms.CharField(
        label="MFA code",
        required=False,
        max_length=8,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )


class ChangePasswordForm(forms.Form):
    """Current password, new password (checked against every rule), confirmation."""

    current_password = forms.CharField(
        label="Current password",
        strip=False,
        max_length=1024,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )
    new_password = forms.CharField(
        label="New password",
        strip=False,
        max_length=1024,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )
    confirm_password = forms.CharField(
        label="Confirm new password",
        strip=False,
        max_length=1024,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user
        self.fields["new_password"].widget.attrs["aria-describedby"] = "password-rules"

    def clean_new_password(self) -> str:
        value: str = self.cleaned_data["new_password"]
        policy = passwords.DEFAULT_POLICY if self.user.is_root else None
        broken = passwords.password_rule_violations(
            password=value, account=self.user.account, user=self.user, policy=policy
        )
        if broken:
            raise forms.ValidationError(broken)
        return value

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        new = data.get("new_password")
        if new and new != data.get("confirm_password"):
            self.add_error("confirm_password", "The two new passwords do not match.")
        return data


class MFADeviceNameForm(forms.Form):
    name = forms.CharField(
        label="Device name",
        max_length=128,
        help_text="Letters, digits and + = , . @ _ - (unique in the account).",
    )


class EnableMFAForm(forms.Form):
    code1 = forms.CharField(
        label="MFA code 1",
        max_length=6,
        min_length=6,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )
    code2 = forms.CharField(
        label="MFA code 2",
        max_length=6,
        min_length=6,
        help_text="Wait for the next code (30 seconds) and enter it here.",
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )

"""Console forms: they parse and check input; the services decide and write.

Rules IAM owns (name shapes, quotas, policy grammar) are checked by the services, whose
errors the views attach to the field they concern, so the console and the API give the same
answer to the same mistake.
"""

from __future__ import annotations

from typing import Any

from django import forms

from identity import naming
from identity.errors import IAMError


def parse_tags(text: str) -> list[dict[str, str]]:
    """``key=value`` per line (value may be empty)."""
    tags = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        key, _, value = line.partition("=")
        tags.append({"Key": key.strip(), "Value": value.strip()})
    return tags


class TagsField(forms.CharField):
    widget = forms.Textarea(attrs={"rows": 3})

    def clean(self, value: Any) -> list[dict[str, str]]:  # type: ignore[override]
        text = super().clean(value) or ""
        tags = parse_tags(text)
        try:
            return naming.validate_tags(tags)
        except IAMError as exc:
            raise forms.ValidationError(exc.message) from exc


class ListField(forms.CharField):
    """One item per line (or comma-separated)."""

    widget = forms.Textarea(attrs={"rows": 3})

    def clean(self, value: Any) -> list[str]:  # type: ignore[override]
        text = super().clean(value) or ""
        items = [p.strip() for line in text.splitlines() for p in line.split(",")]
        return [i for i in items if i]


class UserCreateForm(forms.Form):
    user_name = forms.CharField(max_length=64, label="User name")
    path = forms.CharField(max_length=512, initial="/", required=False)
    console_password = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Leave empty for a user without console access.",
    )
    password_reset_required = forms.BooleanField(
        required=False, label="User must create a new password at next sign-in"
    )
    groups = forms.MultipleChoiceField(required=False, widget=forms.CheckboxSelectMultiple)
    policy_arns = ListField(required=False, label="Managed policy ARNs to attach (one per line)")
    permissions_boundary = forms.CharField(
        required=False, label="Permissions boundary (policy ARN)", max_length=2048
    )
    tags = TagsField(required=False, label="Tags (key=value, one per line)")

    def __init__(self, *args: Any, group_names: list[str] = (), **kwargs: Any) -> None:  # type: ignore[assignment]
        super().__init__(*args, **kwargs)
        self.fields["groups"].choices = [(n, n) for n in group_names]

    def clean_path(self) -> str:
        return self.cleaned_data.get("path") or "/"


class GroupCreateForm(forms.Form):
    group_name = forms.CharField(max_length=128, label="Group name")
    path = forms.CharField(max_length=512, initial="/", required=False)
    policy_arns = ListField(required=False, label="Managed policy ARNs to attach (one per line)")

    def clean_path(self) -> str:
        return self.cleaned_data.get("path") or "/"


class NameForm(forms.Form):
    """A single name (add a member, attach a policy by ARN, ...)."""

    name = forms.CharField(max_length=2048)


TRUST_EXAMPLE = """{
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::%s:root"},
            "Action": "sts:AssumeRole"
        }
    ]
}"""


class RoleCreateForm(forms.Form):
    role_name = forms.CharField(max_length=64, label="Role name")
    path = forms.CharField(max_length=512, initial="/", required=False)
    description = forms.CharField(max_length=1000, required=False)
    assume_role_policy_document = forms.CharField(
        label="Trust policy", widget=forms.Textarea(attrs={"class": "code", "spellcheck": "false"})
    )
    max_session_duration = forms.IntegerField(
        initial=3600, min_value=1, label="Maximum session duration (seconds, 3600–43200)"
    )

    def clean_path(self) -> str:
        return self.cleaned_data.get("path") or "/"


class TrustPolicyForm(forms.Form):
    policy_document = forms.CharField(
        label="Trust policy", widget=forms.Textarea(attrs={"class": "code", "spellcheck": "false"})
    )


class RoleSettingsForm(forms.Form):
    description = forms.CharField(max_length=1000, required=False)
    max_session_duration = forms.IntegerField(
        min_value=1, label="Maximum session duration (seconds, 3600–43200)"
    )


class PolicyDocumentForm(forms.Form):
    policy_name = forms.CharField(max_length=128, label="Policy name", required=False)
    path = forms.CharField(max_length=512, initial="/", required=False)
    description = forms.CharField(max_length=1000, required=False)
    policy_document = forms.CharField(
        label="Policy document (JSON)",
        widget=forms.Textarea(attrs={"class": "code", "spellcheck": "false", "rows": 20}),
    )

    def clean_path(self) -> str:
        return self.cleaned_data.get("path") or "/"


class SimulatorForm(forms.Form):
    SOURCE_CHOICES = [
        ("user", "An IAM user"),
        ("group", "An IAM group"),
        ("role", "An IAM role"),
        ("custom", "Policies I paste"),
    ]
    source = forms.ChoiceField(choices=SOURCE_CHOICES, initial="user", widget=forms.RadioSelect)
    principal_name = forms.CharField(
        required=False, label="User, group or role name", max_length=128
    )
    policies = forms.CharField(
        required=False,
        label="Policies to simulate (JSON documents separated by a line with ---)",
        widget=forms.Textarea(attrs={"class": "code", "rows": 8, "spellcheck": "false"}),
    )
    actions = ListField(label="Actions (one per line)")
    resources = ListField(required=False, label="Resource ARNs (one per line; empty means *)")
    context = forms.CharField(
        required=False,
        label="Context values (key=value, one per line; several values with commas)",
        widget=forms.Textarea(attrs={"rows": 3}),
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("source") in ("user", "group", "role") and not data.get("principal_name"):
            self.add_error("principal_name", "Name the user, group or role to simulate.")
        if data.get("source") == "custom" and not (data.get("policies") or "").strip():
            self.add_error("policies", "Paste at least one policy document.")
        return data


class PasswordPolicyForm(forms.Form):
    minimum_password_length = forms.IntegerField(min_value=6, max_value=128, initial=8)
    require_symbols = forms.BooleanField(required=False)
    require_numbers = forms.BooleanField(required=False)
    require_uppercase_characters = forms.BooleanField(required=False)
    require_lowercase_characters = forms.BooleanField(required=False)
    allow_users_to_change_password = forms.BooleanField(required=False)
    max_password_age = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=1095,
        label="Password expiration (days; empty: never)",
    )
    password_reuse_prevention = forms.IntegerField(
        required=False, min_value=1, max_value=24, label="Prevent reuse of the last N passwords"
    )
    hard_expiry = forms.BooleanField(required=False, label="Expired passwords need an admin reset")


# NIST SP 800-63B §5.1.1.2: at least 8 characters (we preset 14), no composition rules, no
# periodic rotation; screen against known-bad passwords (the sign-in issue does). MFA required.
HARDENED_PRESET: dict[str, Any] = {
    "minimum_password_length": 14,
    "require_symbols": False,
    "require_numbers": False,
    "require_uppercase_characters": False,
    "require_lowercase_characters": False,
    "allow_users_to_change_password": True,
    "max_password_age": None,
    "password_reuse_prevention": 4,
    "hard_expiry": False,
}


class AliasForm(forms.Form):
    account_alias = forms.CharField(max_length=63, required=False, label="Account alias")


class SessionSettingsForm(forms.Form):
    require_mfa_for_console = forms.BooleanField(
        required=False, label="Require MFA for console sign-in"
    )
    session_idle_timeout_minutes = forms.IntegerField(
        min_value=1, max_value=720, label="Idle timeout (minutes)"
    )
    session_absolute_lifetime_hours = forms.IntegerField(
        min_value=1, max_value=12, label="Session lifetime (hours)"
    )


class AuditFilterForm(forms.Form):
    actor = forms.CharField(required=False, label="User (ARN or name contains)")
    action = forms.CharField(required=False, label="Action (e.g. iam:CreateUser)")
    resource = forms.CharField(required=False, label="Resource ARN contains")
    result = forms.ChoiceField(
        required=False, choices=[("", "Any"), ("Success", "Success"), ("Failure", "Failure")]
    )
    since = forms.DateTimeField(required=False, label="From (UTC, YYYY-MM-DD HH:MM)")
    until = forms.DateTimeField(required=False, label="To (UTC)")


class InlinePolicyForm(forms.Form):
    """An inline policy of a user, group or role: its name and document (``iam:Put*Policy``)."""

    policy_name = forms.CharField(max_length=128, label="Policy name")
    policy_document = forms.CharField(
        label="Policy document (JSON)",
        widget=forms.Textarea(attrs={"class": "code", "spellcheck": "false", "rows": 20}),
    )


class TagForm(forms.Form):
    tags = TagsField(label="Tags to add or change (key=value, one per line)")


class BoundaryForm(forms.Form):
    permissions_boundary = forms.CharField(
        max_length=2048, label="Permissions boundary (managed policy ARN)"
    )

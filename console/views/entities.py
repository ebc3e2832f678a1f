"""What users, groups and roles share: inline policies, tags and the permissions boundary.

Each page names its IAM action (``iam:PutUserPolicy``, ``iam:TagRole``, ...) and authorizes it
on the entity's ARN through ``console.access``; the services (the ones the Query API calls)
validate, write and audit. Groups have inline policies but, as in IAM, no tags or boundary.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from console.access import access_group, access_role, access_user, can, console_action, render_page
from console.editor import annotate
from console.forms import BoundaryForm, InlinePolicyForm, TagForm
from console.views.common import account_of, actor, call_and_redirect, form_error, render_error
from identity import quotas
from identity import services as identity_services
from identity.errors import IAMError, InvalidInput
from policies import engine
from policies import services as policy_services
from policies.models import InlinePolicy

NEW_INLINE = """{
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": "iam:GetUser",
            "Resource": "*"
        }
    ]
}"""


@dataclass(frozen=True)
class EntityKind:
    label: str  # "user"
    iam: str  # "User": iam:Put<iam>Policy, iam:Tag<iam>, ...
    access: Callable[..., Any]
    detail_url: str
    back_tab: str  # the detail page's tab (users) or anchor (groups, roles)
    inline_quota: int
    put_inline: Callable[..., Any]
    delete_inline: Callable[..., Any]
    tag: Callable[..., Any] | None = None
    untag: Callable[..., Any] | None = None
    put_boundary: Callable[..., Any] | None = None
    delete_boundary: Callable[..., Any] | None = None

    @property
    def name_arg(self) -> str:
        return f"{self.label}_name"

    def back(self, name: str, tab: str = "") -> str:
        url = reverse(self.detail_url, kwargs={self.name_arg: name})
        if self.label == "user":
            return url + f"?tab={tab or self.back_tab}"
        return url + f"#{tab or self.back_tab}"


USER = EntityKind(
    label="user",
    iam="User",
    access=access_user,
    detail_url="console:user_detail",
    back_tab="permissions",
    inline_quota=quotas.USER_INLINE_POLICIES_SIZE,
    put_inline=policy_services.put_user_policy,
    delete_inline=policy_services.delete_user_policy,
    tag=identity_services.tag_user,
    untag=identity_services.untag_user,
    put_boundary=identity_services.put_user_permissions_boundary,
    delete_boundary=identity_services.delete_user_permissions_boundary,
)
GROUP = EntityKind(
    label="group",
    iam="Group",
    access=access_group,
    detail_url="console:group_detail",
    back_tab="permissions",
    inline_quota=quotas.GROUP_INLINE_POLICIES_SIZE,
    put_inline=policy_services.put_group_policy,
    delete_inline=policy_services.delete_group_policy,
)
ROLE = EntityKind(
    label="role",
    iam="Role",
    access=access_role,
    detail_url="console:role_detail",
    back_tab="permissions",
    inline_quota=quotas.ROLE_INLINE_POLICIES_SIZE,
    put_inline=policy_services.put_role_policy,
    delete_inline=policy_services.delete_role_policy,
    tag=identity_services.tag_role,
    untag=identity_services.untag_role,
    put_boundary=identity_services.put_role_permissions_boundary,
    delete_boundary=identity_services.delete_role_permissions_boundary,
)


# --- inline policies ---------------------------------------------------------------------


def _inline_editor(kind: EntityKind) -> Callable[..., HttpResponse]:
    action = f"iam:Put{kind.iam}Policy"

    def view(request: HttpRequest, **kwargs: str) -> HttpResponse:
        """Add or replace an inline policy in the validated editor. Opening an existing one
        also reads it (``iam:Get<Entity>Policy``)."""
        entity = kind.access(request, kwargs[kind.name_arg])
        existing = None
        name = request.GET.get("policy_name", "").strip()
        if name:
            existing = InlinePolicy.objects.filter(**{kind.label: entity}, name=name).first()
            if existing is not None:
                kind.access(request, entity.name, f"iam:Get{kind.iam}Policy")
        initial = {
            "policy_name": existing.name if existing else name,
            "policy_document": existing.document if existing else NEW_INLINE,
        }
        form = InlinePolicyForm(request.POST or None, initial=initial)
        annotated = None
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            annotated = annotate(
                data["policy_document"], engine.PolicyType.IDENTITY, max_size=kind.inline_quota
            )
            if annotated.has_errors:
                form.add_error("policy_document", "Fix the errors shown at their lines.")
            else:
                try:
                    kind.put_inline(
                        account=account_of(request),
                        **{kind.name_arg: entity.name},
                        policy_name=data["policy_name"],
                        policy_document=data["policy_document"],
                        actor=actor(request),
                    )
                except IAMError as exc:
                    form_error(form, exc, "policy_document")
                else:
                    return redirect(kind.back(entity.name))
        return render_page(
            request,
            "console/inline_policy.html",
            {
                "kind": kind,
                "entity": entity,
                "form": form,
                "annotated": annotated,
                "existing": existing,
                "action": action,
                "back": kind.back(entity.name),
            },
            status=400 if request.method == "POST" else 200,
        )

    view.__name__ = f"{kind.label}_inline_policy"
    return console_action(action)(view)


def _inline_delete(kind: EntityKind) -> Callable[..., HttpResponse]:
    action = f"iam:Delete{kind.iam}Policy"

    def view(request: HttpRequest, **kwargs: str) -> HttpResponse:
        entity = kind.access(request, kwargs[kind.name_arg])
        return call_and_redirect(
            request,
            kind.delete_inline,
            **{kind.name_arg: entity.name},
            policy_name=request.POST.get("policy_name", "").strip(),
            done=kind.back(entity.name),
            back=kind.back(entity.name),
        )

    view.__name__ = f"{kind.label}_inline_policy_delete"
    return require_POST(console_action(action)(view))


# --- tags --------------------------------------------------------------------------------


def _tag(kind: EntityKind) -> Callable[..., HttpResponse]:
    action = f"iam:Tag{kind.iam}"

    def view(request: HttpRequest, **kwargs: str) -> HttpResponse:
        entity = kind.access(request, kwargs[kind.name_arg])
        form = TagForm(request.POST)
        back = kind.back(entity.name, "tags")
        if not form.is_valid():
            message = "; ".join(e for errors in form.errors.values() for e in errors)
            return render_error(request, InvalidInput(message), back)
        assert kind.tag is not None
        return call_and_redirect(
            request,
            kind.tag,
            **{kind.name_arg: entity.name},
            tags=form.cleaned_data["tags"],
            done=back,
            back=back,
        )

    view.__name__ = f"{kind.label}_tag"
    return require_POST(console_action(action)(view))


def _untag(kind: EntityKind) -> Callable[..., HttpResponse]:
    action = f"iam:Untag{kind.iam}"

    def view(request: HttpRequest, **kwargs: str) -> HttpResponse:
        entity = kind.access(request, kwargs[kind.name_arg])
        back = kind.back(entity.name, "tags")
        keys = [k.strip() for k in request.POST.getlist("tag_key") if k.strip()]
        assert kind.untag is not None
        return call_and_redirect(
            request, kind.untag, **{kind.name_arg: entity.name}, tag_keys=keys, done=back, back=back
        )

    view.__name__ = f"{kind.label}_untag"
    return require_POST(console_action(action)(view))


# --- permissions boundary ----------------------------------------------------------------


def _boundary(kind: EntityKind) -> Callable[..., HttpResponse]:
    action = f"iam:Put{kind.iam}PermissionsBoundary"

    def view(request: HttpRequest, **kwargs: str) -> HttpResponse:
        entity = kind.access(request, kwargs[kind.name_arg])
        back = kind.back(entity.name)
        form = BoundaryForm(request.POST)
        assert kind.put_boundary is not None
        if not form.is_valid():
            message = "Give the ARN of a managed policy to use as the boundary."
            return render_error(request, InvalidInput(message), back)
        return call_and_redirect(
            request,
            kind.put_boundary,
            **{kind.name_arg: entity.name},
            permissions_boundary=form.cleaned_data["permissions_boundary"].strip(),
            done=back,
            back=back,
        )

    view.__name__ = f"{kind.label}_boundary"
    return require_POST(console_action(action)(view))


def _boundary_delete(kind: EntityKind) -> Callable[..., HttpResponse]:
    action = f"iam:Delete{kind.iam}PermissionsBoundary"

    def view(request: HttpRequest, **kwargs: str) -> HttpResponse:
        entity = kind.access(request, kwargs[kind.name_arg])
        back = kind.back(entity.name)
        assert kind.delete_boundary is not None
        return call_and_redirect(
            request, kind.delete_boundary, **{kind.name_arg: entity.name}, done=back, back=back
        )

    view.__name__ = f"{kind.label}_boundary_delete"
    return require_POST(console_action(action)(view))


def editing_flags(request: HttpRequest, kind: EntityKind, arn: str) -> dict[str, bool]:
    """Which of these actions the signed-in principal may use on one entity (for buttons)."""
    flags = {
        "can_put_inline": can(request, f"iam:Put{kind.iam}Policy", arn),
        "can_delete_inline": can(request, f"iam:Delete{kind.iam}Policy", arn),
    }
    if kind.tag is not None:
        flags["can_tag"] = can(request, f"iam:Tag{kind.iam}", arn)
        flags["can_untag"] = can(request, f"iam:Untag{kind.iam}", arn)
        flags["can_put_boundary"] = can(request, f"iam:Put{kind.iam}PermissionsBoundary", arn)
        flags["can_delete_boundary"] = can(request, f"iam:Delete{kind.iam}PermissionsBoundary", arn)
    return flags


user_inline_policy = _inline_editor(USER)
user_inline_policy_delete = _inline_delete(USER)
user_tag = _tag(USER)
user_untag = _untag(USER)
user_boundary = _boundary(USER)
user_boundary_delete = _boundary_delete(USER)
group_inline_policy = _inline_editor(GROUP)
group_inline_policy_delete = _inline_delete(GROUP)
role_inline_policy = _inline_editor(ROLE)
role_inline_policy_delete = _inline_delete(ROLE)
role_tag = _tag(ROLE)
role_untag = _untag(ROLE)
role_boundary = _boundary(ROLE)
role_boundary_delete = _boundary_delete(ROLE)

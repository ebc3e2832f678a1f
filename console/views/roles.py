"""Roles: list, create, detail with the trust relationship editor and instance profiles."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from console import queries
from console.access import (
    access_role,
    authorize,
    can,
    console_action,
    everything,
    render_page,
    signed_in_account,
)
from console.editor import annotate
from console.forms import TRUST_EXAMPLE, RoleCreateForm, RoleSettingsForm, TrustPolicyForm
from console.views.common import (
    account_of,
    actor,
    call_and_redirect,
    form_error,
    prefix_list,
    render_error,
)
from console.views.entities import ROLE as ROLE_KIND
from console.views.entities import editing_flags
from identity import naming, quotas
from identity import services as identity_services
from identity.errors import IAMError
from policies import engine
from policies.models import InlinePolicy, RolePolicyAttachment


@console_action("iam:ListRoles", resource=everything)
def role_list(request: HttpRequest) -> HttpResponse:
    return prefix_list(
        request,
        queries.roles_queryset,
        template="console/roles/list.html",
        create_action="iam:CreateRole",
        create_pattern="role/*",
    )


@console_action("iam:CreateRole")
def role_create(request: HttpRequest) -> HttpResponse:
    account = signed_in_account(request)
    authorize(request, "iam:CreateRole", naming.iam_arn(account.id, "role/*"))
    form = RoleCreateForm(
        request.POST or None,
        initial={"assume_role_policy_document": TRUST_EXAMPLE % account.id},
    )
    annotated = None
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        annotated = annotate(
            data["assume_role_policy_document"],
            engine.PolicyType.TRUST,
            max_size=quotas.ROLE_TRUST_POLICY_SIZE,
        )
        authorize(
            request, "iam:CreateRole", naming.role_arn(account.id, data["path"], data["role_name"])
        )
        if annotated.has_errors:
            form.add_error("assume_role_policy_document", "Fix the errors shown at their lines.")
        else:
            try:
                role = identity_services.create_role(
                    account=account,
                    role_name=data["role_name"],
                    path=data["path"],
                    description=data["description"],
                    assume_role_policy_document=data["assume_role_policy_document"],
                    max_session_duration=data["max_session_duration"],
                    actor=actor(request),
                )
            except IAMError as exc:
                form_error(form, exc, "assume_role_policy_document")
            else:
                return redirect("console:role_detail", role_name=role.name)
    status = 400 if request.method == "POST" else 200
    return render_page(
        request,
        "console/roles/create.html",
        {
            "form": form,
            "annotated": annotated,
            "create_arn": naming.iam_arn(account.id, "role/*"),
        },
        status=status,
    )


@console_action("iam:GetRole")
def role_detail(request: HttpRequest, role_name: str) -> HttpResponse:
    role = access_role(request, role_name)
    return _render_role(request, role)


def _render_role(request, role, trust_form=None, settings_form=None, annotated=None, status=200):  # type: ignore[no-untyped-def]
    arn = role.arn
    context = {
        "role": role,
        "attached": [
            a.policy
            for a in RolePolicyAttachment.objects.filter(role=role)
            .select_related("policy")
            .order_by("policy__name")
        ],
        "inline": list(InlinePolicy.objects.filter(role=role).order_by("name")),
        "profiles": list(role.instance_profiles.order_by("name")),
        "trust_form": trust_form
        or TrustPolicyForm(initial={"policy_document": role.assume_role_policy_document}),
        "settings_form": settings_form
        or RoleSettingsForm(
            initial={
                "description": role.description,
                "max_session_duration": role.max_session_duration,
            }
        ),
        "annotated": annotated,
        "can_edit_trust": can(request, "iam:UpdateAssumeRolePolicy", arn),
        "can_update": can(request, "iam:UpdateRole", arn),
        "can_add_profile": can(request, "iam:AddRoleToInstanceProfile", "*"),
        "can_delete": can(request, "iam:DeleteRole", arn),
        "can_list_tags": can(request, "iam:ListRoleTags", arn),
        "role_tag_url": reverse("console:role_tag", args=[role.name]),
        "role_untag_url": reverse("console:role_untag", args=[role.name]),
        **editing_flags(request, ROLE_KIND, arn),
    }
    return render_page(request, "console/roles/detail.html", context, status=status)


@require_POST
@console_action("iam:UpdateAssumeRolePolicy")
def role_update_trust(request: HttpRequest, role_name: str) -> HttpResponse:
    role = access_role(request, role_name)
    form = TrustPolicyForm(request.POST)
    annotated = None
    if form.is_valid():
        text = form.cleaned_data["policy_document"]
        annotated = annotate(text, engine.PolicyType.TRUST, max_size=quotas.ROLE_TRUST_POLICY_SIZE)
        if annotated.has_errors:
            form.add_error("policy_document", "Fix the errors shown at their lines.")
        else:
            try:
                identity_services.update_assume_role_policy(
                    account=account_of(request),
                    role_name=role.name,
                    policy_document=text,
                    actor=actor(request),
                )
            except IAMError as exc:
                form_error(form, exc, "policy_document")
            else:
                return redirect("console:role_detail", role_name=role.name)
    return _render_role(request, role, trust_form=form, annotated=annotated, status=400)


@require_POST
@console_action("iam:UpdateRole")
def role_update(request: HttpRequest, role_name: str) -> HttpResponse:
    role = access_role(request, role_name)
    form = RoleSettingsForm(request.POST)
    if form.is_valid():
        try:
            identity_services.update_role(
                account=account_of(request),
                role_name=role.name,
                description=form.cleaned_data["description"],
                max_session_duration=form.cleaned_data["max_session_duration"],
                actor=actor(request),
            )
        except IAMError as exc:
            form_error(form, exc, "max_session_duration")
        else:
            return redirect("console:role_detail", role_name=role.name)
    return _render_role(request, role, settings_form=form, status=400)


@require_POST
@console_action("iam:AddRoleToInstanceProfile")
def role_add_instance_profile(request: HttpRequest, role_name: str) -> HttpResponse:
    """Create an instance profile named after the role (if needed) and put the role in it."""
    role = access_role(request, role_name)
    account = account_of(request)
    name = request.POST.get("name", "").strip() or role.name
    profile_arn = naming.instance_profile_arn(account.id, "/", name)
    authorize(request, "iam:AddRoleToInstanceProfile", profile_arn)
    who = actor(request)
    try:
        if not role.instance_profiles.filter(name__iexact=name).exists():
            if not account.instance_profiles.filter(name__iexact=name).exists():
                authorize(request, "iam:CreateInstanceProfile", profile_arn)
                identity_services.create_instance_profile(
                    account=account, instance_profile_name=name, actor=who
                )
            identity_services.add_role_to_instance_profile(
                account=account, instance_profile_name=name, role_name=role.name, actor=who
            )
    except IAMError as exc:
        return render_error(request, exc, reverse("console:role_detail", args=[role.name]))
    return redirect("console:role_detail", role_name=role.name)


@require_POST
@console_action("iam:DeleteRole")
def role_delete(request: HttpRequest, role_name: str) -> HttpResponse:
    role = access_role(request, role_name)
    return call_and_redirect(
        request,
        identity_services.delete_role,
        role_name=role.name,
        done=reverse("console:roles"),
        back=reverse("console:role_detail", args=[role.name]),
    )

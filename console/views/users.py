"""Users: list, create, detail tabs, membership and attachments."""

from __future__ import annotations

from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from console import queries
from console.access import (
    access_group,
    access_user,
    account_resource,
    authorize,
    can,
    console_action,
    everything,
    render_page,
    signed_in_account,
)
from console.forms import NameForm, UserCreateForm
from console.views.common import actor, call_and_redirect, form_error, posted_name
from console.views.entities import USER as USER_KIND
from console.views.entities import editing_flags
from identity import naming
from identity import passwords as identity_passwords
from identity import services as identity_services
from identity.errors import IAMError
from identity.models import Group
from policies import services as policy_services

USER_TABS = ("permissions", "groups", "credentials", "tags", "access")


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except ValueError:
        return None


@console_action("iam:ListUsers", resource=everything)
def user_list(request: HttpRequest) -> HttpResponse:
    account = signed_in_account(request)
    q = request.GET
    filters = queries.UserFilters(
        name_prefix=q.get("q", "").strip(),
        path_prefix=q.get("path", "").strip(),
        group=q.get("group", "").strip(),
        has_mfa=q.get("mfa", ""),
        has_password=q.get("password", ""),
        key_older_than_days=_int_or_none(q.get("key_age")),
        sort=q.get("sort", "name"),
    )
    page = queries.users_page(account, filters, after=q.get("after"), before=q.get("before"))
    params = q.copy()
    for key in ("after", "before", "page"):
        params.pop(key, None)
    return render_page(
        request,
        "console/users/list.html",
        {
            "page": page,
            "total": queries.user_total(account, filters),
            "cache_seconds": queries.CACHE_SECONDS,
            "filters": filters,
            "query": params.urlencode(),
            "can_create": can(request, "iam:CreateUser", naming.iam_arn(account.id, "user/*")),
            "sorts": [
                ("name", "Name A–Z"),
                ("-name", "Name Z–A"),
                ("-created", "Newest"),
                ("created", "Oldest"),
                ("-last_signin", "Recent sign-in"),
                ("last_signin", "Oldest sign-in"),
            ],
        },
    )


@console_action("iam:CreateUser")
def user_create(request: HttpRequest) -> HttpResponse:
    account = signed_in_account(request)
    group_names = list(
        Group.objects.filter(account=account).order_by("name").values_list("name", flat=True)[:300]
    )
    form = UserCreateForm(request.POST or None, group_names=group_names)
    if request.method != "POST":
        authorize(request, "iam:CreateUser", naming.iam_arn(account.id, "user/*"))
        return render_page(request, "console/users/create.html", {"form": form})
    authorize(request, "iam:CreateUser", naming.iam_arn(account.id, "user/*"))
    if form.is_valid():
        data = form.cleaned_data
        arn = naming.user_arn(account.id, data["path"], data["user_name"])
        # Every step is its own IAM action, authorized like the API would authorize it; the
        # whole creation commits or rolls back as one.
        authorize(request, "iam:CreateUser", arn)
        if data["tags"]:
            authorize(request, "iam:TagUser", arn)
        if data["console_password"]:
            authorize(request, "iam:CreateLoginProfile", arn)
        if data["permissions_boundary"]:
            authorize(request, "iam:PutUserPermissionsBoundary", arn)
        if data["policy_arns"]:
            authorize(request, "iam:AttachUserPolicy", arn)
        for group_name in data["groups"]:
            access_group(request, group_name, "iam:AddUserToGroup")
        who = actor(request)
        try:
            with transaction.atomic():
                user = identity_services.create_user(
                    account=account,
                    user_name=data["user_name"],
                    path=data["path"],
                    tags=data["tags"],
                    permissions_boundary=data["permissions_boundary"] or None,
                    actor=who,
                )
                if data["console_password"]:
                    identity_passwords.create_login_profile(
                        account=account,
                        user_name=user.name,
                        password=data["console_password"],
                        password_reset_required=data["password_reset_required"],
                        actor=who,
                    )
                for group_name in data["groups"]:
                    identity_services.add_user_to_group(
                        account=account, group_name=group_name, user_name=user.name, actor=who
                    )
                for policy_arn in data["policy_arns"]:
                    policy_services.attach_user_policy(
                        account=account, user_name=user.name, policy_arn=policy_arn, actor=who
                    )
        except IAMError as exc:
            hint = "console_password" if exc.code == "PasswordPolicyViolation" else None
            if exc.code in ("NoSuchEntity", "LimitExceeded") and "olicy" in exc.message:
                hint = "policy_arns"
            form_error(form, exc, hint)
        else:
            return redirect("console:user_detail", user_name=user.name)
    return render_page(request, "console/users/create.html", {"form": form}, status=400)


@console_action("iam:GetUser")
def user_detail(request: HttpRequest, user_name: str) -> HttpResponse:
    user = access_user(request, user_name)
    tab = request.GET.get("tab", "permissions")
    if tab not in USER_TABS:
        tab = "permissions"
    arn = user.arn
    context: dict = {"user": user, "tab": tab, "tabs": USER_TABS}
    if tab == "permissions":
        context["allowed"] = can(request, "iam:ListAttachedUserPolicies", arn)
        if context["allowed"]:
            context["perm"] = queries.user_permissions(user)
        context["can_attach"] = can(request, "iam:AttachUserPolicy", arn)
        context["can_detach"] = can(request, "iam:DetachUserPolicy", arn)
    elif tab == "groups":
        context["allowed"] = can(request, "iam:ListGroupsForUser", arn)
        if context["allowed"]:
            context["groups"] = list(user.iam_groups.order_by("name"))
        context["can_add"] = can(request, "iam:AddUserToGroup", "*")
    elif tab == "credentials":
        context["allowed"] = can(request, "iam:ListAccessKeys", arn)
        if context["allowed"]:
            context["keys"] = list(user.access_keys.order_by("created_at"))
            context["devices"] = list(user.mfa_devices.order_by("created_at"))
    elif tab == "tags":
        context["allowed"] = can(request, "iam:ListUserTags", arn)
        context["user_tag_url"] = reverse("console:user_tag", args=[user.name])
        context["user_untag_url"] = reverse("console:user_untag", args=[user.name])
    elif tab == "access":
        context["allowed"] = can(request, "iam:GenerateServiceLastAccessedDetails", arn)
        if context["allowed"]:
            context["services"] = queries.last_accessed_by_service(arn)
    context["can_delete"] = can(request, "iam:DeleteUser", arn)
    context.update(editing_flags(request, USER_KIND, arn))
    return render_page(request, "console/users/detail.html", context)


def _tab(user_name: str, tab: str) -> str:
    return reverse("console:user_detail", kwargs={"user_name": user_name}) + f"?tab={tab}"


@require_POST
@console_action("iam:AddUserToGroup")
def user_add_to_group(request: HttpRequest, user_name: str) -> HttpResponse:
    form = NameForm(request.POST)
    user = access_user(request, user_name, "iam:GetUser")
    group = access_group(request, form.data.get("name", ""))
    return call_and_redirect(
        request,
        identity_services.add_user_to_group,
        group_name=group.name,
        user_name=user.name,
        done=_tab(user.name, "groups"),
        back=request.path,
    )


@require_POST
@console_action("iam:RemoveUserFromGroup")
def user_remove_from_group(request: HttpRequest, user_name: str) -> HttpResponse:
    user = access_user(request, user_name, "iam:GetUser")
    group = access_group(request, request.POST.get("name", ""))
    return call_and_redirect(
        request,
        identity_services.remove_user_from_group,
        group_name=group.name,
        user_name=user.name,
        done=_tab(user.name, "groups"),
        back=request.path,
    )


@require_POST
@console_action("iam:AttachUserPolicy")
def user_attach_policy(request: HttpRequest, user_name: str) -> HttpResponse:
    user = access_user(request, user_name)
    return call_and_redirect(
        request,
        policy_services.attach_user_policy,
        user_name=user.name,
        policy_arn=posted_name(request),
        done=_tab(user.name, "permissions"),
        back=request.path,
    )


@require_POST
@console_action("iam:DetachUserPolicy")
def user_detach_policy(request: HttpRequest, user_name: str) -> HttpResponse:
    user = access_user(request, user_name)
    return call_and_redirect(
        request,
        policy_services.detach_user_policy,
        user_name=user.name,
        policy_arn=posted_name(request),
        done=_tab(user.name, "permissions"),
        back=request.path,
    )


@require_POST
@console_action("iam:DeleteUser")
def user_delete(request: HttpRequest, user_name: str) -> HttpResponse:
    user = access_user(request, user_name)
    return call_and_redirect(
        request,
        identity_services.delete_user,
        user_name=user.name,
        done=reverse("console:users"),
        back=reverse("console:user_detail", args=[user.name]),
    )


__all__ = ["account_resource"]

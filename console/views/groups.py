"""Groups: list, create (with policies), detail with members and permissions."""

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
    authorize,
    can,
    console_action,
    everything,
    render_page,
    signed_in_account,
)
from console.forms import GroupCreateForm
from console.views.common import actor, call_and_redirect, form_error, posted_name, prefix_list
from console.views.entities import GROUP as GROUP_KIND
from console.views.entities import editing_flags
from identity import naming
from identity import services as identity_services
from identity.errors import IAMError
from policies import services as policy_services
from policies.models import GroupPolicyAttachment, InlinePolicy


@console_action("iam:ListGroups", resource=everything)
def group_list(request: HttpRequest) -> HttpResponse:
    return prefix_list(
        request,
        queries.groups_queryset,
        template="console/groups/list.html",
        create_action="iam:CreateGroup",
        create_pattern="group/*",
    )


@console_action("iam:CreateGroup")
def group_create(request: HttpRequest) -> HttpResponse:
    account = signed_in_account(request)
    authorize(request, "iam:CreateGroup", naming.iam_arn(account.id, "group/*"))
    form = GroupCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        arn = naming.group_arn(account.id, data["path"], data["group_name"])
        authorize(request, "iam:CreateGroup", arn)
        if data["policy_arns"]:
            authorize(request, "iam:AttachGroupPolicy", arn)
        who = actor(request)
        try:
            with transaction.atomic():
                group = identity_services.create_group(
                    account=account, group_name=data["group_name"], path=data["path"], actor=who
                )
                for policy_arn in data["policy_arns"]:
                    policy_services.attach_group_policy(
                        account=account, group_name=group.name, policy_arn=policy_arn, actor=who
                    )
        except IAMError as exc:
            hint = "policy_arns" if "olicy" in exc.message else None
            form_error(form, exc, hint)
        else:
            return redirect("console:group_detail", group_name=group.name)
    status = 400 if request.method == "POST" else 200
    return render_page(request, "console/groups/create.html", {"form": form}, status=status)


@console_action("iam:GetGroup")
def group_detail(request: HttpRequest, group_name: str) -> HttpResponse:
    group = access_group(request, group_name)
    members = queries.paginate(
        group.members.order_by("name").only("name", "path", "account_id", "is_root", "unique_id"),
        request.GET.get("page"),
    )
    arn = group.arn
    context = {
        "group": group,
        "members": members,
        "attached": [
            a.policy
            for a in GroupPolicyAttachment.objects.filter(group=group)
            .select_related("policy")
            .order_by("policy__name")
        ],
        "inline": list(InlinePolicy.objects.filter(group=group).order_by("name")),
        "can_add_member": can(request, "iam:AddUserToGroup", arn),
        "can_remove_member": can(request, "iam:RemoveUserFromGroup", arn),
        "can_attach": can(request, "iam:AttachGroupPolicy", arn),
        "can_detach": can(request, "iam:DetachGroupPolicy", arn),
        "can_delete": can(request, "iam:DeleteGroup", arn),
        **editing_flags(request, GROUP_KIND, arn),
    }
    return render_page(request, "console/groups/detail.html", context)


def _detail(group_name: str) -> str:
    return reverse("console:group_detail", kwargs={"group_name": group_name})


@require_POST
@console_action("iam:AddUserToGroup")
def group_add_member(request: HttpRequest, group_name: str) -> HttpResponse:
    group = access_group(request, group_name)
    user = access_user(request, posted_name(request), "iam:GetUser")
    return call_and_redirect(
        request,
        identity_services.add_user_to_group,
        group_name=group.name,
        user_name=user.name,
        done=_detail(group.name),
        back=_detail(group.name),
    )


@require_POST
@console_action("iam:RemoveUserFromGroup")
def group_remove_member(request: HttpRequest, group_name: str) -> HttpResponse:
    group = access_group(request, group_name)
    return call_and_redirect(
        request,
        identity_services.remove_user_from_group,
        group_name=group.name,
        user_name=posted_name(request),
        done=_detail(group.name),
        back=_detail(group.name),
    )


@require_POST
@console_action("iam:AttachGroupPolicy")
def group_attach_policy(request: HttpRequest, group_name: str) -> HttpResponse:
    group = access_group(request, group_name)
    return call_and_redirect(
        request,
        policy_services.attach_group_policy,
        group_name=group.name,
        policy_arn=posted_name(request),
        done=_detail(group.name),
        back=_detail(group.name),
    )


@require_POST
@console_action("iam:DetachGroupPolicy")
def group_detach_policy(request: HttpRequest, group_name: str) -> HttpResponse:
    group = access_group(request, group_name)
    return call_and_redirect(
        request,
        policy_services.detach_group_policy,
        group_name=group.name,
        policy_arn=posted_name(request),
        done=_detail(group.name),
        back=_detail(group.name),
    )


@require_POST
@console_action("iam:DeleteGroup")
def group_delete(request: HttpRequest, group_name: str) -> HttpResponse:
    group = access_group(request, group_name)
    return call_and_redirect(
        request,
        identity_services.delete_group,
        group_name=group.name,
        done=reverse("console:groups"),
        back=_detail(group.name),
    )

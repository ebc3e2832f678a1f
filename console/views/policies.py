"""Managed policies: list, create and edit in a validated JSON editor, versions, summary."""

from __future__ import annotations

import json

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from console import queries
from console.access import (
    access_policy,
    authorize,
    can,
    console_action,
    everything,
    render_page,
    signed_in_account,
)
from console.editor import annotate
from console.forms import PolicyDocumentForm
from console.views.common import account_of, actor, call_and_redirect, form_error
from identity import naming, quotas
from identity.errors import IAMError
from policies import engine
from policies import services as policy_services
from policies.models import ManagedPolicy, PolicyVersion

NEW_POLICY = """{
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": "iam:ListUsers",
            "Resource": "*"
        }
    ]
}"""


@console_action("iam:ListPolicies", resource=everything)
def policy_list(request: HttpRequest) -> HttpResponse:
    account = signed_in_account(request)
    kind = request.GET.get("kind", "")
    prefix = request.GET.get("q", "").strip()
    page = queries.paginate(
        queries.policies_queryset(account, kind, prefix), request.GET.get("page")
    )
    builtin_ids = [p.pk for p in page.object_list if p.account_id == naming.AWS_MANAGED_ACCOUNT]
    counts = queries.builtin_attachment_counts(account, builtin_ids) if builtin_ids else {}
    rows = [
        {
            "policy": p,
            "builtin": p.account_id == naming.AWS_MANAGED_ACCOUNT,
            "attachments": counts.get(p.pk, 0)
            if p.account_id == naming.AWS_MANAGED_ACCOUNT
            else p.attachment_count,
        }
        for p in page.object_list
    ]
    return render_page(
        request,
        "console/policies/list.html",
        {
            "page": page,
            "rows": rows,
            "kind": kind,
            "q": prefix,
            "can_create": can(request, "iam:CreatePolicy", naming.iam_arn(account.id, "policy/*")),
        },
    )


def _editor_response(request, template, context, status=200):  # type: ignore[no-untyped-def]
    return render_page(request, template, context, status=status)


@console_action("iam:CreatePolicy")
def policy_create(request: HttpRequest) -> HttpResponse:
    account = signed_in_account(request)
    authorize(request, "iam:CreatePolicy", naming.iam_arn(account.id, "policy/*"))
    form = PolicyDocumentForm(request.POST or None, initial={"policy_document": NEW_POLICY})
    annotated = None
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        if not data["policy_name"]:
            form.add_error("policy_name", "Name the policy.")
        else:
            authorize(
                request,
                "iam:CreatePolicy",
                naming.policy_arn(account.id, data["path"], data["policy_name"]),
            )
            annotated = annotate(data["policy_document"], max_size=quotas.MANAGED_POLICY_SIZE)
            if annotated.has_errors:
                form.add_error("policy_document", "Fix the errors shown at their lines.")
            else:
                try:
                    policy = policy_services.create_policy(
                        account=account,
                        policy_name=data["policy_name"],
                        path=data["path"],
                        description=data["description"],
                        policy_document=data["policy_document"],
                        actor=actor(request),
                    )
                except IAMError as exc:
                    form_error(form, exc, "policy_document")
                else:
                    return redirect("console:policy_detail", policy_arn=policy.arn)
    status = 400 if request.method == "POST" else 200
    return render_page(
        request,
        "console/policies/create.html",
        {
            "form": form,
            "annotated": annotated,
            "create_arn": naming.iam_arn(account.id, "policy/*"),
        },
        status=status,
    )


@console_action("iam:GetPolicy")
def policy_detail(request: HttpRequest, policy_arn: str) -> HttpResponse:
    account = signed_in_account(request)
    policy = access_policy(request, policy_arn)
    arn = policy.arn
    versions = list(PolicyVersion.objects.filter(policy=policy).order_by("-created_at", "-pk"))
    default = next((v for v in versions if v.is_default), None)
    tab = request.GET.get("tab", "summary")
    context: dict = {
        "policy": policy,
        "builtin": policy.is_aws_managed,
        "versions": versions,
        "default": default,
        "tab": tab,
        "can_edit": not policy.is_aws_managed and can(request, "iam:CreatePolicyVersion", arn),
        "can_set_default": not policy.is_aws_managed
        and can(request, "iam:SetDefaultPolicyVersion", arn),
        "can_delete_version": not policy.is_aws_managed
        and can(request, "iam:DeletePolicyVersion", arn),
    }
    if tab == "summary" and default is not None:
        try:
            context["summary"] = engine.summarize_policy(engine.parse_policy(default.document))
        except engine.PolicyParseError as exc:
            context["summary_error"] = exc.message
    elif tab == "json" and default is not None:
        try:
            context["pretty"] = json.dumps(json.loads(default.document), indent=4)
        except ValueError:
            context["pretty"] = default.document
    elif tab == "entities":
        context["allowed"] = can(request, "iam:ListEntitiesForPolicy", arn)
        if context["allowed"]:
            context["entities"] = queries.policy_entities(policy, account)
    return render_page(request, "console/policies/detail.html", context)


def _versions_tab(policy: ManagedPolicy) -> str:
    return reverse("console:policy_detail", kwargs={"policy_arn": policy.arn}) + "?tab=versions"


@console_action("iam:CreatePolicyVersion")
def policy_edit(request: HttpRequest, policy_arn: str) -> HttpResponse:
    """Edit = add a version and make it the default, as IAM's console does. With five versions
    already, the oldest non-default one must be deleted first (we say so, as IAM does)."""
    policy = access_policy(request, policy_arn)
    default = PolicyVersion.objects.filter(policy=policy, is_default=True).first()
    form = PolicyDocumentForm(
        request.POST or None,
        initial={"policy_document": default.document if default else NEW_POLICY},
    )
    annotated = None
    if request.method == "POST" and form.is_valid():
        text = form.cleaned_data["policy_document"]
        annotated = annotate(text, max_size=quotas.MANAGED_POLICY_SIZE)
        if annotated.has_errors:
            form.add_error("policy_document", "Fix the errors shown at their lines.")
        else:
            try:
                policy_services.create_policy_version(
                    account=account_of(request),
                    policy_arn=policy.arn,
                    policy_document=text,
                    set_as_default=request.POST.get("set_as_default", "on") == "on",
                    actor=actor(request),
                )
            except IAMError as exc:
                form_error(form, exc, "policy_document")
            else:
                return redirect(_versions_tab(policy))
    status = 400 if request.method == "POST" else 200
    return render_page(
        request,
        "console/policies/edit.html",
        {"form": form, "policy": policy, "annotated": annotated},
        status=status,
    )


@require_POST
@console_action("iam:SetDefaultPolicyVersion")
def policy_set_default(request: HttpRequest, policy_arn: str) -> HttpResponse:
    policy = access_policy(request, policy_arn)
    return call_and_redirect(
        request,
        policy_services.set_default_policy_version,
        policy_arn=policy.arn,
        version_id=request.POST.get("version_id", ""),
        done=_versions_tab(policy),
        back=_versions_tab(policy),
    )


@require_POST
@console_action("iam:DeletePolicyVersion")
def policy_delete_version(request: HttpRequest, policy_arn: str) -> HttpResponse:
    policy = access_policy(request, policy_arn)
    return call_and_redirect(
        request,
        policy_services.delete_policy_version,
        policy_arn=policy.arn,
        version_id=request.POST.get("version_id", ""),
        done=_versions_tab(policy),
        back=_versions_tab(policy),
    )


# What the editor is for, by the action that will save it: the kind of document and its size
# quota. An editor sends its action and resource with each live check.
EDITING_ACTIONS: dict[str, tuple[engine.PolicyType, int]] = {
    "iam:CreatePolicy": (engine.PolicyType.IDENTITY, quotas.MANAGED_POLICY_SIZE),
    "iam:CreatePolicyVersion": (engine.PolicyType.IDENTITY, quotas.MANAGED_POLICY_SIZE),
    "iam:CreateRole": (engine.PolicyType.TRUST, quotas.ROLE_TRUST_POLICY_SIZE),
    "iam:UpdateAssumeRolePolicy": (engine.PolicyType.TRUST, quotas.ROLE_TRUST_POLICY_SIZE),
    "iam:PutUserPolicy": (engine.PolicyType.IDENTITY, quotas.USER_INLINE_POLICIES_SIZE),
    "iam:PutGroupPolicy": (engine.PolicyType.IDENTITY, quotas.GROUP_INLINE_POLICIES_SIZE),
    "iam:PutRolePolicy": (engine.PolicyType.IDENTITY, quotas.ROLE_INLINE_POLICIES_SIZE),
}


def _authorize_validation(request: HttpRequest, for_action: str, for_resource: str) -> None:
    """Who may see findings: anyone allowed Access Analyzer's ValidatePolicy (what IAM's
    console calls for the same purpose), or anyone allowed to save the document being edited
    (``iam:CreatePolicy``, ``iam:CreatePolicyVersion``, ``iam:PutUserPolicy``, ...) on a
    resource of their own account — so an IAMFullAccess user sees findings while typing."""
    if can(request, "access-analyzer:ValidatePolicy", "*"):
        authorize(request, "access-analyzer:ValidatePolicy", "*")
        return
    parts = naming.parse_arn(for_resource)
    own = (
        parts is not None
        and parts["service"] == "iam"
        and parts["account"] == signed_in_account(request).id
    )
    if for_action in EDITING_ACTIONS and own:
        authorize(request, for_action, for_resource)
        return
    authorize(request, "access-analyzer:ValidatePolicy", "*")


@require_POST
@console_action("access-analyzer:ValidatePolicy")
def policy_validate(request: HttpRequest) -> HttpResponse:
    """The editor's live check (htmx): findings at their lines, nothing saved."""
    for_action = request.POST.get("validate_for_action", "")
    _authorize_validation(request, for_action, request.POST.get("validate_for_resource", ""))
    if for_action in EDITING_ACTIONS:
        kind, max_size = EDITING_ACTIONS[for_action]
    else:
        kind = {
            "trust": engine.PolicyType.TRUST,
            "resource": engine.PolicyType.RESOURCE,
        }.get(request.POST.get("policy_type", ""), engine.PolicyType.IDENTITY)
        max_size = (
            quotas.ROLE_TRUST_POLICY_SIZE
            if kind == engine.PolicyType.TRUST
            else quotas.MANAGED_POLICY_SIZE
        )
    text = request.POST.get("policy_document", "")
    return render_page(
        request, "console/policies/_findings.html", {"annotated": annotate(text, kind, max_size)}
    )


__all__ = ["ManagedPolicy", "_editor_response"]

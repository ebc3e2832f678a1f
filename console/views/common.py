"""Small helpers shared by the console views."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

from audit.context import Actor
from console import queries
from console.access import can, console_actor, render_page, signed_in_account
from identity import naming
from identity.errors import IAMError

# Which form field an IAM validation message is about, by the API parameter it names.
FIELD_HINTS = {
    "userName": "user_name",
    "groupName": "group_name",
    "roleName": "role_name",
    "policyName": "policy_name",
    "path": "path",
    "accountAlias": "account_alias",
    "tags": "tags",
    "maxSessionDuration": "max_session_duration",
    "description": "description",
}


def form_error(form: forms.Form, exc: IAMError, default_field: str | None = None) -> None:
    """Put a service's IAM error next to the field it concerns (or on the form)."""
    text = f"{exc.code}: {exc.message}"
    for hint, field in FIELD_HINTS.items():
        if f"at '{hint}" in exc.message and field in form.fields:
            form.add_error(field, text)
            return
    if default_field and default_field in form.fields:
        form.add_error(default_field, text)
    else:
        form.add_error(None, text)


def actor(request: HttpRequest) -> Actor:
    return console_actor(request)


def account_of(request: HttpRequest) -> Any:
    return request.user.account  # type: ignore[union-attr]


def render_error(request: HttpRequest, exc: IAMError, back: str) -> HttpResponse:
    """A service's IAM error as a page with its code, message and a way back."""
    return render_page(
        request,
        "console/error.html",
        {"code": exc.code, "message": exc.message, "back": back},
        status=exc.http_status,
    )


def call_and_redirect(
    request: HttpRequest,
    service: Callable[..., Any],
    *,
    done: str,
    back: str,
    **arguments: Any,
) -> HttpResponse:
    """Call one service (which validates, writes and audits) for the signed-in account as the
    signed-in principal: on success redirect to ``done``; on an IAM error show it, with a link
    ``back``. The calling view has already authorized its action on the entity."""
    try:
        service(account=account_of(request), **arguments, actor=actor(request))
    except IAMError as exc:
        return render_error(request, exc, back)
    return redirect(done)


def posted_name(request: HttpRequest) -> str:
    """The ``name`` field of a one-field form (a policy ARN, a user or group name)."""
    return request.POST.get("name", "").strip()


def prefix_list(
    request: HttpRequest,
    queryset_for: Callable[..., Any],
    *,
    template: str,
    create_action: str,
    create_pattern: str,
) -> HttpResponse:
    """A list page (groups, roles) searched by name prefix (``?q=``), paginated, with a create
    button for whoever may ``create_action`` on ``create_pattern`` (``"group/*"``). The calling
    view has authorized its list action."""
    account = signed_in_account(request)
    prefix = request.GET.get("q", "").strip()
    page = queries.paginate(queryset_for(account, prefix), request.GET.get("page"))
    return render_page(
        request,
        template,
        {
            "page": page,
            "q": prefix,
            "can_create": can(request, create_action, naming.iam_arn(account.id, create_pattern)),
        },
    )

"""The audit trail of the signed-in account: searchable list and event detail.

The action is CloudTrail's ``cloudtrail:LookupEvents``, the permission AWS asks for reading
its own trail, so ``AdministratorAccess`` includes it and ``IAMFullAccess`` does not.
"""

from __future__ import annotations

import json

from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse

from audit.models import AuditEvent
from console import queries
from console.access import console_action, everything, render_page, signed_in_account
from console.forms import AuditFilterForm


@console_action("cloudtrail:LookupEvents", resource=everything)
def audit_list(request: HttpRequest) -> HttpResponse:
    account = signed_in_account(request)
    form = AuditFilterForm(request.GET or None)
    events = AuditEvent.objects.filter(account_id=account.id).defer(
        "request_parameters", "before", "after", "prev_hash", "hash", "error_message"
    )
    if form.is_bound and form.is_valid():
        data = form.cleaned_data
        if data["actor"]:
            events = events.filter(actor_arn__icontains=data["actor"])
        if data["action"]:
            events = (
                events.filter(action__iexact=data["action"])
                if ":" in data["action"]
                else (events.filter(action__icontains=data["action"]))
            )
        if data["resource"]:
            events = events.filter(resource_arn__icontains=data["resource"])
        if data["result"]:
            events = events.filter(result=data["result"])
        if data["since"]:
            events = events.filter(occurred_at__gte=data["since"])
        if data["until"]:
            events = events.filter(occurred_at__lte=data["until"])
    page = queries.paginate(events.order_by("-occurred_at", "-id"), request.GET.get("page"))
    params = request.GET.copy()
    params.pop("page", None)
    return render_page(
        request,
        "console/audit/list.html",
        {"form": form or AuditFilterForm(), "page": page, "query": params.urlencode()},
    )


@console_action("cloudtrail:LookupEvents", resource=everything)
def audit_detail(request: HttpRequest, event_id: int) -> HttpResponse:
    account = signed_in_account(request)
    event = AuditEvent.objects.filter(Q(pk=event_id) & Q(account_id=account.id)).first()
    if event is None:
        raise Http404("No such event in this account.")
    pretty = {
        name: json.dumps(getattr(event, name), indent=2, sort_keys=True)
        for name in ("request_parameters", "before", "after")
        if getattr(event, name) not in (None, {}, [])
    }
    return render_page(request, "console/audit/detail.html", {"event": event, "pretty": pretty})

"""The security dashboard (like IAM's, and a little beyond)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse

from console import queries
from console.access import console_action, everything, render_page, signed_in_account
from policies.models import ChangeEvent


def propagation_status(account_id: str) -> dict[str, Any] | None:
    """How far propagation has got (``policies.propagation.status``), narrowed for one account.

    The sequence, queue depth, heartbeat and pending count describe the service and are shown
    as they are; parked changes and the last error name entities, so an account sees only its
    own. Live, not cached: this is what an operator looks at while a worker is down.
    """
    from policies import propagation

    status_fn = getattr(propagation, "status", None)
    if status_fn is None:
        return None
    try:
        info = status_fn()
    except Exception:
        return {"error": "The propagation status could not be read."}
    if not isinstance(info, dict):
        return {"error": "The propagation status could not be read."}
    change_ids = [p["id"] for p in info.get("parked") or []]
    last_error = info.get("last_error")
    if last_error:
        change_ids.append(last_error["change_id"])
    own = set(
        ChangeEvent.objects.filter(pk__in=change_ids, account_id=account_id).values_list(
            "pk", flat=True
        )
    )
    info = dict(info)
    info["parked"] = [p for p in info.get("parked") or [] if p["id"] in own]
    info["last_error"] = last_error if last_error and last_error["change_id"] in own else None
    return info


@console_action("iam:GetAccountSummary", resource=everything)
def dashboard(request: HttpRequest) -> HttpResponse:
    account = signed_in_account(request)
    figures = queries.dashboard_figures(account)
    return render_page(
        request,
        "console/dashboard.html",
        {"account": account, "f": figures, "propagation": propagation_status(account.id)},
    )

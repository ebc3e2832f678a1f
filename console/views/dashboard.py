"""The security dashboard (like IAM's, and a little beyond)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse

from console import queries
from console.access import console_action, everything, render_page, signed_in_account


def propagation_status(account_id: str) -> dict[str, Any] | None:
    """The propagation issue's status, when it exposes one (``policies.propagation.status``)."""
    from policies import propagation

    status_fn = getattr(propagation, "status", None) or getattr(
        propagation, "propagation_status", None
    )
    if status_fn is None:
        return None
    try:
        result = status_fn()
    except Exception:
        return {"error": "The propagation status could not be read."}
    return result if isinstance(result, dict) else {"status": result}


@console_action("iam:GetAccountSummary", resource=everything)
def dashboard(request: HttpRequest) -> HttpResponse:
    account = signed_in_account(request)
    figures = queries.dashboard_figures(account)
    return render_page(
        request,
        "console/dashboard.html",
        {"account": account, "f": figures, "propagation": propagation_status(account.id)},
    )

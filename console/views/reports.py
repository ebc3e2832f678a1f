"""The credential report page (progress polled with htmx) and the CSV download."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from console import reports
from console.access import can, console_action, everything, render_page, signed_in_account
from console.views.common import actor


def _context(request: HttpRequest) -> dict:
    account = signed_in_account(request)
    report = reports.report_progress(account)
    return {
        "report": report,
        "percent": int(100 * report.rows_done / report.rows_total)
        if report and report.rows_total
        else 0,
        "can_generate": can(request, "iam:GenerateCredentialReport", "*"),
    }


@console_action("iam:GetCredentialReport", resource=everything)
def credential_report(request: HttpRequest) -> HttpResponse:
    return render_page(request, "console/credential_report.html", _context(request))


@console_action("iam:GetCredentialReport", resource=everything)
def credential_report_status(request: HttpRequest) -> HttpResponse:
    """The progress fragment the page polls while a report is being generated."""
    return render_page(request, "console/_report_status.html", _context(request))


@require_POST
@console_action("iam:GenerateCredentialReport", resource=everything)
def credential_report_generate(request: HttpRequest) -> HttpResponse:
    reports.generate_credential_report(signed_in_account(request), actor=actor(request))
    return redirect("console:credential_report")


@console_action("iam:GetCredentialReport", resource=everything)
def credential_report_download(request: HttpRequest) -> HttpResponse:
    account = signed_in_account(request)
    try:
        report = reports.get_credential_report(account)
    except reports.ClientError as exc:
        return render_page(
            request,
            "console/error.html",
            {"code": exc.code, "message": exc.message, "back": "/credential-report/"},
            status=exc.http_status,
        )
    response = HttpResponse(report.content, content_type="text/csv; charset=utf-8")
    stamp = report.generated_time.strftime("%Y%m%dT%H%M%SZ")
    response["Content-Disposition"] = (
        f'attachment; filename="credential-report-{account.id}-{stamp}.csv"'
    )
    return response

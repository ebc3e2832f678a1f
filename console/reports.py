"""The credential report, as IAM generates it.

IAM User Guide, "Getting credential reports for your AWS account":
https://docs.aws.amazon.com/IAM/latest/UserGuide/id_credentials_getting-report.html
— the columns below in that order, the root user first as ``<root_account>``, ``N/A`` where a
credential does not exist, ``no_information`` where it exists but was never used,
``not_supported`` for what root has no such notion of, and a new report at most every four
hours (otherwise the cached one is returned).

``generate_credential_report(account)`` and ``get_credential_report(account)`` are what the
console and the Query API's GenerateCredentialReport / GetCredentialReport call.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from audit.context import Actor
from audit.services import record_event
from console.models import CredentialReport
from identity.errors import ClientError
from identity.models import AccessKey, Account, MFADevice, PasswordPolicy, User

COLUMNS = (
    "user",
    "arn",
    "user_creation_time",
    "password_enabled",
    "password_last_used",
    "password_last_changed",
    "password_next_rotation",
    "mfa_active",
    "access_key_1_active",
    "access_key_1_last_rotated",
    "access_key_1_last_used_date",
    "access_key_1_last_used_region",
    "access_key_1_last_used_service",
    "access_key_2_active",
    "access_key_2_last_rotated",
    "access_key_2_last_used_date",
    "access_key_2_last_used_region",
    "access_key_2_last_used_service",
    "cert_1_active",
    "cert_1_last_rotated",
    "cert_2_active",
    "cert_2_last_rotated",
)
NA = "N/A"
NO_INFORMATION = "no_information"
NOT_SUPPORTED = "not_supported"
CACHE_FOR = timedelta(hours=4)
# A generation that has not finished in this long is presumed lost and may be restarted.
STUCK_AFTER = timedelta(minutes=10)
CHUNK = 2000


class ReportNotPresent(ClientError):
    code = "ReportNotPresent"
    http_status = 410


class ReportExpired(ClientError):
    code = "ReportExpired"
    http_status = 410


class ReportInProgress(ClientError):
    code = "ReportInProgress"
    http_status = 404


@dataclass(frozen=True)
class GeneratedReport:
    content: bytes
    generated_time: datetime
    report_format: str = "text/csv"


def _time(value: datetime | None, missing: str = NA) -> str:
    if value is None:
        return missing
    return value.astimezone(UTC).replace(microsecond=0).isoformat()


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _key_columns(key: AccessKey | None) -> list[str]:
    if key is None:
        return ["false", NA, NA, NA, NA]
    used = key.last_used_at is not None
    return [
        _bool(key.status == AccessKey.Status.ACTIVE),
        _time(key.created_at),
        _time(key.last_used_at),
        (key.last_used_region or NA) if used else NA,
        (key.last_used_service or NA) if used else NA,
    ]


def _password_next_rotation(user: User, max_age: int | None) -> str:
    if not user.has_login_profile or max_age is None:
        return NA
    changed = user.password_last_changed or user.password_created_at
    return _time(changed + timedelta(days=max_age)) if changed else NA


def _rows(account: Account, users: list[User], max_age: int | None) -> list[list[str]]:
    ids = [u.pk for u in users]
    keys: dict[int, list[AccessKey]] = defaultdict(list)
    for key in AccessKey.objects.filter(user_id__in=ids).order_by("created_at", "access_key_id"):
        keys[key.user_id].append(key)
    with_mfa = set(
        MFADevice.objects.filter(user_id__in=ids, enabled_at__isnull=False).values_list(
            "user_id", flat=True
        )
    )
    rows = []
    for user in users:
        user_keys = keys.get(user.pk, [])
        key1 = user_keys[0] if user_keys else None
        key2 = user_keys[1] if len(user_keys) > 1 else None
        if user.is_root:
            password = [
                NOT_SUPPORTED,
                _time(user.password_last_used, NO_INFORMATION),
                NOT_SUPPORTED,
                NOT_SUPPORTED,
            ]
            created = account.created_at
        else:
            has_password = user.has_login_profile
            password = [
                _bool(has_password),
                _time(user.password_last_used, NO_INFORMATION) if has_password else NA,
                _time(user.password_last_changed or user.password_created_at)
                if has_password
                else NA,
                _password_next_rotation(user, max_age),
            ]
            created = user.created_at
        rows.append(
            [
                user.name if not user.is_root else "<root_account>",
                user.arn,
                _time(created),
                *password,
                _bool(user.pk in with_mfa),
                *_key_columns(key1),
                *_key_columns(key2),
                *("false", NA, "false", NA),
            ]
        )
    return rows


def build_credential_report(*, account_id: str, generation: int) -> bool:
    """Generate the CSV for one generation; idempotent: a stale or finished generation is a
    no-op (returns False). Progress is saved after each chunk so the page can show it."""
    claimed = CredentialReport.objects.filter(
        account_id=account_id, generation=generation, state=CredentialReport.State.STARTED
    ).update(state=CredentialReport.State.INPROGRESS)
    if not claimed:
        return False
    account = Account.objects.get(pk=account_id)
    policy = PasswordPolicy.objects.filter(account=account).first()
    max_age = policy.max_password_age if policy else None
    users = User.objects.filter(account=account)
    total = users.count()
    CredentialReport.objects.filter(account_id=account_id, generation=generation).update(
        rows_total=total
    )
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    done = 0
    last_key: tuple[int, int] = (-1, 0)  # (root first, then users by id)
    ordered = users.order_by("-is_root", "pk")
    for root_first in (True, False):
        last_pk = 0
        while True:
            chunk = list(ordered.filter(is_root=root_first, pk__gt=last_pk)[:CHUNK])
            if not chunk:
                break
            writer.writerows(_rows(account, chunk, max_age))
            last_pk = chunk[-1].pk
            done += len(chunk)
            CredentialReport.objects.filter(account_id=account_id, generation=generation).update(
                rows_done=done
            )
    del last_key
    CredentialReport.objects.filter(
        account_id=account_id, generation=generation, state=CredentialReport.State.INPROGRESS
    ).update(
        state=CredentialReport.State.COMPLETE,
        content=out.getvalue(),
        generated_at=timezone.now(),
        rows_done=F("rows_total"),
    )
    return True


def generate_credential_report(account: Account, *, actor: Actor | None = None) -> dict[str, Any]:
    """``iam:GenerateCredentialReport``: start a generation unless a report younger than four
    hours exists or one is under way. Returns ``{"State": ..., "Description": ...}``."""
    now = timezone.now()
    with transaction.atomic():
        report = CredentialReport.objects.select_for_update().filter(account=account).first()
        if report is not None:
            fresh = report.generated_at is not None and now - report.generated_at < CACHE_FOR
            running = report.state != CredentialReport.State.COMPLETE and (
                now - report.started_at < STUCK_AFTER
            )
            if report.state == CredentialReport.State.COMPLETE and fresh:
                return {"State": "COMPLETE", "Description": ""}
            if running:
                return {"State": "INPROGRESS", "Description": "Report generation in progress."}
        if report is None:
            report = CredentialReport.objects.create(account=account)
        else:
            report.generation += 1
            report.state = CredentialReport.State.STARTED
            report.started_at = now
            report.rows_done = 0
            report.rows_total = 0
            report.save(
                update_fields=["generation", "state", "started_at", "rows_done", "rows_total"]
            )
        if actor is not None:
            record_event(
                actor=actor,
                action="iam:GenerateCredentialReport",
                resource_arn="*",
                category="api",
                parameters={},
            )
        generation = report.generation
        transaction.on_commit(lambda: _enqueue(account.id, generation))
    return {
        "State": "STARTED",
        "Description": "No report exists. Starting a new report generation task",
    }


def _enqueue(account_id: str, generation: int) -> None:
    from console import tasks

    try:
        tasks.generate_credential_report.apply_async(args=[account_id, generation], retry=False)
    except Exception:
        # No broker: generate in-process so the report still appears.
        build_credential_report(account_id=account_id, generation=generation)


def report_progress(account: Account) -> CredentialReport | None:
    return CredentialReport.objects.filter(account=account).defer("content").first()


def get_credential_report(account: Account) -> GeneratedReport:
    """``iam:GetCredentialReport``: the latest complete report, or IAM's errors."""
    report = CredentialReport.objects.filter(account=account).first()
    if report is None:
        raise ReportNotPresent(
            "Credential report not present. Please run GenerateCredentialReport."
        )
    if report.state != CredentialReport.State.COMPLETE or report.generated_at is None:
        raise ReportInProgress("Credential report is still being generated.")
    if timezone.now() - report.generated_at >= CACHE_FOR:
        raise ReportExpired("Credential report expired. Please run GenerateCredentialReport.")
    return GeneratedReport(
        content=report.content.encode("utf-8"), generated_time=report.generated_at
    )

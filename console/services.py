"""Account-wide console settings that no IAM action covers: the MFA rule and session timeouts.

IAM has no API for these (AWS sets them per IAM Identity Center instance), so Portcullis names
the action ``portcullis:UpdateAccountSettings``; it is authorized and audited like any other.
"""

from __future__ import annotations

from django.db import transaction

from audit.context import Actor
from audit.services import record_event
from identity.errors import ValidationError
from identity.models import Account
from policies.outbox import Kind, record_change

MAX_IDLE_S = 12 * 60 * 60
MAX_LIFETIME_S = 12 * 60 * 60  # settings.SESSION_COOKIE_AGE is the ceiling


def _snapshot(account: Account) -> dict[str, object]:
    return {
        "RequireMFAForConsole": account.require_mfa_for_console,
        "SessionIdleTimeoutSeconds": account.session_idle_timeout_s,
        "SessionAbsoluteLifetimeSeconds": account.session_absolute_lifetime_s,
    }


def update_account_settings(
    *,
    account: Account,
    require_mfa_for_console: bool,
    session_idle_timeout_s: int,
    session_absolute_lifetime_s: int,
    actor: Actor,
) -> Account:
    """``portcullis:UpdateAccountSettings``: the console's MFA rule and session limits."""
    if not 60 <= session_idle_timeout_s <= MAX_IDLE_S:
        raise ValidationError("The idle timeout must be between 1 minute and 12 hours.")
    if not 3600 <= session_absolute_lifetime_s <= MAX_LIFETIME_S:
        raise ValidationError("The session lifetime must be between 1 and 12 hours.")
    if session_idle_timeout_s > session_absolute_lifetime_s:
        raise ValidationError("The idle timeout cannot be longer than the session lifetime.")
    with transaction.atomic():
        locked = Account.objects.select_for_update().get(pk=account.pk)
        before = _snapshot(locked)
        locked.require_mfa_for_console = require_mfa_for_console
        locked.session_idle_timeout_s = session_idle_timeout_s
        locked.session_absolute_lifetime_s = session_absolute_lifetime_s
        locked.save(
            update_fields=[
                "require_mfa_for_console",
                "session_idle_timeout_s",
                "session_absolute_lifetime_s",
            ]
        )
        record_change(kind=Kind.ACCOUNT, account_id=locked.id, entity_id=locked.id)
        record_event(
            actor=actor,
            action="portcullis:UpdateAccountSettings",
            resource_arn=locked.root_arn,
            parameters=_snapshot(locked),
            before=before,
            after=_snapshot(locked),
        )
    return locked

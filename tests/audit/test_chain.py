"""The audit trail is append-only and tamper-evident, and the verifier names the first broken
link."""

from __future__ import annotations

import importlib
import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction

from audit.models import AuditEvent
from identity import services


def verify() -> tuple[int, str, str]:
    out, err = StringIO(), StringIO()
    try:
        call_command("verify_audit_chain", stdout=out, stderr=err)
        code = 0
    except SystemExit as exc:
        code = int(exc.code)
    return code, out.getvalue(), err.getvalue()


append_only = importlib.import_module("audit.migrations.0002_append_only_trigger")


def tamper(sql: str, params: list[object]) -> None:
    """Rewrite history behind the application's back, as an attacker with database access
    would: that first means disabling the append-only triggers."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER audit_event_append_only")
        else:
            for statement in append_only.SQLITE_BACKWARD:
                cursor.execute(statement)
        cursor.execute(sql, params)
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE audit_auditevent ENABLE TRIGGER audit_event_append_only")
        else:
            for statement in append_only.SQLITE_FORWARD:
                cursor.execute(statement)


def three_changes(account, actor) -> list[AuditEvent]:
    for name in ("alice", "bob", "carol"):
        services.create_user(account=account, user_name=name, actor=actor)
    return list(AuditEvent.objects.order_by("id"))


def test_it_reports_an_intact_chain(account, root_actor):
    events = three_changes(account, root_actor)

    code, out, _ = verify()

    assert code == 0
    assert out.strip() == f"OK: {len(events)} audit events checked, the chain is intact."


def test_it_names_the_first_edited_event(account, root_actor):
    events = three_changes(account, root_actor)
    target = next(e for e in events if e.resource_arn.endswith("user/bob"))
    tamper(
        "UPDATE audit_auditevent SET request_parameters = %s WHERE id = %s",
        [json.dumps({"UserName": "mallory"}), target.id],
    )

    code, _, err = verify()

    assert code == 1
    assert f"audit event {target.id} (iam:CreateUser" in err
    assert f"{events.index(target)} events before it are intact" in err


def test_it_detects_a_deleted_event(account, root_actor):
    events = three_changes(account, root_actor)
    removed = events[1]
    tamper("DELETE FROM audit_auditevent WHERE id = %s", [removed.id])

    code, _, err = verify()

    assert code == 1
    assert f"audit event {events[2].id} " in err


def test_it_detects_a_rehashed_event_through_the_next_link(account, root_actor):
    """Recomputing an edited event's own hash is not enough: the next event names the old one."""
    from audit.services import event_hash

    events = three_changes(account, root_actor)
    target = events[1]
    target.actor_arn = "arn:aws:iam::111111111111:user/someone-else"
    new_hash = event_hash(target.prev_hash, target)
    tamper(
        "UPDATE audit_auditevent SET actor_arn = %s, hash = %s WHERE id = %s",
        [target.actor_arn, new_hash, target.id],
    )

    code, _, err = verify()

    assert code == 1
    assert f"audit event {events[2].id} " in err


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE audit_auditevent SET action = 'iam:Nothing' WHERE id = %s",
        "DELETE FROM audit_auditevent WHERE id = %s",
    ],
)
def test_it_refuses_updates_and_deletes_at_the_database(account, root_actor, sql):
    """The PostgreSQL trigger (the suite's database) stops even raw SQL from the app role."""
    event = three_changes(account, root_actor)[0]

    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql, [event.id])

    assert AuditEvent.objects.get(pk=event.id).action == event.action


def test_it_redacts_secrets_in_request_parameters_at_any_depth(account, root_actor):
    from audit.services import record_event

    event = record_event(
        actor=root_actor,
        action="iam:CreateLoginProfile",
        parameters={
            "UserName": "alice",
            "Password": "Correct-horse-9",
            "Nested": {"SecretAccessKey": "abc", "AuthenticationCode1": "123456"},
        },
    )

    stored = AuditEvent.objects.get(pk=event.pk).request_parameters
    assert stored == {
        "UserName": "alice",
        "Password": "***",
        "Nested": {"SecretAccessKey": "***", "AuthenticationCode1": "***"},
    }
    assert verify()[0] == 0

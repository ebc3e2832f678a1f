"""Recording audit events, inside the caller's transaction."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from audit.context import Actor
from audit.models import AuditChainHead, AuditEvent

GENESIS_HASH = "0" * 64
REDACTED = "***"

# Request parameters that carry secrets. Matched case-insensitively on the parameter name.
_SECRET_PARAMETERS = {
    "password",
    "newpassword",
    "oldpassword",
    "secretaccesskey",
    "sessiontoken",
    "authenticationcode1",
    "authenticationcode2",
    "tokencode",
    "code",
    "recoverycode",
    "base32stringseed",
    "qrcodepng",
    "seed",
    "webidentitytoken",
    "samlassertion",
    "privatekey",
    "secret",
}


def redact(parameters: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of request parameters with every secret replaced, recursively."""
    clean: dict[str, Any] = {}
    for key, value in parameters.items():
        if key.replace("_", "").replace("-", "").lower() in _SECRET_PARAMETERS:
            clean[key] = REDACTED
        elif isinstance(value, Mapping):
            clean[key] = redact(value)
        else:
            clean[key] = value
    return clean


def _canonical(value: Any) -> str:
    def default(obj: Any) -> str:
        if isinstance(obj, datetime):
            return obj.isoformat()
        return str(obj)

    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=default)


def event_hash(prev_hash: str, event: AuditEvent) -> str:
    """The chained hash of an event: SHA-256 over the previous hash and the event's content."""
    # occurred_at is stored with microseconds on both databases, so it round-trips exactly.
    content = {
        "occurred_at": event.occurred_at.isoformat(),
        "category": event.category,
        "account_id": event.account_id,
        "actor_arn": event.actor_arn,
        "actor_kind": event.actor_kind,
        "access_key_id": event.access_key_id,
        "action": event.action,
        "resource_arn": event.resource_arn,
        "request_parameters": event.request_parameters,
        "before": event.before,
        "after": event.after,
        "result": event.result,
        "error_code": event.error_code,
        "error_message": event.error_message,
        "source_ip": event.source_ip,
        "user_agent": event.user_agent,
        "request_id": event.request_id,
    }
    return hashlib.sha256((prev_hash + _canonical(content)).encode("utf-8")).hexdigest()


def record_event(
    *,
    actor: Actor,
    action: str,
    resource_arn: str = "",
    category: str = "change",
    parameters: Mapping[str, Any] | None = None,
    before: Any = None,
    after: Any = None,
    error_code: str = "",
    error_message: str = "",
    account_id: str | None = None,
) -> AuditEvent:
    """Append one event to the trail, in the current transaction (or its own if none).

    Call it from inside the service's ``transaction.atomic()`` block, after the change: then
    the change and its record commit or roll back together.
    """
    with transaction.atomic():
        head, _ = AuditChainHead.objects.select_for_update().get_or_create(
            pk=1, defaults={"last_hash": GENESIS_HASH}
        )
        event = AuditEvent(
            occurred_at=timezone.now(),
            category=category,
            account_id=actor.account_id if account_id is None else account_id,
            actor_arn=actor.arn,
            actor_kind=actor.kind,
            access_key_id=actor.access_key_id,
            action=action,
            resource_arn=resource_arn,
            request_parameters=json.loads(_canonical(redact(parameters or {}))),
            before=json.loads(_canonical(before)) if before is not None else None,
            after=json.loads(_canonical(after)) if after is not None else None,
            result=AuditEvent.Result.FAILURE if error_code else AuditEvent.Result.SUCCESS,
            error_code=error_code,
            error_message=error_message[:2000],
            source_ip=actor.meta.source_ip,
            user_agent=actor.meta.user_agent[:512],
            request_id=actor.meta.request_id,
            prev_hash=head.last_hash,
            hash="",
        )
        # The order is fixed by the chain itself (each event names its predecessor's hash),
        # so the database id is not hashed and the row is written once, never updated.
        event.hash = event_hash(head.last_hash, event)
        event.save(force_insert=True)
        head.last_hash = event.hash
        head.last_event_id = event.id
        head.save(update_fields=["last_hash", "last_event_id"])
        return event


def verify_chain(batch_size: int = 5000) -> tuple[int, AuditEvent | None]:
    """Walk the trail in order. Returns (events checked, first broken event or None)."""
    prev = GENESIS_HASH
    checked = 0
    last_id = 0
    while True:
        batch = list(AuditEvent.objects.filter(id__gt=last_id).order_by("id")[:batch_size])
        if not batch:
            return checked, None
        for event in batch:
            if event.prev_hash != prev or event_hash(prev, event) != event.hash:
                return checked, event
            prev = event.hash
            checked += 1
            last_id = event.id

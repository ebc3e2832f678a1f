"""Recording changes for propagation: one outbox row per change, in the change's transaction.

Services call ``record_change`` inside their ``transaction.atomic()`` block. After commit, the
change is marked pending in the compiled-policy store (so decisions stop trusting entries it
touches) and its propagation task is queued (``transaction.on_commit``); if Redis or the broker
is down at that moment the row stays pending and the periodic sweep marks and propagates it, so
a committed change is never lost and a broker outage never turns a committed change into an
error.

The change sequence (the row id) is taken in **commit order**: ``record_change`` first locks
the audit chain head, the row every audited transaction locks anyway (``audit.services``), and
holds it to commit. So when change ``n`` is visible, every change below ``n`` is too, and a
compiled set stamped ``n`` reflects all of them (``policies.store``).
"""

from __future__ import annotations

import logging

from django.db import transaction

from audit.models import AuditChainHead
from audit.services import GENESIS_HASH
from policies.models import ChangeEvent

logger = logging.getLogger(__name__)

Kind = ChangeEvent.Kind

# Changes that take access away propagate first, on their own queue.
PRIORITY_KINDS = {Kind.ACCESS_KEY, Kind.SESSION}


def record_change(
    *, kind: str, account_id: str, entity_id: str, priority: bool | None = None
) -> ChangeEvent:
    """Append a change to the outbox and schedule its propagation after commit."""
    with transaction.atomic():
        # Same lock, same order as audit.services.record_event: no new deadlock, and sequence
        # numbers are handed out one committed transaction at a time.
        AuditChainHead.objects.select_for_update().get_or_create(
            pk=1, defaults={"last_hash": GENESIS_HASH}
        )
        event = ChangeEvent.objects.create(
            kind=kind,
            account_id=account_id,
            entity_id=entity_id,
            priority=kind in PRIORITY_KINDS if priority is None else priority,
        )
    transaction.on_commit(lambda: _after_commit(event))
    return event


def marked_entity(event: ChangeEvent) -> str:
    """The entity whose marker a change sets (compiled sets list what they depend on)."""
    return event.account_id if event.kind == Kind.ACCOUNT else event.entity_id


def _after_commit(event: ChangeEvent) -> None:
    # Imported here: tasks and the store import modules that import this one.
    from policies import store, tasks

    if store.enabled():
        try:
            store.mark_pending(entity_ids=[marked_entity(event)], seq=event.pk)
        except Exception:
            logger.warning("could not mark change %s pending; the sweep will", event.pk)
    try:
        tasks.enqueue_propagation(change_id=event.pk, priority=event.priority)
    except Exception:
        # The change is committed and its outbox row pending; the sweep will propagate it.
        logger.warning("could not queue propagation of change %s; the sweep will", event.pk)

"""Recording changes for propagation: one outbox row per change, in the change's transaction.

Services call ``record_change`` inside their ``transaction.atomic()`` block. After commit, the
propagation task is queued (``transaction.on_commit``); if the broker is down at that moment
the row stays pending and the periodic sweep picks it up, so a committed change is never lost
and a broker outage never turns a committed change into an error.
"""

from __future__ import annotations

import logging

from django.db import transaction

from policies.models import ChangeEvent

logger = logging.getLogger(__name__)

Kind = ChangeEvent.Kind

# Changes that take access away propagate first, on their own queue.
PRIORITY_KINDS = {Kind.ACCESS_KEY, Kind.SESSION}


def record_change(
    *, kind: str, account_id: str, entity_id: str, priority: bool | None = None
) -> ChangeEvent:
    """Append a change to the outbox and schedule its propagation after commit."""
    event = ChangeEvent.objects.create(
        kind=kind,
        account_id=account_id,
        entity_id=entity_id,
        priority=kind in PRIORITY_KINDS if priority is None else priority,
    )
    transaction.on_commit(lambda: _enqueue(event.pk, event.priority))
    return event


def _enqueue(change_id: int, priority: bool) -> None:
    # Imported here: tasks import services that import this module.
    from policies import tasks

    try:
        tasks.enqueue_propagation(change_id=change_id, priority=priority)
    except Exception:
        # The change is committed and its outbox row pending; the sweep will propagate it.
        logger.warning("could not queue propagation of change %s; the sweep will", change_id)

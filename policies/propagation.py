"""Propagation of committed changes to the compiled-policy store (the propagation issue).

Until that issue lands, a change is simply marked processed: decisions are computed from the
database (``policies.access``), which is always current.
"""

from __future__ import annotations

from django.utils import timezone

from policies.models import ChangeEvent


def propagate_change(*, change_id: int) -> None:
    ChangeEvent.objects.filter(pk=change_id, processed_at__isnull=True).update(
        processed_at=timezone.now()
    )

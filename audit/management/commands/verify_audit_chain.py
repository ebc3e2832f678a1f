"""Verify the audit trail's hash chain: ``manage.py verify_audit_chain``.

Prints how many events were checked, or names the first event whose link is broken (an
edited, removed or reordered event breaks its own link or the next one) and exits 1.
"""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from audit.services import verify_chain


class Command(BaseCommand):
    help = "Verify the audit trail's hash chain; exit 1 and name the first broken link."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch-size", type=int, default=5000)

    def handle(self, *args: Any, **options: Any) -> None:
        checked, broken = verify_chain(batch_size=options["batch_size"])
        if broken is None:
            self.stdout.write(f"OK: {checked} audit events checked, the chain is intact.")
            return
        self.stderr.write(
            f"BROKEN: audit event {broken.id} ({broken.action} at "
            f"{broken.occurred_at.isoformat()}) does not match its hash chain; "
            f"{checked} events before it are intact."
        )
        sys.exit(1)

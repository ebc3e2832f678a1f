"""``manage.py propagation_rebuild``: recompile and republish every principal now.

For after a Redis loss or a restore. ``--flush`` first deletes this installation's entries
(decisions are computed from the database until each principal is published again);
``--account`` limits the rebuild to one account.
"""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from policies import propagation, store


class Command(BaseCommand):
    help = "Recompile every principal's policy set from the database and publish it to Redis."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--account", help="only this account's principals")
        parser.add_argument("--flush", action="store_true", help="delete the stored entries first")

    def handle(self, *args: Any, **options: Any) -> None:
        if not store.enabled():
            raise CommandError(
                "No REDIS_URL: there is no compiled-policy store; decisions read the database."
            )
        started = time.monotonic()
        if options["flush"]:
            removed = store.flush_namespace()
            self.stdout.write(f"flushed {removed} keys")
        written, failures = propagation.rebuild(account_id=options["account"])
        elapsed = time.monotonic() - started
        self.stdout.write(f"published {written} entries in {elapsed:.2f} s")
        for key, error in sorted(failures.items()):
            self.stderr.write(f"not compiled: {key}: {error}")
        if failures:
            raise CommandError(f"{len(failures)} principal(s) did not compile")

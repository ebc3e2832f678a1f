"""``manage.py propagation_status``: how far propagation has got (``--json`` for scripts)."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from policies import propagation


class Command(BaseCommand):
    help = (
        "Show propagation: current change sequence, oldest unpropagated change, queue depth, "
        "worker heartbeat, parked changes and the last error."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="print one JSON object")

    def handle(self, *args: Any, **options: Any) -> None:
        info = propagation.status()
        if options["json"]:
            self.stdout.write(json.dumps(info, default=str))
        else:
            self.stdout.write(propagation.as_text(info))

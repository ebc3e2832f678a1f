from __future__ import annotations

import atexit
import signal
import subprocess
import sys
from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    help = (
        "Run Portcullis in one command: migrate, bootstrap the first account, start a Celery "
        "worker (with beat) and the web console. For the embedded default and development; "
        "production runs gunicorn, workers and beat as separate processes (see README)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--addr", default="127.0.0.1:8000")

    def handle(self, *args: Any, **options: Any) -> None:
        addr = options["addr"]
        call_command("migrate", interactive=False, verbosity=0)
        call_command("bootstrap", url=f"http://{addr}/")
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "console",
                "worker",
                "--beat",
                "--queues",
                "priority,celery",
                "--concurrency",
                "1",
                "--loglevel",
                "WARNING",
            ]
        )
        atexit.register(worker.terminate)
        # atexit runs on Ctrl-C but not on a plain SIGTERM (a process manager, `timeout`):
        # turn SIGTERM into a normal exit so the worker is stopped with the console.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        self.stdout.write(f"Celery worker started (pid {worker.pid}).")
        call_command("runserver", addr, use_reloader=False)

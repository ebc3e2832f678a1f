"""``manage.py create_account --account-id 123456789012 --email ops@example.com``."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from identity.bootstrap import create_account
from identity.errors import IAMError


class Command(BaseCommand):
    help = (
        "Create an account with a chosen 12-digit id and its root user (e.g. 123456789012 for "
        "a test suite that points at Portcullis as its IAM). Prints the root password once."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--account-id", required=True)
        parser.add_argument("--email", required=True, help="the root user's email")
        parser.add_argument("--alias", default=None)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            result = create_account(
                root_email=options["email"],
                account_id=options["account_id"],
                alias=options["alias"],
            )
        except IAMError as error:
            raise CommandError(error.message) from error
        self.stdout.write(f"Created account {result.account.id} (root {result.root.email}).")
        if result.password:
            self.stdout.write(f"Root password (shown once): {result.password}")

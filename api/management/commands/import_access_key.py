"""``manage.py import_access_key``: an access key with a chosen id and secret for a user."""

from __future__ import annotations

import os
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from api.testdouble import import_access_key
from identity.errors import IAMError


class Command(BaseCommand):
    help = (
        "Import an access key with a given id and secret for a user (created if absent). The "
        "secret may come from the PORTCULLIS_IMPORT_SECRET environment variable instead of the "
        "command line, which other users of the machine can read."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--account-id", required=True)
        parser.add_argument("--user-name", required=True)
        parser.add_argument("--access-key-id", required=True)
        parser.add_argument("--secret-access-key", default=None)

    def handle(self, *args: Any, **options: Any) -> None:
        secret = options["secret_access_key"] or os.environ.get("PORTCULLIS_IMPORT_SECRET")
        if not secret:
            raise CommandError("Give --secret-access-key or set PORTCULLIS_IMPORT_SECRET.")
        try:
            key = import_access_key(
                account_id=options["account_id"],
                user_name=options["user_name"],
                access_key_id=options["access_key_id"],
                secret_access_key=secret,
            )
        except IAMError as error:
            raise CommandError(error.message) from error
        self.stdout.write(f"Imported {key.access_key_id} for {key.user.arn}.")

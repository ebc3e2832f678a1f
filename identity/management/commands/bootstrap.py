from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from identity.bootstrap import bootstrap
from policies.builtin import install_builtin_policies


class Command(BaseCommand):
    help = (
        "Create the first account and its root user, idempotently. The root password is "
        "generated and printed once; it is stored only as an Argon2id hash."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--email", default="root@portcullis.localhost")
        parser.add_argument("--account-id", default=None, help="12 digits; random if omitted")
        parser.add_argument("--alias", default=None)
        parser.add_argument("--url", default="http://127.0.0.1:8000/")

    def handle(self, *args: Any, **options: Any) -> None:
        install_builtin_policies()
        result = bootstrap(
            root_email=options["email"], account_id=options["account_id"], alias=options["alias"]
        )
        url = options["url"]
        if result.created:
            self.stdout.write(
                "\nPortcullis is ready. Sign in as the root user:\n"
                f"  URL:      {url}signin/root/\n"
                f"  Email:    {result.root.email}\n"
                f"  Password: {result.password}\n"
                f"  Account:  {result.account.id}\n"
                "This password is shown only now. Sign in, enrol an MFA device, and create an\n"
                "administrator user for daily work, as AWS advises for its root user.\n"
            )
        else:
            self.stdout.write(
                f"\nAccount {result.account.id} already exists. Sign in at {url}signin/ "
                f"(root user: {url}signin/root/ as {result.root.email}).\n"
            )

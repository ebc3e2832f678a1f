"""Run against a throwaway cluster in a child process (``python -m tests.faults.app_script``).

``setup``: migrate-free cast: account 111111111111, the application user ``app`` (allowed
``portcullis:Authorize`` on the account's users) with an access key, and ``alice`` (allowed
``s3:GetObject``); prints them as one JSON line.
``write N``: creates users ``w0000``… one by one through ``identity.services.create_user`` and
prints ``ACK <name>`` after each commit returned, until N or the first error.
"""

from __future__ import annotations

import json
import os
import sys

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
django.setup()

from audit.context import Actor  # noqa: E402
from identity import services  # noqa: E402
from identity.bootstrap import create_account  # noqa: E402
from identity.models import User  # noqa: E402
from policies import services as policy_services  # noqa: E402


def _document(action: str, resource: str) -> str:
    statement = {"Effect": "Allow", "Action": action, "Resource": resource}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def root_actor() -> Actor:
    root = User.objects.get(account_id="111111111111", is_root=True)
    return Actor(arn=root.arn, account_id=root.account_id, kind="root", user=root)


def setup() -> None:
    account = create_account(
        root_email="root@alice.example", account_id="111111111111", password="Root-password-1!"
    ).account
    actor = root_actor()
    services.create_user(account=account, user_name="app", actor=actor)
    policy_services.put_user_policy(
        account=account,
        user_name="app",
        policy_name="ask",
        policy_document=_document("portcullis:Authorize", "arn:aws:iam::111111111111:user/*"),
        actor=actor,
    )
    key = services.create_access_key(account=account, user_name="app", actor=actor)
    services.create_user(account=account, user_name="alice", actor=actor)
    policy_services.put_user_policy(
        account=account,
        user_name="alice",
        policy_name="read",
        policy_document=_document("s3:GetObject", "*"),
        actor=actor,
    )
    print(
        json.dumps(
            {"access_key_id": key.access_key.access_key_id, "secret": key.secret_access_key}
        ),
        flush=True,
    )


def write(count: int) -> None:
    actor = root_actor()
    account = actor.user.account
    for i in range(count):
        name = f"w{i:04d}"
        services.create_user(account=account, user_name=name, actor=actor)
        print(f"ACK {name}", flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "setup":
        setup()
    else:
        write(int(sys.argv[2]))

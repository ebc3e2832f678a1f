"""No TOTP seed, recovery code or password in clear in the database or in the logs."""

from __future__ import annotations

import logging
import re

from django.db import connection
from django.test import Client

from identity import mfa
from tests.conftest import actor_for
from tests.signin.conftest import ALICE_PASSWORD, code_at


def dump_database() -> str:
    """Every row of every table, as text (what a stolen backup would show)."""
    chunks: list[str] = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f'SELECT * FROM "{table}"')  # noqa: S608 - names from introspection
            chunks.extend(repr(row) for row in cursor.fetchall())
    return "\n".join(chunks)


def test_it_keeps_seeds_recovery_codes_and_passwords_out_of_the_database_and_logs(
    self_managing_alice, caplog
):
    alice = self_managing_alice
    caplog.set_level(logging.DEBUG)
    client = Client()
    client.post(
        "/signin/", {"account": "111111111111", "user_name": "alice", "password": ALICE_PASSWORD}
    )
    assert client.get("/my/mfa/enrol/").status_code == 200
    response = client.post("/my/mfa/enrol/", {"name": "alice-phone"})
    seed = re.search(r'id="mfa-secret">([A-Z2-7]+)<', response.content.decode()).group(1)
    client.post("/my/mfa/enrol/", {"code1": code_at(seed, -1), "code2": code_at(seed, 0)})
    assert mfa.has_mfa(alice)
    codes = mfa.generate_recovery_codes(user=alice, actor=actor_for(alice))
    client.post(
        "/signin/", {"account": "111111111111", "user_name": "alice", "password": "Typo-password-1"}
    )

    dump = dump_database()
    logs = caplog.text
    for secret in [seed, seed.lower(), ALICE_PASSWORD, "Typo-password-1", *codes]:
        assert secret not in dump
        assert secret not in logs
    for code in codes:
        assert code.replace("-", "") not in dump

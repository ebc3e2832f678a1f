"""Faults of PostgreSQL itself, on a throwaway cluster the test starts (initdb/pg_ctl on a free
loopback port) with Portcullis running against it in child processes:

- the database stops while Redis has no entry for the principal asked about: the decision API
  answers 5xx with an explicit deny, never an allow (principals Redis does hold still decide);
- the cluster is killed (-9, postmaster and backends) in the middle of 200 writes: after
  crash recovery every write that was acknowledged is there, with its audit event and its
  outbox row.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from django.conf import settings

from tests.faults.pgcluster import Cluster, free_port

ROOT = Path(__file__).resolve().parents[2]
ALICE = "arn:aws:iam::111111111111:user/alice"
APP = "arn:aws:iam::111111111111:user/app"


class Deployment:
    """Portcullis on the throwaway cluster: migrated, with the cast of ``app_script setup``."""

    def __init__(self, cluster: Cluster, tmp: Path) -> None:
        self.cluster = cluster
        self.env = dict(os.environ)
        self.env.update(
            DATABASE_URL=cluster.url,
            REDIS_URL=settings.REDIS_URL,
            DEBUG="1",
            PORTCULLIS_DATA_DIR=str(tmp),
            PYTHONUNBUFFERED="1",
        )
        self.key: dict[str, str] = {}
        self.web: subprocess.Popen[bytes] | None = None
        self.port = 0

    def manage(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout

    def script(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "tests.faults.app_script", *args],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def serve(self) -> None:
        self.port = free_port()
        self.web = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "console.wsgi",
                "--workers",
                "1",
                "--bind",
                f"127.0.0.1:{self.port}",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/v1/openapi.json", timeout=2)
                return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("the web process did not start")

    def ask(self, principal: str) -> tuple[int, dict]:
        data = json.dumps({"principal": principal, "action": "s3:GetObject", "resource": "*"})
        url = f"http://127.0.0.1:{self.port}/v1/authorize"
        request = AWSRequest(
            method="POST", url=url, data=data, headers={"Content-Type": "application/json"}
        )
        credentials = Credentials(self.key["access_key_id"], self.key["secret"])
        SigV4Auth(credentials, "portcullis", "us-east-1").add_auth(request)
        prepared = urllib.request.Request(
            url, data=data.encode(), headers=dict(request.headers.items()), method="POST"
        )
        try:
            with urllib.request.urlopen(prepared, timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    def stop_web(self) -> None:
        if self.web is not None:
            self.web.terminate()
            self.web.wait(timeout=10)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    cluster = Cluster().init()
    deployment = Deployment(cluster, tmp_path_factory.mktemp("pdata"))
    try:
        deployment.manage("migrate", "--no-input", "-v", "0")
        setup = deployment.script("setup")
        out, err = setup.communicate(timeout=120)
        assert setup.returncode == 0, err[-3000:]
        deployment.key = json.loads(out.strip().splitlines()[-1])
        yield deployment
    finally:
        deployment.stop_web()
        cluster.destroy()


def test_it_denies_with_an_explicit_5xx_when_postgresql_is_down_and_redis_has_no_entry(
    deployment,
):
    # The store holds the application's and its key's entries, but nothing for Alice.
    deployment.manage("propagation_rebuild", "--flush")
    deployment.serve()
    from redis import Redis

    Redis.from_url(settings.REDIS_URL).delete(f"pc:portcullis_fault:arn:{ALICE}")
    assert deployment.ask(ALICE)[1]["source"] == "database"
    status, body = deployment.ask(ALICE)
    assert (status, body["decision"], body["source"]) == (200, "allowed", "database")

    deployment.cluster.stop()
    try:
        status, body = deployment.ask(ALICE)
        held_status, held = deployment.ask(APP)
    finally:
        deployment.cluster.start()
        deployment.stop_web()

    assert status == 503
    assert body["decision"] == "explicitDeny"
    assert body["allowed"] is False
    assert body["error"]["code"] == "ServiceUnavailable"
    assert "OperationalError" in body["error"]["message"]
    # What Redis does hold is still decided, from Redis.
    assert (held_status, held["source"], held["decision"]) == (200, "store", "implicitDeny")


def test_it_keeps_every_acknowledged_write_with_its_audit_and_outbox_rows_after_a_crash(
    deployment,
):
    writer = deployment.script("write", "200")
    acknowledged: list[str] = []
    assert writer.stdout is not None
    for line in writer.stdout:
        if line.startswith("ACK "):
            acknowledged.append(line.split()[1])
        if len(acknowledged) == 100:
            deployment.cluster.crash()
            break
    for line in writer.stdout:  # whatever was acknowledged before the crash reached it
        if line.startswith("ACK "):
            acknowledged.append(line.split()[1])
    writer.wait(timeout=30)
    assert writer.returncode != 0  # the writer saw the crash: it did not finish all 200
    assert 100 <= len(acknowledged) < 200

    deployment.cluster.start()

    with psycopg.connect(deployment.cluster.url) as conn:
        users = dict(
            conn.execute(
                "SELECT name, unique_id FROM identity_user WHERE name LIKE 'w%%'"
            ).fetchall()
        )
        audited = {
            row[0].rsplit("/", 1)[1]
            for row in conn.execute(
                "SELECT resource_arn FROM audit_auditevent WHERE action = 'iam:CreateUser' "
                "AND resource_arn LIKE 'arn:aws:iam::111111111111:user/w%%'"
            )
        }
        outboxed = {
            row[0]
            for row in conn.execute(
                "SELECT entity_id FROM policies_changeevent WHERE kind = 'user'"
            )
        }
    assert set(acknowledged) <= set(users)
    assert set(acknowledged) <= audited
    assert {users[name] for name in acknowledged} <= outboxed
    # Nothing half-written either: every user that exists has both rows.
    assert set(users) == audited
    assert set(users.values()) <= outboxed

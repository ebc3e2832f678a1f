"""A real Celery worker for the tests that need one.

``celery_worker`` (session-scoped) starts ``celery -A console worker -Q priority,celery`` with
an embedded beat, pointed at the *test* database (pytest-django's ``test_<name>``) and the same
``REDIS_URL``, waits for its heartbeat in Redis and stops it at the end of the session. Tests
using it must use ``transactional_db`` (or ``live_server``): the worker only sees committed
rows.

    def test_it_propagates(transactional_db, celery_worker): ...

The fixture's value is a ``Worker``: ``stop()``, ``start()`` and ``kill()`` (SIGKILL to the
whole process group, as a crash would) let fault tests take the worker away and bring it back;
whatever a test does, the next test gets a running worker. The broker queues and this
database's compiled-policy store are emptied when the session's worker first starts, so no
message or entry from an earlier run leaks in.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

ROOT = Path(__file__).resolve().parent.parent
QUEUES = ("priority", "celery")


def database_url() -> str:
    """The URL of the database Django is using now (the test database inside a test)."""
    from django.db import connection

    db = connection.settings_dict
    auth = quote(db["USER"] or "", safe="")
    if db.get("PASSWORD"):
        auth += ":" + quote(db["PASSWORD"], safe="")
    host = db["HOST"] or "127.0.0.1"
    port = db["PORT"] or 5432
    return f"postgres://{auth}@{host}:{port}/{db['NAME']}"


class Worker:
    """One Celery worker process group (worker + embedded beat)."""

    def __init__(self, *, concurrency: int = 2, beat: bool = True, env: dict | None = None):
        self.concurrency = concurrency
        self.beat = beat
        self.extra_env = env or {}
        self.hostname = f"pytest-{uuid.uuid4().hex[:8]}@localhost"
        self.dir = Path(tempfile.mkdtemp(prefix="pworker-"))
        self.log_path = self.dir / "worker.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, *, timeout_s: float = 40.0) -> Worker:
        from django.conf import settings

        from policies import store

        if self.running:
            return self
        env = dict(os.environ)
        env.update(
            DATABASE_URL=database_url(),
            REDIS_URL=settings.REDIS_URL,
            DEBUG="1",
            PYTHONUNBUFFERED="1",
        )
        env.update(self.extra_env)
        command = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "console",
            "worker",
            "-Q",
            ",".join(QUEUES),
            "-n",
            self.hostname,
            "--concurrency",
            str(self.concurrency),
            "--without-mingle",
            "--without-gossip",
            "--loglevel",
            "INFO",
        ]
        if self.beat:
            command += ["-B", "-s", str(self.dir / "beat-schedule")]
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child keeps it
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        deadline = time.monotonic() + timeout_s
        key = f"worker:{self.hostname}"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the worker exited:\n{self.log_tail()}")
            try:
                if store.get_float(key) is not None:
                    return self
            except Exception:  # Redis not answering yet: keep waiting
                store.reset_circuit()
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"no worker heartbeat within {timeout_s} s:\n{self.log_tail()}")

    def _signal(self, sig: int) -> None:
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, sig)

    def stop(self, *, timeout_s: float = 15.0) -> None:
        """A warm shutdown (SIGTERM): running tasks finish first."""
        self._signal(signal.SIGTERM)
        self._wait(timeout_s)

    def kill(self) -> None:
        """A crash: SIGKILL to the worker, its pool children and its beat."""
        self._signal(signal.SIGKILL)
        self._wait(10.0)

    def _wait(self, timeout_s: float) -> None:
        if self.process is None:
            return
        try:
            self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self._signal(signal.SIGKILL)
            self.process.wait(timeout=10)
        # Pool children can outlive a killed parent for a moment; take the group down.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self._forget_heartbeat()
        self.process = None

    def _forget_heartbeat(self) -> None:
        from policies import store

        try:
            store.delete_keys(f"worker:{self.hostname}")
        except Exception:  # Redis may be the thing a fault test took away
            store.reset_circuit()

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"


def purge_broker() -> None:
    """Drop queued messages (from earlier runs or earlier tests' leftovers)."""
    from policies import store

    store.client().delete(*QUEUES, "unacked", "unacked_index")


@pytest.fixture(scope="session")
def celery_worker(django_db_setup: None, django_db_blocker: object) -> Iterator[Worker]:
    """A running worker on the test database (see the module docstring)."""
    from policies import store

    purge_broker()
    store.flush_namespace()
    worker = Worker().start()
    try:
        yield worker
    finally:
        worker.stop()


@pytest.fixture
def running_worker(celery_worker: Worker) -> Iterator[Worker]:
    """``celery_worker``, restarted after a test that stopped or killed it."""
    celery_worker.start()
    yield celery_worker
    celery_worker.start()


@pytest.fixture
def clean_store(db: None) -> Iterator[None]:
    """An empty compiled-policy store for this test. Tests that truncate the database leave
    entries behind whose ARNs a later test's users reuse; production never does that."""
    from policies import store

    store.reset_client()
    store.flush_namespace()
    yield
    store.reset_client()

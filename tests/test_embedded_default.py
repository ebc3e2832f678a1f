"""The embedded default (no DATABASE_URL, no REDIS_URL) must keep working: the suite itself runs
on PostgreSQL, so this runs the newcomer's path — migrate and bootstrap on SQLite — in a fresh
process with an empty data folder."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def embedded_env(data_dir: Path) -> dict[str, str]:
    """This process's environment without anything that would leave the embedded default."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "DEBUG", "SECRET_KEY"}
        and not key.startswith("PORTCULLIS_")
    }
    env["PORTCULLIS_DATA_DIR"] = str(data_dir)
    return env


def manage(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=embedded_env(data_dir),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_it_migrates_and_bootstraps_the_embedded_default(tmp_path):
    migrated = manage("migrate", "--no-input", "-v", "0", data_dir=tmp_path)
    assert migrated.returncode == 0, migrated.stderr

    first = manage("bootstrap", "--url", "http://127.0.0.1:8000/", data_dir=tmp_path)
    again = manage("bootstrap", "--url", "http://127.0.0.1:8000/", data_dir=tmp_path)

    assert first.returncode == 0, first.stderr
    assert "Portcullis is ready. Sign in as the root user:" in first.stdout
    assert "URL:      http://127.0.0.1:8000/signin/root/" in first.stdout
    assert "Password: " in first.stdout
    assert again.returncode == 0, again.stderr
    assert "already exists" in again.stdout
    assert "Password: " not in again.stdout
    assert (tmp_path / "portcullis.sqlite3").exists()
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_its_worker_drains_the_embedded_broker_and_shows_its_heartbeat(tmp_path):
    assert manage("migrate", "--no-input", "-v", "0", data_dir=tmp_path).returncode == 0
    account = manage(
        "create_account",
        "--account-id",
        "123456789012",
        "--email",
        "root@example.com",
        data_dir=tmp_path,
    )
    assert account.returncode == 0, account.stderr
    created = manage(
        "import_access_key",
        *("--account-id", "123456789012", "--user-name", "ci"),
        *("--access-key-id", "AKIAEXAMPLE000000001", "--secret-access-key", "s" * 40),
        data_dir=tmp_path,
    )
    assert created.returncode == 0, created.stderr
    before = manage("propagation_status", data_dir=tmp_path)
    assert before.returncode == 0, before.stderr
    assert "worker heartbeat: never (no live worker)" in before.stdout
    assert "pending changes: 0" not in before.stdout
    assert "queue depth: priority 0, celery 0" not in before.stdout  # its tasks wait

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
            "-n",
            "embedded@test",
        ],
        cwd=ROOT,
        env=embedded_env(tmp_path),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            after = manage("propagation_status", data_dir=tmp_path)
            if (
                "(embedded@test)" in after.stdout
                and "queue depth: priority 0, celery 0" in after.stdout
                and "pending changes: 0" in after.stdout
            ):
                break
            assert time.monotonic() < deadline, after.stdout + after.stderr
            time.sleep(1)
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=30)
    assert "store: database" in after.stdout


def test_up_stops_its_worker_when_it_is_terminated(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    up = subprocess.Popen(
        [sys.executable, "manage.py", "up", "--addr", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env=embedded_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        assert up.stdout is not None
        worker_pid = None
        for line in up.stdout:
            if line.startswith("Celery worker started (pid "):
                worker_pid = int(line.split("pid ")[1].rstrip(").\n"))
                break
        assert worker_pid is not None

        up.terminate()  # SIGTERM, as a process manager or `timeout` sends
        up.wait(timeout=30)

        deadline = time.monotonic() + 30
        while _alive(worker_pid):
            assert time.monotonic() < deadline, "the Celery worker outlived `up`"
            time.sleep(0.2)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(up.pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A child that exited but was not reaped yet is a zombie: gone for this purpose.
    with contextlib.suppress(FileNotFoundError):
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    return False

"""The embedded default (no DATABASE_URL, no REDIS_URL) must keep working: the suite itself runs
on PostgreSQL, so this runs the newcomer's path — migrate and bootstrap on SQLite — in a fresh
process with an empty data folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def manage(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "DEBUG", "SECRET_KEY"}
        and not key.startswith("PORTCULLIS_")
    }
    env["PORTCULLIS_DATA_DIR"] = str(data_dir)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
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

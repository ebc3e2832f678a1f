"""Benchmark: propagation lag and the decision API's throughput, on PostgreSQL + Redis.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/portcullis REDIS_URL=redis://127.0.0.1:6379/0 \\
        .venv/bin/python -m policies.bench_propagation

It creates (and finally drops) its own database ``<name>_bench`` next to the one named, seeds an
account with 10,000 users in one group, starts one Celery worker (prefork, 2 processes) and a
gunicorn (one sync worker per core, ``BENCH_WEB_WORKERS`` to change) on loopback, and measures:

- lag from commit to the decision API answering with a decision that reflects a single-user
  change (p50/p99): outbox, task, publish to Redis, Redis's invalidation of each gunicorn
  worker's near cache, and the request itself;
- the time for a change reaching all 10,000 users to be published for every one of them;
- ``POST /v1/authorize`` and ``/v1/authorize/batch`` (100 per call) under 16 concurrent
  connections, and ``/v1/ping`` (a constant JSON view behind the same middleware) as the
  ceiling, in five interleaved rounds, each figure the median of its rounds. The load generator
  replays pre-signed requests (SigV4 signatures stay valid for five minutes) on the same two
  cores as the server: ``wrk`` (one thread) when it is installed (``apt-get install wrk``),
  else two Python processes of eight threads, which cap the figures far below what the server
  can do. The output says which one ran.

The last line is one JSON object (see the issue for its shape). ``--lag-only`` stops after the
single-change lag and prints ``{"lag_single_ms": {"p50": …, "p99": …}}``. ``--smoke`` runs the
whole bench at a tiny scale (200 users, one short round of each load): it checks that everything
starts and answers, in about 15 seconds, and its figures mean nothing.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess  # nosec B404
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse, urlunparse

ROOT = Path(__file__).resolve().parent.parent
USERS = 10_000
CONNECTIONS = 16
LOAD_PROCESSES = 2
# One wrk thread drives 16 connections at many times the rate a 2-core server can answer; a
# second thread only takes CPU from the server it shares the cores with (it cost the decision
# API about 5 % of its throughput and 0.5 ms of its p99, and the ceiling as much).
WRK_THREADS = 1
LOAD_SECONDS = 4.0
LOAD_ROUNDS = 5
SINGLE_CHANGES = 200
# One sync worker per core: the work is CPU-bound, and more workers than cores only add context
# switches (at 4 workers on 2 cores the ceiling's p99 doubles).
WEB_WORKERS = int(os.environ.get("BENCH_WEB_WORKERS", str(os.cpu_count() or 2)))


@dataclass(frozen=True)
class Scale:
    """How much the bench does: the full run's figures by default, ``SMOKE`` for ``--smoke``."""

    users: int = USERS
    single_changes: int = SINGLE_CHANGES
    fanouts: int = 3
    load_seconds: float = LOAD_SECONDS
    load_rounds: int = LOAD_ROUNDS


SMOKE = Scale(users=200, single_changes=5, fanouts=1, load_seconds=1.0, load_rounds=1)


def _prepare_environment() -> dict[str, str]:
    from cryptography.fernet import Fernet

    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        sys.exit("bench_propagation needs DATABASE_URL=postgres://... and REDIS_URL=redis://...")
    if not os.environ.get("REDIS_URL"):
        sys.exit("bench_propagation needs REDIS_URL=redis://...")
    parsed = urlparse(url)
    bench_db = parsed.path.lstrip("/") + "_bench"
    env = {
        "DATABASE_URL": urlunparse(parsed._replace(path="/" + bench_db)),
        "DEBUG": "0",
        "SECURE_SSL_REDIRECT": "0",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECRET_KEY": os.environ.get("SECRET_KEY") or os.urandom(48).hex(),
        "PORTCULLIS_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "PORTCULLIS_DATA_DIR": tempfile.mkdtemp(prefix="pbench-"),
        "LOG_LEVEL": "WARNING",
        "DJANGO_SETTINGS_MODULE": "console.settings",
    }
    import psycopg

    admin = urlunparse(parsed._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{bench_db}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{bench_db}"')
    os.environ.update(env)
    return env


def _drop_database() -> None:
    import psycopg

    parsed = urlparse(os.environ["DATABASE_URL"])
    admin = urlunparse(parsed._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{parsed.path.lstrip("/")}" WITH (FORCE)')


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- load generation ---------------------------------------------------------------------------


def _load_process(
    port: int, payloads: list[bytes], threads: int, seconds: float, queue: Any
) -> None:
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def run(index: int) -> None:
        mine: list[float] = []
        bad = 0
        i = index
        while time.monotonic() < stop_at:
            payload = payloads[i % len(payloads)]
            i += 1
            started = time.perf_counter()
            try:
                with socket.create_connection(("127.0.0.1", port)) as sock:
                    sock.sendall(payload)
                    chunks = []
                    while True:
                        data = sock.recv(65536)
                        if not data:
                            break
                        chunks.append(data)
                status = b"".join(chunks)[9:12]
                if status != b"200":
                    bad += 1
            except OSError:
                bad += 1
                continue
            mine.append(time.perf_counter() - started)
        with lock:
            latencies.extend(mine)
            errors[0] += bad

    workers = [threading.Thread(target=run, args=(n,)) for n in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    queue.put((latencies, errors[0]))


def _lua_string(raw: bytes) -> str:
    return (
        '"'
        + "".join(f"\\{b:03d}" if b < 32 or b in (34, 92) or b > 126 else chr(b) for b in raw)
        + '"'
    )


# wrk replays the pre-signed requests in turn on 16 connections (sync gunicorn workers close
# each connection after one answer; wrk reconnects) and prints its figures as one JSON line.
_WRK_SCRIPT = """
local requests = {%s}
local n = 0
request = function()
  n = n %% #requests + 1
  return requests[n]
end
done = function(summary, latency, _)
  local e = summary.errors
  io.write(string.format(
    'WRK {"requests": %%d, "duration_us": %%d, "p50_us": %%d, "p99_us": %%d, "errors": %%d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.status + e.timeout))
end
"""


def _load_wrk(wrk: str, port: int, payloads: list[bytes], seconds: float) -> dict[str, float]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_WRK_SCRIPT % ", ".join(_lua_string(p) for p in payloads))
    try:
        out = subprocess.run(  # nosec B603
            [
                wrk,
                f"-t{WRK_THREADS}",
                f"-c{CONNECTIONS}",
                f"-d{max(1, round(seconds))}s",
                "-s",
                script.name,
                f"http://127.0.0.1:{port}/",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        os.unlink(script.name)
    figures = json.loads(next(ln for ln in out.splitlines() if ln.startswith("WRK "))[4:])
    ok = figures["requests"] - figures["errors"]
    return {
        "rps": round(ok / (figures["duration_us"] / 1e6), 1),
        "p50_ms": round(figures["p50_us"] / 1000, 2),
        "p99_ms": round(figures["p99_us"] / 1000, 2),
        "errors": figures["errors"],
    }


def _load(port: int, payloads: list[bytes], seconds: float = LOAD_SECONDS) -> dict[str, float]:
    wrk = shutil.which("wrk")
    if wrk:
        return _load_wrk(wrk, port, payloads, seconds)
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    per = CONNECTIONS // LOAD_PROCESSES
    procs = [
        ctx.Process(target=_load_process, args=(port, payloads, per, seconds, queue))
        for _ in range(LOAD_PROCESSES)
    ]
    started = time.monotonic()
    for p in procs:
        p.start()
    results = [queue.get() for _ in procs]
    for p in procs:
        p.join()
    elapsed = time.monotonic() - started
    latencies = [v for lat, _ in results for v in lat]
    errors = sum(e for _, e in results)
    return {
        "rps": round(len(latencies) / elapsed, 1),
        "p50_ms": round(_pct(latencies, 0.50) * 1000, 2),
        "p99_ms": round(_pct(latencies, 0.99) * 1000, 2),
        "errors": errors,
    }


def _median_round(results: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(r[key] for r in results) for key in results[0]}


def _send(port: int, raw: bytes) -> tuple[int, bytes]:
    """Send one pre-built HTTP/1.1 request (``Connection: close``); (status, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(raw)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def _signed(port: int, path: str, body: dict[str, Any], key: Any) -> bytes:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    data = json.dumps(body)
    url = f"http://127.0.0.1:{port}{path}"
    request = AWSRequest(
        method="POST", url=url, data=data, headers={"Content-Type": "application/json"}
    )
    SigV4Auth(Credentials(key.access_key_id, key.secret), "portcullis", "us-east-1").add_auth(
        request
    )
    headers = "".join(f"{k}: {v}\r\n" for k, v in request.headers.items())
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{headers}"
        f"Content-Length: {len(data.encode())}\r\nConnection: close\r\n\r\n{data}"
    ).encode()


# --- processes ---------------------------------------------------------------------------------


class _Process:
    def __init__(self, command: list[str], env: dict[str, str]) -> None:
        self.log = tempfile.NamedTemporaryFile(prefix="pbench-", suffix=".log", delete=False)  # noqa: SIM115
        self.proc = subprocess.Popen(  # nosec B603
            command,
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def _wait(predicate: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise SystemExit(f"timed out waiting for {what}")


# --- the benchmark -----------------------------------------------------------------------------


def main() -> None:
    lag_only = "--lag-only" in sys.argv[1:]
    scale = SMOKE if "--smoke" in sys.argv[1:] else Scale()
    env = _prepare_environment()
    import django

    django.setup()
    from django.contrib.auth.hashers import make_password
    from django.core.management import call_command
    from django.db import transaction

    from audit.context import Actor
    from identity import naming
    from identity import services as identity_services
    from identity.bootstrap import create_account
    from identity.models import Group, GroupMembership, User
    from policies import services as policy_services
    from policies import store
    from policies.models import ChangeEvent

    processes: list[_Process] = []
    try:
        print("migrating the bench database…", flush=True)
        call_command("migrate", verbosity=0)
        account = create_account(
            root_email="root@bench.example",
            account_id="111111111111",
            password=secrets.token_urlsafe(16) + "aA1!",
        ).account
        root = User.objects.get(account=account, is_root=True)
        actor = Actor(arn=root.arn, account_id=account.id, kind="root", user=root)

        def doc(action: str) -> str:
            return json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Action": action, "Resource": "*"}],
                }
            )

        identity_services.create_user(account=account, user_name="app", actor=actor)
        policy_services.put_user_policy(
            account=account,
            user_name="app",
            policy_name="ask",
            policy_document=doc("portcullis:Authorize"),
            actor=actor,
        )
        created = identity_services.create_access_key(account=account, user_name="app", actor=actor)

        class Key:
            access_key_id = created.access_key.access_key_id
            secret = created.secret_access_key

        solo = identity_services.create_user(account=account, user_name="solo", actor=actor)
        identity_services.create_group(account=account, group_name="everyone", actor=actor)
        group = Group.objects.get(name="everyone")
        unusable = make_password(None)
        users = User.objects.bulk_create(
            User(
                account=account,
                name=f"u{i:05d}",
                unique_id=naming.new_unique_id(naming.USER_ID_PREFIX),
                password=unusable,
            )
            for i in range(scale.users)
        )
        GroupMembership.objects.bulk_create(GroupMembership(group=group, user=u) for u in users)
        policy_services.put_group_policy(
            account=account,
            group_name="everyone",
            policy_name="read",
            policy_document=doc("s3:GetObject"),
            actor=actor,
        )
        store.flush_namespace()
        ChangeEvent.objects.filter(processed_at__isnull=True).update(parked_at=None)

        print("starting one worker (2 processes) and gunicorn…", flush=True)
        worker = _Process(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "console",
                "worker",
                "-Q",
                "priority,celery",
                "-B",
                "-s",
                str(Path(env["PORTCULLIS_DATA_DIR"]) / "beat"),
                "--concurrency",
                "2",
                "--without-mingle",
                "--without-gossip",
                "--loglevel",
                "WARNING",
                "-n",
                f"bench-{os.getpid()}@localhost",
            ],
            env,
        )
        processes.append(worker)
        _wait(lambda: store.get_float("heartbeat") is not None, 60, "the worker's heartbeat")
        _wait(lambda: store.get_float("built_at") is not None, 60, "the initial rebuild")
        _wait(
            lambda: not ChangeEvent.objects.filter(processed_at__isnull=True).exists(),
            60,
            "the backlog",
        )

        # --- the decision API's server ------------------------------------------------------
        port = _free_port()
        web = _Process(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "console.wsgi",
                "--workers",
                str(WEB_WORKERS),
                "--worker-class",
                "sync",
                "--bind",
                f"127.0.0.1:{port}",
                "--log-level",
                "warning",
            ],
            env,
        )
        processes.append(web)

        def up() -> bool:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    return True
            except OSError:
                return False

        _wait(up, 30, "gunicorn")

        def ask(principal: str, action: str) -> dict[str, Any]:
            """One decision from the API, freshly signed (what an application would do)."""
            status, body = _send(
                port,
                _signed(port, "/v1/authorize", {"principal": principal, "action": action}, Key),
            )
            if status not in (200, 503):
                raise SystemExit(f"the decision API answered {status}: {body[:300]!r}")
            return json.loads(body)  # type: ignore[no-any-return]

        # --- single-change lag ---------------------------------------------------------------
        # From COMMIT to the decision API answering with a decision that reflects the change:
        # the outbox row, the task, the publish to Redis, Redis's invalidation message to each
        # gunicorn worker's near cache, and the decision itself.
        for _ in range(50):  # every gunicorn worker has the set in its near cache
            ask(solo.arn, "s3:PutObject")
        lags: list[float] = []
        actions = ("s3:PutObject", "s3:DeleteObject")
        for i in range(scale.single_changes):
            action = actions[i % 2]
            commit: list[float] = []
            with transaction.atomic():
                # Registered first, so it runs right after COMMIT, before the change's own
                # after-commit work (marking it pending, queueing its task).
                transaction.on_commit(lambda commit=commit: commit.append(time.perf_counter()))
                policy_services.put_user_policy(
                    account=account,
                    user_name="solo",
                    policy_name="own",
                    policy_document=doc(action),
                    actor=actor,
                )
            committed = commit[0]
            change = ChangeEvent.objects.order_by("-id").values_list("id", flat=True).first()
            while True:
                answer = ask(solo.arn, action)
                if (
                    answer.get("source") == "store"
                    and answer.get("allowed")
                    and answer.get("changeSequence", 0) >= change
                ):
                    break
                if time.perf_counter() - committed > 10:
                    raise SystemExit("a single change did not propagate within 10 s")
            lags.append(time.perf_counter() - committed)
            time.sleep(0.01)
        lag = {
            "p50": round(_pct(lags, 0.5) * 1000, 2),
            "p99": round(_pct(lags, 0.99) * 1000, 2),
        }
        print(
            f"single-change lag, commit → decision API answer reflecting it: {lag} ms", flush=True
        )
        if lag_only:
            print(json.dumps({"lag_single_ms": lag}), flush=True)
            return

        # --- 10,000-user fan-out -------------------------------------------------------------
        ns = store.namespace()
        keys = [f"{ns}set:{u.unique_id}" for u in users]
        redis = store.client()

        def published(change_id: int) -> bool:
            pipe = redis.pipeline(transaction=False)
            for key in keys:
                pipe.hget(key, "seq")
            return all(v is not None and int(v) >= change_id for v in pipe.execute())

        fanouts: list[float] = []
        for i in range(scale.fanouts):
            policy_services.put_group_policy(
                account=account,
                group_name="everyone",
                policy_name="read",
                policy_document=doc(("s3:GetObject", "s3:ListBucket")[i % 2]),
                actor=actor,
            )
            change = ChangeEvent.objects.order_by("-id").values_list("id", flat=True).first()
            committed = time.perf_counter()
            _wait(lambda c=change: published(c), 60, "the fan-out")
            fanouts.append(time.perf_counter() - committed)
        fanout = round(statistics.median(fanouts), 3)
        print(
            f"{len(users):,}-user fan-out fully published: {[round(f, 3) for f in fanouts]} s",
            flush=True,
        )

        # --- the decision API under load ---------------------------------------------------
        principals = [u.arn for u in users[:50]]
        single = [
            _signed(port, "/v1/authorize", {"principal": p, "action": "s3:GetObject"}, Key)
            for p in principals
        ]
        batch = [
            _signed(
                port,
                "/v1/authorize/batch",
                {
                    "requests": [
                        {"principal": principals[(j + k) % 50], "action": "s3:GetObject"}
                        for k in range(100)
                    ]
                },
                Key,
            )
            for j in range(10)
        ]
        ping = [
            f"GET /v1/ping HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode()
        ]
        print(
            f"load generator: {'wrk' if shutil.which('wrk') else 'Python threads'}, "
            f"{CONNECTIONS} connections from "
            f"{f'{WRK_THREADS} thread' if shutil.which('wrk') else f'{LOAD_PROCESSES} processes'}, "
            f"against gunicorn with {WEB_WORKERS} sync workers",
            flush=True,
        )
        _load(port, single, min(2.0, scale.load_seconds))  # warm every gunicorn worker's caches
        _load(port, batch, 1.0)
        # Rounds of the three, interleaved, each figure the median of its rounds: a moment of
        # other work on the machine then moves one round, not one of the three figures.
        rounds: dict[str, list[dict[str, float]]] = {"ping": [], "single": [], "batch": []}
        for _ in range(scale.load_rounds):
            rounds["ping"].append(_load(port, ping, scale.load_seconds))
            rounds["single"].append(_load(port, single, scale.load_seconds))
            rounds["batch"].append(_load(port, batch, scale.load_seconds))
        failed = {name: [r["errors"] for r in results] for name, results in rounds.items()}
        if any(any(errors) for errors in failed.values()):
            # Figures of failed requests measure nothing (a 4xx answers faster than a decision).
            raise SystemExit(f"requests failed under load (errors per round): {failed}")
        ceiling, api_single, api_batch = (
            _median_round(rounds[name]) for name in ("ping", "single", "batch")
        )
        for name, results in rounds.items():
            spread = ", ".join(f"{r['rps']:.0f} rps p99 {r['p99_ms']} ms" for r in results)
            print(f"rounds of {name}: {spread}", flush=True)
        print(f"ceiling (/v1/ping): {ceiling}", flush=True)
        print(f"decision API, single: {api_single}", flush=True)
        print(f"decision API, batch of 100: {api_batch}", flush=True)
        if api_single["rps"] and ceiling["rps"]:
            print(f"single / ceiling: {api_single['rps'] / ceiling['rps']:.0%}", flush=True)
        summary = {
            "lag_single_ms": lag,
            "fanout_10k_s": fanout,
            "api_single": {
                "rps": api_single["rps"],
                "p50_ms": api_single["p50_ms"],
                "p99_ms": api_single["p99_ms"],
            },
            "api_batch": {"decisions_per_s": round(api_batch["rps"] * 100, 1)},
            "ceiling": {"rps": ceiling["rps"]},
        }
        print(json.dumps(summary), flush=True)
    finally:
        for process in reversed(processes):
            process.stop()
        from django.db import connections

        connections.close_all()
        with contextlib.suppress(Exception):  # best effort; the database goes anyway
            store.flush_namespace()
        _drop_database()


if __name__ == "__main__":
    main()

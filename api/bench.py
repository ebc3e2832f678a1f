"""Benchmark of the Query API: signed calls per second and latency, on PostgreSQL.

    DATABASE_URL=postgres://... REDIS_URL=redis://... python -m api.bench \
        [--requests 400] [--concurrency 4] [--rounds 3]
    DATABASE_URL=... REDIS_URL=... python -m api.bench --profile   # one GetUser, in-process

Prepares an account (``999999999999``) with an imported administrator key, publishes the
compiled policy sets to the store and starts the production shape on loopback: gunicorn, and
(with ``REDIS_URL``) one Celery worker with beat, which keeps the store current and trusted.
Then it drives gunicorn with boto3 clients, one process each (SigV4 signing included in the
client's time):
``GetUser`` and ``CreateUser`` + ``DeleteUser`` pairs, ``--rounds`` times, and prints each
round and the median round. Last line: one JSON document.

``--profile`` instead signs ``GetUser`` calls in-process (Django's request factory straight
into the Query API view), prints the SQL statements one call makes and cProfile's top entries.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

BENCH_ACCOUNT = "999999999999"
BENCH_KEY_ID = "AKIABENCH0000000001"
BENCH_SECRET = "bench-secret-key-000000000000000000000000"  # noqa: S105 - a local benchmark key


def _prepare() -> None:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from api.testdouble import import_access_key
    from audit.context import Actor
    from identity.bootstrap import create_account
    from identity.models import AccessKey, Account, User
    from policies import services as policy_services
    from policies.builtin import install_builtin_policies

    install_builtin_policies()
    if not Account.objects.filter(pk=BENCH_ACCOUNT).exists():
        create_account(root_email="bench@portcullis.invalid", account_id=BENCH_ACCOUNT)
    if not AccessKey.objects.filter(pk=BENCH_KEY_ID).exists():
        import_access_key(
            account_id=BENCH_ACCOUNT,
            user_name="bench",
            access_key_id=BENCH_KEY_ID,
            secret_access_key=BENCH_SECRET,
        )
        policy_services.attach_user_policy(
            account=Account.objects.get(pk=BENCH_ACCOUNT),
            user_name="bench",
            policy_arn="arn:aws:iam::aws:policy/AdministratorAccess",
            actor=Actor.system("bench"),
        )
    # Leftovers of an interrupted run.
    for user in User.objects.filter(account_id=BENCH_ACCOUNT, name__startswith="bench-tmp-"):
        user.delete()
    if os.environ.get("REDIS_URL"):
        call_command("propagation_rebuild", verbosity=0)


def _start_worker() -> subprocess.Popen[bytes] | None:
    """One Celery worker with beat, as production runs it: it propagates the benchmark's
    changes to the compiled-policy store and its sweep keeps the store's entries trusted."""
    if not os.environ.get("REDIS_URL"):
        return None
    root = Path(__file__).resolve().parent.parent
    process = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "celery"),
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
            "--schedule",
            str(Path(tempfile.gettempdir()) / f"bench-beat-{os.getpid()}"),
        ],
        cwd=root,
        start_new_session=True,
    )
    _wait_for_worker(process)
    return process


def _wait_for_worker(process: subprocess.Popen[bytes]) -> None:
    """Until the worker's heartbeat is in Redis and it has settled: its start-up would
    otherwise be measured as the API's time on a small machine."""
    from policies import store

    started = time.time()
    for _ in range(600):
        if process.poll() is not None:
            raise SystemExit("the Celery worker exited")
        beat = store.get_float("heartbeat")
        if beat is not None and beat > started:
            time.sleep(3)
            return
        time.sleep(0.1)
    process.terminate()
    raise SystemExit("the Celery worker did not start")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_server(workers: int) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    root = Path(__file__).resolve().parent.parent
    process = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "gunicorn"),
            "console.wsgi",
            "--workers",
            str(workers),
            "--bind",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
        ],
        cwd=root,
        env={**os.environ, "ALLOWED_HOSTS": "127.0.0.1,localhost", "SECURE_SSL_REDIRECT": "0"},
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            urllib.request.urlopen(url + "/healthz", timeout=1).read()
            return process, url
        except OSError:
            time.sleep(0.1)
    process.terminate()
    raise SystemExit("gunicorn did not start")


def _client(url: str) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "iam",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id=BENCH_KEY_ID,
        aws_secret_access_key=BENCH_SECRET,
        config=Config(retries={"total_max_attempts": 1}, max_pool_connections=4),
    )


def _get_user(client: Any, index: int, i: int) -> None:
    client.get_user(UserName="bench")


def _create_delete(client: Any, index: int, i: int) -> None:
    name = f"bench-tmp-{index}-{i}"
    client.create_user(UserName=name)
    client.delete_user(UserName=name)


_WORK = {"get_user": _get_user, "create_delete": _create_delete}


def _client_process(
    url: str, kind: str, index: int, calls: int, ready: Any, go: Any, results: Any
) -> None:
    """One client: its own process, so the clients' signing and parsing (boto3 is pure
    Python) are not serialized by one interpreter lock and measured as the server's time."""
    client = _client(url)
    work = _WORK[kind]
    work(client, index, -1)  # warm the connection and the client
    ready.put(index)
    go.wait()
    mine = []
    for i in range(calls):
        started = time.perf_counter()
        work(client, index, i)
        mine.append(time.perf_counter() - started)
    results.put(mine)


def _run(url: str, requests: int, concurrency: int, kind: str) -> dict[str, float]:
    context = multiprocessing.get_context("spawn")
    ready, results, go = context.Queue(), context.Queue(), context.Event()
    per_client = requests // concurrency
    processes = [
        context.Process(target=_client_process, args=(url, kind, n, per_client, ready, go, results))
        for n in range(concurrency)
    ]
    for process in processes:
        process.start()
    for _ in processes:
        ready.get(timeout=120)
    started = time.perf_counter()
    go.set()
    latencies: list[float] = []
    for _ in processes:
        latencies.extend(results.get(timeout=1800))
    elapsed = time.perf_counter() - started
    for process in processes:
        process.join()
    latencies.sort()
    return {
        "rps": round(len(latencies) / elapsed, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 2),
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 2),
        "calls": len(latencies),
    }


def _profile(calls: int) -> None:
    """Signed GetUser calls in-process: the SQL one call makes, then cProfile's top entries."""
    import cProfile
    import pstats

    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    from django.db import connection
    from django.test import RequestFactory
    from django.test.utils import CaptureQueriesContext

    from api.views import root

    credentials = Credentials(BENCH_KEY_ID, BENCH_SECRET)
    factory = RequestFactory()
    body = "Action=GetUser&Version=2010-05-08&UserName=bench"
    content_type = "application/x-www-form-urlencoded; charset=utf-8"

    def call() -> None:
        signed = AWSRequest(
            method="POST",
            url="http://127.0.0.1/",
            data=body,
            headers={"Content-Type": content_type},
        )
        SigV4Auth(credentials, "iam", "us-east-1").add_auth(signed)
        headers = {
            "HTTP_" + name.upper().replace("-", "_"): value
            for name, value in signed.headers.items()
            if name.lower() != "content-type"
        }
        request = factory.post(
            "/", data=body, content_type=content_type, HTTP_HOST="127.0.0.1", **headers
        )
        response = root(request)
        if response.status_code != 200:
            raise SystemExit(response.content.decode())

    for _ in range(20):
        call()
    with CaptureQueriesContext(connection) as captured:
        call()
    print(f"SQL statements in one signed GetUser: {len(captured.captured_queries)}")
    for query in captured.captured_queries:
        print("   ", query["sql"][:120])
    started = time.perf_counter()
    for _ in range(calls):
        call()
    elapsed = time.perf_counter() - started
    print(f"in-process: {calls / elapsed:.1f} calls/s, {elapsed / calls * 1000:.2f} ms per call")
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(calls):
        call()
    profiler.disable()
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)


def _median_round(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """The round with the median GetUser rate (a whole round, so its figures belong together)."""
    ordered = sorted(rounds, key=lambda r: r["get_user"]["rps"])
    return ordered[len(ordered) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="profile GetUser in-process")
    parser.add_argument(
        "--no-worker",
        action="store_true",
        help="no Celery worker: the published store stays trusted for "
        "PORTCULLIS_POLICY_MAX_STALENESS_S, then decisions fall back to PostgreSQL",
    )
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        raise SystemExit("Set DATABASE_URL to a PostgreSQL database: the benchmark measures it.")
    _prepare()
    if args.profile:
        _profile(args.requests)
        return
    worker = None if args.no_worker else _start_worker()
    process, url = _start_server(args.workers)
    try:
        rounds = []
        for number in range(1, args.rounds + 1):
            get = _run(url, args.requests, args.concurrency, "get_user")
            pairs = _run(url, args.requests // 2, args.concurrency, "create_delete")
            pair_calls = {
                "pairs_per_s": pairs["rps"],
                "calls_per_s": round(pairs["rps"] * 2, 1),
                "p50_ms": pairs["p50_ms"],
                "p99_ms": pairs["p99_ms"],
            }
            rounds.append({"get_user": get, "create_delete_user": pair_calls})
            print(f"round {number}:")
            _print_round(get, pair_calls, args.concurrency)
        median = _median_round(rounds)
        print(f"median of {len(rounds)} rounds (by GetUser calls/s):")
        _print_round(median["get_user"], median["create_delete_user"], args.concurrency)
        print(
            json.dumps(
                {
                    **median,
                    "rounds": rounds,
                    "concurrency": args.concurrency,
                    "gunicorn_workers": args.workers,
                    "celery_worker": worker is not None,
                }
            )
        )
    finally:
        process.terminate()
        process.wait(timeout=10)
        if worker is not None:
            worker.terminate()
            worker.wait(timeout=20)


def _print_round(get: dict[str, Any], pairs: dict[str, Any], concurrency: int) -> None:
    print(
        f"  GetUser:               {get['rps']:8.1f} calls/s  p50 {get['p50_ms']:.2f} ms  "
        f"p99 {get['p99_ms']:.2f} ms  ({get['calls']} calls, {concurrency} clients)"
    )
    print(
        f"  CreateUser+DeleteUser: {pairs['pairs_per_s']:8.1f} pairs/s ({pairs['calls_per_s']} "
        f"calls/s)  p50 {pairs['p50_ms']:.2f} ms  p99 {pairs['p99_ms']:.2f} ms per pair"
    )


if __name__ == "__main__":
    main()

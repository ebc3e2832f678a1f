"""Benchmark of the Query API: signed calls per second and latency, on PostgreSQL.

    DATABASE_URL=postgres://... python -m api.bench [--requests 500] [--concurrency 4]

Starts gunicorn on loopback against the configured database, prepares an account
(``999999999999``) with an imported administrator key, then drives it with boto3 clients
(SigV4 signing included in the client's time): ``GetUser`` and ``CreateUser`` + ``DeleteUser``
pairs. Prints the figures and, last, one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
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


def _run(url: str, requests: int, concurrency: int, work: Any) -> dict[str, float]:
    latencies: list[float] = []
    lock = threading.Lock()
    per_thread = requests // concurrency

    def worker(index: int) -> None:
        client = _client(url)
        work(client, index, -1)  # warm the connection and the client
        mine = []
        for i in range(per_thread):
            started = time.perf_counter()
            work(client, index, i)
            mine.append(time.perf_counter() - started)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "rps": round(len(latencies) / elapsed, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 2),
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 2),
        "calls": len(latencies),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        raise SystemExit("Set DATABASE_URL to a PostgreSQL database: the benchmark measures it.")
    _prepare()
    process, url = _start_server(args.workers)
    try:

        def get_user(client: Any, thread: int, i: int) -> None:
            client.get_user(UserName="bench")

        def create_delete(client: Any, thread: int, i: int) -> None:
            name = f"bench-tmp-{thread}-{i}"
            client.create_user(UserName=name)
            client.delete_user(UserName=name)

        get = _run(url, args.requests, args.concurrency, get_user)
        print(
            f"GetUser:               {get['rps']:8.1f} calls/s  p50 {get['p50_ms']:.2f} ms  "
            f"p99 {get['p99_ms']:.2f} ms  ({get['calls']} calls, {args.concurrency} clients)"
        )
        pairs = _run(url, args.requests // 2, args.concurrency, create_delete)
        pair_calls = {
            "pairs_per_s": pairs["rps"],
            "calls_per_s": round(pairs["rps"] * 2, 1),
            "p50_ms": pairs["p50_ms"],
            "p99_ms": pairs["p99_ms"],
        }
        print(
            f"CreateUser+DeleteUser: {pairs['rps']:8.1f} pairs/s ({pair_calls['calls_per_s']} "
            f"calls/s)  p50 {pairs['p50_ms']:.2f} ms  p99 {pairs['p99_ms']:.2f} ms per pair"
        )
        print(
            json.dumps(
                {
                    "get_user": get,
                    "create_delete_user": pair_calls,
                    "concurrency": args.concurrency,
                    "gunicorn_workers": args.workers,
                }
            )
        )
    finally:
        process.terminate()
        process.wait(timeout=10)


if __name__ == "__main__":
    main()

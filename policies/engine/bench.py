"""Benchmark: decisions per second and per-decision latency, against moto and cedarpy.

    python -m policies.engine.bench [--quick] [--seed N]

For principals with 10, 100 and 1,000 statements (a seeded-random, realistic mix of exact
actions, service wildcards, NotAction, ARN wildcards, policy variables, conditions and
Deny statements) each engine decides the same request mix:

* portcullis: ``evaluate`` on a set compiled once;
* moto: ``moto.iam.access_control.IAMPolicy.is_action_permitted`` over the same documents,
  combined as moto's ``IAMRequestBase.check_action_permitted`` does. The IAMPolicy objects
  are built once outside the timing (moto itself re-parses them on every request), so its
  figures are better than moto achieves in use. moto ignores most condition operators;
  only its speed is compared;
* cedarpy: ``cedarpy.is_authorized`` with the statements translated to Cedar permit/forbid
  policies on the request's action, resource and context (equivalent in shape and cost;
  Cedar has no policy variables, so those become prefix patterns), pre-parsed once with
  ``cedarpy.PolicySet.from_str`` and an ``Entities`` handle.

Timing. Each engine decides small batches (20 requests for portcullis, 5 for the slower
two); a batch's time divided by its size is one sample, and p50/p99 are over samples. Every
batch is timed twice: with the thread's CPU clock (``time.thread_time_ns``: the time this
thread spent running, which is what "per decision on one core" means) and with the wall
clock (``time.perf_counter_ns``), each less that clock's own cost (the median of empty
measurements). ``p50_us``/``p99_us``/``per_s`` are CPU time; ``wall_p50_us``/
``wall_p99_us``/``wall_per_s`` are wall time, which on a shared machine also holds the time
other processes had the core, so its p99 measures the machine more than the engine. The
garbage collector stays on as in a server; portcullis is also measured with it off
(``gc_off_p99_us``) to show its share of the tail.

Compiling (parse + compile of 100 statements from text, fresh documents each time) is
timed both as a running server sees it (``compile_ms_100``: the engine's process-wide
caches of compiled patterns, CIDR blocks and operator names hold what earlier compiles
left) and from empty caches (``compile_ms_100_cold``).

The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import re
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from .catalog import ACTIONS
from .evaluator import (
    Principal,
    Request,
    SourcedPolicy,
    clear_shared_caches,
    compile_policy_set,
    evaluate,
)

ACCOUNT = "123456789012"
SERVICES: dict[str, list[str]] = {
    "iam": [a.split(":", 1)[1] for a in ACTIONS if a.startswith("iam:")],
    "sts": [a.split(":", 1)[1] for a in ACTIONS if a.startswith("sts:")],
    "s3": [
        "GetObject",
        "PutObject",
        "DeleteObject",
        "ListBucket",
        "GetBucketPolicy",
        "PutBucketPolicy",
        "GetObjectTagging",
        "PutObjectTagging",
        "ListAllMyBuckets",
    ],
    "dynamodb": [
        "GetItem",
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "Query",
        "Scan",
        "DescribeTable",
        "CreateTable",
        "DeleteTable",
        "BatchGetItem",
    ],
    "sqs": [
        "SendMessage",
        "ReceiveMessage",
        "DeleteMessage",
        "GetQueueUrl",
        "GetQueueAttributes",
        "CreateQueue",
        "DeleteQueue",
        "ListQueues",
    ],
    "kms": [
        "Encrypt",
        "Decrypt",
        "GenerateDataKey",
        "DescribeKey",
        "CreateKey",
        "ScheduleKeyDeletion",
        "ListKeys",
        "CreateGrant",
    ],
    "ec2": [
        "DescribeInstances",
        "RunInstances",
        "StartInstances",
        "StopInstances",
        "TerminateInstances",
        "DescribeVolumes",
        "CreateTags",
        "DescribeImages",
    ],
    "portcullis": ["Authorize"],
}
TEAMS = ["red", "blue", "green", "ops"]
USERS = ["alice", "bob", "carol", "dave", "erin"]


def _resource(rng: random.Random, service: str, name: str) -> str:
    if service == "iam":
        return f"arn:aws:iam::{ACCOUNT}:user/{name}"
    if service == "s3":
        return f"arn:aws:s3:::bucket-{name}/home/{name}/file{rng.randint(1, 9)}.txt"
    if service == "dynamodb":
        return f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/{name}-table"
    if service == "sqs":
        return f"arn:aws:sqs:us-east-1:{ACCOUNT}:{name}-queue"
    if service == "kms":
        return f"arn:aws:kms:us-east-1:{ACCOUNT}:key/{name}-0000-1111"
    if service == "ec2":
        return f"arn:aws:ec2:us-east-1:{ACCOUNT}:instance/i-{name}"
    if service == "sts":
        return f"arn:aws:iam::{ACCOUNT}:role/{name}-role"
    return f"arn:aws:portcullis:us-east-1:{ACCOUNT}:app/{name}"


def _statement(rng: random.Random, sid: int) -> dict[str, Any]:
    service = rng.choice(list(SERVICES))
    names = SERVICES[service]
    deny = rng.random() < 0.08
    stmt: dict[str, Any] = {"Sid": f"S{sid}", "Effect": "Deny" if deny else "Allow"}
    r = rng.random()
    if deny:
        # Denies in real policies guard a few destructive actions, not whole services.
        destructive = [a for a in names if a.startswith(("Delete", "Terminate", "Schedule"))]
        stmt["Action"] = [f"{service}:{a}" for a in rng.sample(destructive or names, 1)]
    elif r < 0.55:
        stmt["Action"] = [
            f"{service}:{a}" for a in rng.sample(names, min(len(names), rng.randint(1, 4)))
        ]
    elif r < 0.80:
        stmt["Action"] = f"{service}:{rng.choice(names)[:3]}*"
    elif r < 0.90:
        stmt["Action"] = f"{service}:*"
    elif r < 0.97:
        stmt["NotAction"] = [f"{service}:{a}" for a in rng.sample(names, min(len(names), 2))]
    else:
        stmt["Action"] = f"*:{rng.choice(['Get', 'List', 'Describe'])}*"
    user = rng.choice(USERS)
    r = rng.random()
    if r < 0.30:
        stmt["Resource"] = "*"
    elif r < 0.55:
        stmt["Resource"] = _resource(rng, service, user)
    elif r < 0.80:
        full = _resource(rng, service, user)
        stmt["Resource"] = full[: rng.randint(len(full) // 2, len(full) - 1)] + "*"
    elif r < 0.92:
        stmt["Resource"] = _resource(rng, service, "${aws:username}")
    else:
        stmt["Resource"] = _resource(rng, service, user).replace(ACCOUNT, "*", 1)
    r = rng.random()
    if deny and r < 0.5:
        stmt["Condition"] = {"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}}
    elif r < 0.12:
        stmt["Condition"] = {"StringEquals": {"aws:PrincipalTag/team": rng.choice(TEAMS)}}
    elif r < 0.20:
        stmt["Condition"] = {"IpAddress": {"aws:SourceIp": ["10.0.0.0/8", "192.168.0.0/16"]}}
    elif r < 0.25:
        stmt["Condition"] = {"DateLessThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}}
    elif r < 0.30:
        stmt["Condition"] = {"NumericLessThan": {"aws:MultiFactorAuthAge": "3600"}}
    return stmt


def make_policies(rng: random.Random, statements: int) -> list[dict[str, Any]]:
    policies = []
    for start in range(0, statements, 10):
        stmts = [_statement(rng, i) for i in range(start, min(statements, start + 10))]
        policies.append({"Version": "2012-10-17", "Statement": stmts})
    return policies


def make_requests(rng: random.Random, count: int) -> list[tuple[str, str, str, dict[str, Any]]]:
    out = []
    for _ in range(count):
        service = rng.choice(list(SERVICES))
        action = f"{service}:{rng.choice(SERVICES[service])}"
        user = rng.choice(USERS)
        context: dict[str, Any] = {"aws:SourceIp": rng.choice(["10.1.2.3", "203.0.113.9"])}
        if rng.random() < 0.5:
            context["aws:MultiFactorAuthPresent"] = rng.random() < 0.8
            context["aws:MultiFactorAuthAge"] = rng.randint(0, 7200)
        context["aws:CurrentTime"] = "2026-01-01T00:00:00Z"
        out.append((user, action, _resource(rng, service, rng.choice([user, "zed"])), context))
    return out


def _principal(user: str) -> Principal:
    return Principal(
        arn=f"arn:aws:iam::{ACCOUNT}:user/{user}",
        account=ACCOUNT,
        kind="user",
        user_id="AIDA" + user.upper().ljust(17, "X"),
        username=user,
        tags={"team": TEAMS[len(user) % len(TEAMS)]},
    )


# ---- cedar translation ------------------------------------------------------------------


def _cedar_like(pattern: str) -> str:
    pattern = pattern.replace("${aws:username}", "*").replace("?", "*")
    return '"' + pattern.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _cedar_statement(stmt: dict[str, Any]) -> str:
    parts = []
    key = "Action" if "Action" in stmt else "NotAction"
    actions = stmt[key] if isinstance(stmt[key], list) else [stmt[key]]
    test = " || ".join(
        f"context.action like {_cedar_like(a.lower())}"
        if "*" in a
        else f'context.action == "{a.lower()}"'
        for a in actions
    )
    parts.append(f"({test})" if key == "Action" else f"!({test})")
    resource = stmt["Resource"]
    if resource != "*":
        parts.append(f"context.resource like {_cedar_like(resource)}")
    for op, block in stmt.get("Condition", {}).items():
        for ckey, value in block.items():
            field = ckey.split(":")[1].replace("/", "_").lower()
            if op == "BoolIfExists":
                parts.append(f"(!(context has {field}) || context.{field} == {value})")
            elif op == "StringEquals":
                parts.append(f'(context has {field} && context.{field} == "{value}")')
            elif op == "IpAddress":
                ranges = " || ".join(f'ip(context.{field}).isInRange(ip("{v}"))' for v in value)
                parts.append(f"(context has {field} && ({ranges}))")
            elif op == "DateLessThan":
                parts.append("(context has epochtime && context.epochtime < 1893456000)")
            elif op == "NumericLessThan":
                parts.append(f"(context has {field} && context.{field} < {value})")
    effect = "forbid" if stmt["Effect"] == "Deny" else "permit"
    return f"{effect}(principal, action, resource) when {{ {' && '.join(parts)} }};"


def _cedar_context(
    action: str, resource: str, context: dict[str, Any], user: str
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "action": action.lower(),
        "resource": resource,
        "sourceip": context["aws:SourceIp"],
        "epochtime": 1767225600,
        "principaltag_team": TEAMS[len(user) % len(TEAMS)],
    }
    if "aws:MultiFactorAuthPresent" in context:
        out["multifactorauthpresent"] = context["aws:MultiFactorAuthPresent"]
        out["multifactorauthage"] = context["aws:MultiFactorAuthAge"]
    return out


# ---- measuring --------------------------------------------------------------------------


def _clock_costs() -> tuple[float, float]:
    """The median cost (ns) of reading both clocks around an empty batch."""
    cpu = time.thread_time_ns
    wall = time.perf_counter_ns
    cpu_costs = []
    wall_costs = []
    for _ in range(2000):
        w0 = wall()
        c0 = cpu()
        c1 = cpu()
        w1 = wall()
        cpu_costs.append(c1 - c0)
        wall_costs.append(w1 - w0)
    return statistics.median(cpu_costs), statistics.median(wall_costs)


def _percentiles(samples: list[float]) -> tuple[float, float]:
    samples.sort()
    p50 = statistics.median(samples)
    p99 = samples[min(len(samples) - 1, int(len(samples) * 0.99))]
    return round(p50, 2), round(p99, 2)


def measure(
    decide: Callable[[Any], object],
    items: Sequence[Any],
    *,
    batch: int,
    rounds: int,
    gc_off: bool = False,
) -> dict[str, float]:
    for item in items[: min(len(items), 200)]:
        decide(item)
    cpu_cost, wall_cost = _clock_costs()
    cpu_samples: list[float] = []
    wall_samples: list[float] = []
    cpu_total = 0.0
    wall_total = 0.0
    decisions = 0
    pos = 0
    cpu = time.thread_time_ns
    wall = time.perf_counter_ns
    was_enabled = gc.isenabled()
    if gc_off:
        gc.disable()
    try:
        for _ in range(rounds):
            chunk = items[pos : pos + batch]
            if len(chunk) < batch:
                pos = 0
                chunk = items[:batch]
            pos += batch
            w0 = wall()
            c0 = cpu()
            for item in chunk:
                decide(item)
            c1 = cpu()
            w1 = wall()
            cpu_ns = max(0.0, c1 - c0 - cpu_cost)
            wall_ns = max(0.0, w1 - w0 - wall_cost)
            cpu_samples.append(cpu_ns / len(chunk) / 1000.0)
            wall_samples.append(wall_ns / len(chunk) / 1000.0)
            cpu_total += cpu_ns
            wall_total += wall_ns
            decisions += len(chunk)
    finally:
        if gc_off and was_enabled:
            gc.enable()
    p50, p99 = _percentiles(cpu_samples)
    wall_p50, wall_p99 = _percentiles(wall_samples)
    return {
        "p50_us": p50,
        "p99_us": p99,
        "per_s": round(decisions / (cpu_total / 1e9)) if cpu_total else 0,
        "wall_p50_us": wall_p50,
        "wall_p99_us": wall_p99,
        "wall_per_s": round(decisions / (wall_total / 1e9)) if wall_total else 0,
    }


def _cedar_decide(cedarpy: Any, policies: Any, entities: Any, request: dict[str, Any]) -> object:
    return cedarpy.is_authorized(request, policies, entities)


def _line(engine: str, size: int, stats: dict[str, float]) -> str:
    line = (
        f"{engine:<10} {size:>5} statements: p50 {stats['p50_us']} us, "
        f"p99 {stats['p99_us']} us, {stats['per_s']}/s (CPU time); wall p50 "
        f"{stats['wall_p50_us']} us, p99 {stats['wall_p99_us']} us"
    )
    if "gc_off_p99_us" in stats:
        line += f"; p99 with GC off {stats['gc_off_p99_us']} us"
    return line


def run(quick: bool, seed: int, out: Callable[[str], None]) -> dict[str, Any]:
    import cedarpy
    from moto.iam.access_control import IAMPolicy, PermissionResult

    rng = random.Random(seed)
    requests = make_requests(rng, 2000)
    result: dict[str, Any] = {"portcullis": {}, "moto": {}, "cedarpy": {}}
    scale = 0.2 if quick else 1.0
    for size in (10, 100, 1000):
        docs = make_policies(rng, size)
        sources = [
            SourcedPolicy(f"arn:aws:iam::{ACCOUNT}:policy/p{i}", json.dumps(d))
            for i, d in enumerate(docs)
        ]
        policy_set = compile_policy_set(identity=sources)
        ours = [Request(_principal(u), a, r, c) for u, a, r, c in requests]
        decide = partial(evaluate, policy_set)
        rounds = int(15000 * scale)
        stats = measure(decide, ours, batch=20, rounds=rounds)
        stats["gc_off_p99_us"] = measure(decide, ours, batch=20, rounds=rounds, gc_off=True)[
            "p99_us"
        ]
        result["portcullis"][str(size)] = stats
        out(_line("portcullis", size, stats))

        moto_policies = [IAMPolicy(json.dumps(d)) for d in docs]

        def moto_decide(
            item: tuple[str, str, str, dict[str, Any]], moto_policies: list[Any] = moto_policies
        ) -> bool:
            _, action, resource, context = item
            permitted = False
            values = {k: str(v) for k, v in context.items()}
            for policy in moto_policies:
                res = policy.is_action_permitted(action, resource, None, values)
                if res == PermissionResult.DENIED:
                    return False
                if res == PermissionResult.PERMITTED:
                    permitted = True
            return permitted

        moto_rounds = max(20, int({10: 2000, 100: 400, 1000: 60}[size] * scale))
        stats = measure(moto_decide, requests, batch=5, rounds=moto_rounds)
        result["moto"][str(size)] = stats
        out(_line("moto", size, stats))

        cedar_text = "\n".join(_cedar_statement(s) for d in docs for s in d["Statement"])
        cedar_set = cedarpy.PolicySet.from_str(cedar_text)
        entities = cedarpy.Entities.from_json_str("[]")
        cedar_requests = [
            {
                "principal": f'User::"{u}"',
                "action": 'Action::"call"',
                "resource": 'Resource::"r"',
                "context": _cedar_context(a, r, c, u),
            }
            for u, a, r, c in requests
        ]
        check = cedarpy.is_authorized(cedar_requests[0], cedar_set, entities)
        if check.diagnostics.errors:
            out(f"cedarpy diagnostics: {check.diagnostics.errors[:1]}")
        cedar_rounds = max(20, int({10: 3000, 100: 1500, 1000: 200}[size] * scale))
        stats = measure(
            partial(_cedar_decide, cedarpy, cedar_set, entities),
            cedar_requests,
            batch=5,
            rounds=cedar_rounds,
        )
        result["cedarpy"][str(size)] = stats
        out(_line("cedarpy", size, stats))

    compile_rng = random.Random(seed + 1)
    for key, cold in (("compile_ms_100", False), ("compile_ms_100_cold", True)):
        timings = []
        for _ in range(5 if quick else 20):
            # Fresh documents each time, from text: parse and compile.
            sources = [
                SourcedPolicy(f"p{i}", json.dumps(d))
                for i, d in enumerate(make_policies(compile_rng, 100))
            ]
            if cold:
                clear_shared_caches()
                re.purge()
            t0 = time.thread_time_ns()
            compile_policy_set(identity=sources)
            timings.append((time.thread_time_ns() - t0) / 1e6)
        result[key] = round(statistics.median(timings), 3)
    out(
        f"compile 100 statements (parse + compile, CPU time): {result['compile_ms_100']} ms; "
        f"from empty caches {result['compile_ms_100_cold']} ms"
    )
    p100 = result["portcullis"]["100"]["p50_us"]
    for other in ("moto", "cedarpy"):
        ratio = result[other]["100"]["p50_us"] / p100 if p100 else 0.0
        out(f"{other} / portcullis at 100 statements (p50): {ratio:.1f}x")
    return result


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer rounds, a few seconds")
    parser.add_argument("--seed", type=int, default=20251127)
    args = parser.parse_args(argv)
    result = run(args.quick, args.seed, print)
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()

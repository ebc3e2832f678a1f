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

Latency is measured with ``time.perf_counter_ns`` around small batches and divided by the
batch size, so the timer's own cost does not dominate; p50/p99 are over batches. The last
line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from .catalog import ACTIONS
from .evaluator import Principal, Request, SourcedPolicy, compile_policy_set, evaluate

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


def measure(
    decide: Callable[[Any], object], items: Sequence[Any], *, batch: int, rounds: int
) -> dict[str, float]:
    for item in items[: min(len(items), 200)]:
        decide(item)
    samples: list[float] = []
    total_ns = 0
    decisions = 0
    n = len(items)
    pos = 0
    perf = time.perf_counter_ns
    for _ in range(rounds):
        chunk = items[pos : pos + batch]
        if len(chunk) < batch:
            pos = 0
            chunk = items[:batch]
        pos += batch
        t0 = perf()
        for item in chunk:
            decide(item)
        elapsed = perf() - t0
        samples.append(elapsed / len(chunk) / 1000.0)
        total_ns += elapsed
        decisions += len(chunk)
    samples.sort()
    del n
    return {
        "p50_us": round(statistics.median(samples), 2),
        "p99_us": round(samples[min(len(samples) - 1, int(len(samples) * 0.99))], 2),
        "per_s": round(decisions / (total_ns / 1e9)),
    }


def _cedar_decide(cedarpy: Any, policies: Any, entities: Any, request: dict[str, Any]) -> object:
    return cedarpy.is_authorized(request, policies, entities)


def _line(engine: str, size: int, stats: dict[str, float]) -> str:
    return (
        f"{engine:<10} {size:>5} statements: p50 {stats['p50_us']} us, "
        f"p99 {stats['p99_us']} us, {stats['per_s']}/s"
    )


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
        stats = measure(partial(evaluate, policy_set), ours, batch=20, rounds=int(15000 * scale))
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

    timings = []
    compile_rng = random.Random(seed + 1)
    for _ in range(5 if quick else 20):
        # Fresh documents each time, from text: parse and compile, nothing reused.
        sources = [
            SourcedPolicy(f"p{i}", json.dumps(d))
            for i, d in enumerate(make_policies(compile_rng, 100))
        ]
        t0 = time.perf_counter_ns()
        compile_policy_set(identity=sources)
        timings.append((time.perf_counter_ns() - t0) / 1e6)
    result["compile_ms_100"] = round(statistics.median(timings), 3)
    out(f"compile 100 statements (parse + compile): {result['compile_ms_100']} ms")
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

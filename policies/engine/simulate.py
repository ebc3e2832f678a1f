"""IAM's SimulateCustomPolicy, as a function and as a batch command.

    python -m policies.engine.simulate < requests.jsonl > results.jsonl

Each input line is one JSON object with SimulateCustomPolicy's request fields
(https://docs.aws.amazon.com/IAM/latest/APIReference/API_SimulateCustomPolicy.html):
``PolicyInputList``, ``PermissionsBoundaryPolicyInputList``, ``ResourcePolicy``,
``ResourceOwner``, ``CallerArn``, ``ActionNames``, ``ResourceArns``, ``ContextEntries``.
Each output line is the response's ``EvaluationResults`` (one per action and resource),
or ``{"Error": {"Code": ..., "Message": ...}}`` for a line that cannot be simulated; the
batch carries on after an error.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from .evaluator import (
    Principal,
    Request,
    SourcedPolicy,
    compile_policy_set,
    compile_resource_policy,
    evaluate,
)
from .model import Policy, PolicyParseError, PolicyType
from .parser import parse_policy

DEFAULT_ACCOUNT = "123456789012"


class SimulationError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _string_list(request: dict[str, Any], name: str, *, required: bool) -> list[str]:
    value = request.get(name)
    if value is None:
        if required:
            raise SimulationError("InvalidInput", f"{name} is required.")
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise SimulationError("InvalidInput", f"{name} must be a list of strings.")
    return value


def _parse(text: str, name: str, policy_type: PolicyType) -> Policy:
    try:
        return parse_policy(text, policy_type=policy_type, positions=True)
    except PolicyParseError as exc:
        raise SimulationError("MalformedPolicyDocument", f"{name}: {exc.message}") from exc


def _context_value(kind: str, value: str) -> Any:
    if kind == "numeric":
        try:
            return int(value)
        except ValueError:
            return float(value)
    if kind == "boolean":
        if value.lower() not in ("true", "false"):
            raise ValueError(value)
        return value.lower() == "true"
    return value


def _context(entries: Any) -> dict[str, Any]:
    if entries is None:
        return {}
    if not isinstance(entries, list):
        raise SimulationError("InvalidInput", "ContextEntries must be a list.")
    context: dict[str, Any] = {}
    for entry in entries:
        if not isinstance(entry, dict):
            raise SimulationError("InvalidInput", "Each context entry must be an object.")
        name = entry.get("ContextKeyName")
        values = entry.get("ContextKeyValues")
        kind = entry.get("ContextKeyType", "string")
        if not isinstance(name, str) or not isinstance(values, list) or not isinstance(kind, str):
            raise SimulationError(
                "InvalidInput",
                "A context entry needs ContextKeyName, ContextKeyValues and ContextKeyType.",
            )
        base = kind[:-4] if kind.endswith("List") else kind
        if base not in ("string", "numeric", "boolean", "ip", "binary", "date"):
            raise SimulationError("InvalidInput", f"Unknown ContextKeyType {kind}.")
        try:
            converted = [_context_value(base, str(v)) for v in values]
        except ValueError as exc:
            raise SimulationError(
                "InvalidInput", f"A value of {name} is not of type {kind}."
            ) from exc
        context[name] = converted if kind.endswith("List") else (converted[0] if converted else [])
    return context


def _principal(caller_arn: str | None, owner_account: str) -> Principal:
    if not caller_arn:
        return Principal(
            arn=f"arn:aws:iam::{owner_account}:user/SimulatedCaller",
            account=owner_account,
            kind="user",
            username="SimulatedCaller",
        )
    parts = caller_arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn":
        raise SimulationError("InvalidInput", f"CallerArn {caller_arn} is not an ARN.")
    account, resource = parts[4], parts[5]
    if resource == "root":
        return Principal(arn=caller_arn, account=account, kind="root")
    if resource.startswith("user/"):
        return Principal(
            arn=caller_arn, account=account, kind="user", username=resource.rsplit("/", 1)[1]
        )
    if resource.startswith("assumed-role/"):
        role = resource.split("/")[1]
        return Principal(
            arn=caller_arn,
            account=account,
            kind="role_session",
            role_arn=f"arn:aws:iam::{account}:role/{role}",
        )
    if resource.startswith("role/"):
        name = resource.rsplit("/", 1)[1]
        return Principal(
            arn=f"arn:aws:sts::{account}:assumed-role/{name}/SimulatedSession",
            account=account,
            kind="role_session",
            role_arn=caller_arn,
        )
    if resource.startswith("federated-user/"):
        return Principal(arn=caller_arn, account=account, kind="federated_user")
    raise SimulationError("InvalidInput", f"CallerArn {caller_arn} is not a user or role.")


def _position(policy: Policy, index: int, end: bool) -> dict[str, int]:
    span = policy.statements[index].span
    if span is None:
        return {"Line": 1, "Column": 1}
    return {"Line": span[2], "Column": span[3]} if end else {"Line": span[0], "Column": span[1]}


def simulate_custom_policy(request: dict[str, Any]) -> dict[str, Any]:
    """Run SimulateCustomPolicy; raises SimulationError (``code``, ``message``) on bad input."""
    if not isinstance(request, dict):
        raise SimulationError("InvalidInput", "The request must be a JSON object.")
    policies: dict[str, tuple[Policy, str]] = {}

    def load(texts: Sequence[str], list_name: str, kind: str) -> list[SourcedPolicy]:
        out = []
        for i, text in enumerate(texts, start=1):
            pid = f"{list_name}.{i}"
            policy = _parse(text, pid, PolicyType.IDENTITY)
            policies[pid] = (policy, kind)
            out.append(SourcedPolicy(pid, policy))
        return out

    identity = load(
        _string_list(request, "PolicyInputList", required=True), "PolicyInputList", "IAM Policy"
    )
    boundary_texts = _string_list(request, "PermissionsBoundaryPolicyInputList", required=False)
    boundary = (
        load(boundary_texts, "PermissionsBoundaryPolicyInputList", "IAM Policy")
        if boundary_texts
        else None
    )
    actions = _string_list(request, "ActionNames", required=True)
    resources = _string_list(request, "ResourceArns", required=False) or ["*"]
    owner = request.get("ResourceOwner")
    if owner is not None and not isinstance(owner, str):
        raise SimulationError("InvalidInput", "ResourceOwner must be an ARN.")
    caller = request.get("CallerArn")
    if caller is not None and not isinstance(caller, str):
        raise SimulationError("InvalidInput", "CallerArn must be an ARN.")
    owner_account = owner.split(":")[4] if owner and owner.count(":") >= 5 else None
    principal = _principal(caller, owner_account or DEFAULT_ACCOUNT)
    resource_policy = None
    if request.get("ResourcePolicy") is not None:
        text = request["ResourcePolicy"]
        if not isinstance(text, str):
            raise SimulationError("InvalidInput", "ResourcePolicy must be a string.")
        policy = _parse(text, "ResourcePolicy", PolicyType.RESOURCE)
        policies["ResourcePolicy"] = (policy, "Resource Policy")
        resource_policy = compile_resource_policy(
            SourcedPolicy("ResourcePolicy", policy),
            resource_account=owner_account or principal.account,
        )
    context = _context(request.get("ContextEntries"))
    policy_set = compile_policy_set(identity=identity, boundary=boundary)
    results = []
    for action in actions:
        for resource in resources:
            decision = evaluate(
                policy_set,
                Request(
                    principal=principal,
                    action=action,
                    resource=resource,
                    context=context,
                    resource_account=owner_account,
                ),
                resource_policy=resource_policy,
            )
            matched = []
            for ms in decision.matched_statements:
                policy, kind = policies[ms.policy_id]
                matched.append(
                    {
                        "SourcePolicyId": ms.policy_id,
                        "SourcePolicyType": kind,
                        "StartPosition": _position(policy, ms.statement_index, False),
                        "EndPosition": _position(policy, ms.statement_index, True),
                    }
                )
            results.append(
                {
                    "EvalActionName": action,
                    "EvalResourceName": resource,
                    "EvalDecision": decision.decision,
                    "MatchedStatements": matched,
                    "MissingContextValues": list(decision.missing_context_values),
                }
            )
    return {"EvaluationResults": results, "IsTruncated": False}


def run(stdin: TextIO, stdout: TextIO) -> int:
    """Simulate every line of ``stdin``; returns how many lines failed."""
    failures = 0
    for line in stdin:
        if not line.strip():
            continue
        try:
            try:
                request = json.loads(line)
            except ValueError as exc:
                raise SimulationError("MalformedInput", f"The line is not JSON: {exc}") from exc
            out: dict[str, Any] = simulate_custom_policy(request)
        except SimulationError as exc:
            failures += 1
            out = {"Error": {"Code": exc.code, "Message": exc.message}}
        stdout.write(json.dumps(out) + "\n")
        stdout.flush()
    return failures


def main() -> None:
    run(sys.stdin, sys.stdout)


if __name__ == "__main__":
    main()

"""The cast of the engine tests, and a helper to ask one question.

- Alice is a normal IAM user in account 111111111111 (the account most tests use).
- Bob is a user in another account, 222222222222, for cross-account rules.
- The deployer role in Alice's account, and a session of it, for session and role rules.
- The account root user, who is allowed everything in its own account.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from policies.engine import (
    CompiledResourcePolicy,
    Decision,
    Principal,
    Request,
    SourcedPolicy,
    compile_policy_set,
    compile_resource_policy,
    evaluate,
)

ACCOUNT = "111111111111"
OTHER = "222222222222"

ALICE = Principal(
    arn=f"arn:aws:iam::{ACCOUNT}:user/alice",
    account=ACCOUNT,
    kind="user",
    user_id="AIDAALICE00000000001",
    username="alice",
    tags={"team": "red"},
)
BOB = Principal(
    arn=f"arn:aws:iam::{OTHER}:user/bob",
    account=OTHER,
    kind="user",
    user_id="AIDABOB0000000000001",
    username="bob",
)
DEPLOYER_ROLE = f"arn:aws:iam::{ACCOUNT}:role/deployer"
DEPLOYER_SESSION = Principal(
    arn=f"arn:aws:sts::{ACCOUNT}:assumed-role/deployer/ci",
    account=ACCOUNT,
    kind="role_session",
    user_id="AROADEPLOYER00000001:ci",
    role_arn=DEPLOYER_ROLE,
)
ROOT = Principal(arn=f"arn:aws:iam::{ACCOUNT}:root", account=ACCOUNT, kind="root")


def doc(*statements: Mapping[str, Any], version: str | None = "2012-10-17") -> str:
    body: dict[str, Any] = {"Statement": list(statements)}
    if version is not None:
        body = {"Version": version, **body}
    return json.dumps(body)


def allow(action: Any, resource: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action: Any, resource: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


def sources(*docs: str, prefix: str = "p") -> list[SourcedPolicy]:
    return [SourcedPolicy(f"{prefix}{i + 1}", d) for i, d in enumerate(docs)]


def decide(
    identity: Sequence[str],
    action: str,
    resource: str = "*",
    context: Mapping[str, Any] | None = None,
    *,
    principal: Principal = ALICE,
    boundary: Sequence[str] | None = None,
    session: Sequence[str] | None = None,
    resource_policy: CompiledResourcePolicy | None = None,
    resource_account: str | None = None,
) -> Decision:
    policy_set = compile_policy_set(
        identity=sources(*identity),
        boundary=None if boundary is None else sources(*boundary, prefix="b"),
        session=None if session is None else sources(*session, prefix="s"),
    )
    request = Request(
        principal=principal,
        action=action,
        resource=resource,
        context=dict(context or {}),
        resource_account=resource_account,
    )
    return evaluate(policy_set, request, resource_policy=resource_policy)


def resource_policy(text: str, account: str = ACCOUNT) -> CompiledResourcePolicy:
    return compile_resource_policy(SourcedPolicy("bucket-policy", text), resource_account=account)


def when(operator: str, key: str, values: Any, effect: str = "Allow") -> str:
    """A one-statement policy allowing (or denying) iam:GetUser on * under one condition."""
    return doc(
        {
            "Effect": effect,
            "Action": "iam:GetUser",
            "Resource": "*",
            "Condition": {operator: {key: values}},
        }
    )


def cond(operator: str, key: str, values: Any, context: Mapping[str, Any]) -> bool:
    """Whether a condition matches ``context`` (via an Allow statement)."""
    return decide([when(operator, key, values)], "iam:GetUser", "*", context).allowed

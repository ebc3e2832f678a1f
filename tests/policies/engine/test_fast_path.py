"""The fast decision path and the Decision it returns.

``evaluate`` stops at the first matching Allow and leaves the matched statements and the
missing context keys to be worked out when first read. These tests hold the fast path to
the full scan (same outcome, same reason, same reported statements and keys) and check
that a Decision still behaves as the value the rest of Portcullis relies on.
"""

from __future__ import annotations

import copy
import pickle
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policies.engine import (
    Decision,
    MatchedStatement,
    Request,
    SourcedPolicy,
    compile_policy_set,
    evaluate,
)
from policies.engine.evaluator import _evaluate_identity

from .cast import ACCOUNT, ALICE, DEPLOYER_SESSION, OTHER, allow, deny, doc, sources

BUCKET = "arn:aws:s3:::reports"


def test_it_reports_every_matching_allow_though_one_is_enough_to_allow() -> None:
    policy_set = compile_policy_set(
        identity=sources(
            doc(
                allow("s3:GetObject", "*"),
                allow("s3:Get*", f"{BUCKET}/q1.csv"),
                allow("s3:*", f"{BUCKET}/*", Sid="Bucket"),
                allow("s3:GetObject", f"{BUCKET}/q2.csv"),
            )
        )
    )
    decision = evaluate(policy_set, Request(ALICE, "s3:GetObject", f"{BUCKET}/q1.csv"))
    assert decision.allowed
    assert [(m.statement_index, m.sid) for m in decision.matched_statements] == [
        (0, None),
        (1, None),
        (2, "Bucket"),
    ]


def test_it_reports_missing_keys_of_conditions_after_the_first_matching_allow() -> None:
    policy_set = compile_policy_set(
        identity=sources(
            doc(
                allow("s3:GetObject", "*"),
                allow("s3:GetObject", "*", Condition={"Bool": {"aws:SecureTransport": "true"}}),
            )
        )
    )
    decision = evaluate(policy_set, Request(ALICE, "s3:GetObject", f"{BUCKET}/q1.csv"))
    assert decision == Decision(
        "allowed",
        (MatchedStatement("p1", "identity", 0, None, "Allow"),),
        ("aws:SecureTransport",),
        "",
    )


def test_it_reports_every_matching_deny_of_an_explicit_deny() -> None:
    policy_set = compile_policy_set(
        identity=sources(
            doc(
                allow("s3:*", "*"),
                deny("s3:DeleteObject", f"{BUCKET}/*"),
                deny(
                    "s3:Delete*",
                    "*",
                    Condition={"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}},
                ),
            )
        )
    )
    decision = evaluate(policy_set, Request(ALICE, "s3:DeleteObject", f"{BUCKET}/q1.csv"))
    assert decision == Decision(
        "explicitDeny",
        (
            MatchedStatement("p1", "identity", 1, None, "Deny"),
            MatchedStatement("p1", "identity", 2, None, "Deny"),
        ),
        ("aws:MultiFactorAuthPresent",),
        "identity-based policy",
    )


def test_it_reports_missing_keys_of_a_boundary_on_an_identity_implicit_deny() -> None:
    policy_set = compile_policy_set(
        identity=sources(doc(allow("iam:GetUser", "*"))),
        boundary=sources(
            doc(allow("iam:*", "*", Condition={"StringEquals": {"aws:RequestedRegion": "x"}})),
            prefix="b",
        ),
    )
    decision = evaluate(policy_set, Request(ALICE, "iam:CreateUser", "*"))
    assert decision == Decision(
        "implicitDeny",
        (),
        ("aws:RequestedRegion",),
        "no identity-based policy allows the iam:CreateUser action",
    )


def test_it_keeps_a_decision_immutable() -> None:
    policy_set = compile_policy_set(identity=sources(doc(allow("s3:*", "*"))))
    decision = evaluate(policy_set, Request(ALICE, "s3:GetObject", BUCKET))
    with pytest.raises(AttributeError):
        decision.decision = "explicitDeny"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        decision.matched_statements = ()  # type: ignore[misc]
    assert decision.allowed


def test_it_compares_hashes_copies_and_pickles_decisions_by_value() -> None:
    policy_set = compile_policy_set(identity=sources(doc(allow("s3:*", "*", Sid="All"))))
    decision = evaluate(policy_set, Request(ALICE, "s3:GetObject", BUCKET))
    expected = Decision(
        decision="allowed",
        matched_statements=(MatchedStatement("p1", "identity", 0, "All", "Allow"),),
        missing_context_values=(),
        deny_reason="",
    )
    assert decision == expected
    assert hash(decision) == hash(expected)
    assert decision != Decision("allowed")
    assert pickle.loads(pickle.dumps(decision)) == expected  # noqa: S301 (made just above)
    assert copy.deepcopy(decision) == expected
    assert repr(decision) == (
        "Decision(decision='allowed', matched_statements=(MatchedStatement(policy_id='p1', "
        "policy_kind='identity', statement_index=0, sid='All', effect='Allow'),), "
        "missing_context_values=(), deny_reason='')"
    )
    match decision:
        case Decision("allowed", matched):
            assert matched[0].sid == "All"
        case _:
            pytest.fail("a Decision matches by its fields")


# ---- the fast path agrees with the full scan ----------------------------------------------

ACTIONS = [
    "iam:GetUser",
    "iam:CreateUser",
    "s3:GetObject",
    "s3:DeleteObject",
    "sts:GetCallerIdentity",
]
ACTION_PATTERNS = ["*", "iam:*", "iam:Get*", "s3:*", "s3:GetObject", "*:Get*", "iam:?reateUser"]
RESOURCE_PATTERNS = [
    "*",
    f"{BUCKET}/*",
    f"{BUCKET}/home/*",
    f"{BUCKET}/home/alice/*",
    f"{BUCKET}/home/alice/a.txt",
    "arn:aws:s3:::rep*",
    f"{BUCKET}/home/${{aws:username}}/*",
    f"arn:aws:iam::{ACCOUNT}:user/alice",
    "arn:aws:iam::*:user/${aws:username}",
    "arn:aws:iam::*:user/a?ice",
    f"arn:aws:iam::{OTHER}:user/*",
]
REQUEST_RESOURCES = [
    f"{BUCKET}/home/alice/a.txt",
    f"{BUCKET}/home/bob/b.txt",
    f"{BUCKET}",
    f"arn:aws:iam::{ACCOUNT}:user/alice",
    f"arn:aws:iam::{OTHER}:user/alice",
    "*",
]
CONDITIONS: list[dict[str, Any]] = [
    {"Bool": {"aws:MultiFactorAuthPresent": "true"}},
    {"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}},
    {"StringEquals": {"aws:PrincipalTag/team": "red"}},
    {"IpAddress": {"aws:SourceIp": ["10.0.0.0/8"]}},
    {"NumericLessThan": {"aws:MultiFactorAuthAge": "3600"}},
    {"ForAnyValue:StringEquals": {"aws:TagKeys": ["team"]}},
    {"Null": {"aws:SourceVpc": "true"}, "StringLike": {"s3:prefix": "home/*"}},
]
statement = st.builds(
    lambda effect, not_action, actions, not_resource, resources, condition: {
        "Effect": effect,
        ("NotAction" if not_action else "Action"): actions,
        ("NotResource" if not_resource else "Resource"): resources,
        **({"Condition": condition} if condition is not None else {}),
    },
    st.sampled_from(["Allow", "Allow", "Deny"]),
    st.sampled_from([False, False, False, True]),
    st.lists(st.sampled_from(ACTION_PATTERNS), min_size=1, max_size=3),
    st.sampled_from([False, False, False, True]),
    st.lists(st.sampled_from(RESOURCE_PATTERNS), min_size=1, max_size=3),
    st.none() | st.sampled_from(CONDITIONS),
)
contexts = st.sampled_from(
    [
        {},
        {"aws:MultiFactorAuthPresent": True, "aws:MultiFactorAuthAge": 30},
        {"aws:SourceIp": "10.1.2.3", "aws:TagKeys": ["team"]},
        {"aws:SourceIp": "192.0.2.1", "aws:MultiFactorAuthPresent": "false", "s3:prefix": "x"},
    ]
)
policies = st.lists(st.lists(statement, min_size=1, max_size=6), max_size=3)


def _sources(prefix: str, docs: list[list[dict[str, Any]]]) -> list[SourcedPolicy]:
    return [SourcedPolicy(f"{prefix}{i}", doc(*stmts)) for i, stmts in enumerate(docs)]


@settings(max_examples=400, deadline=None)
@given(
    policies,
    st.none() | policies,
    st.none() | policies,
    st.sampled_from(ACTIONS),
    st.sampled_from(REQUEST_RESOURCES),
    contexts,
    st.booleans(),
)
def test_it_decides_as_the_full_scan_does(
    identity: list[list[dict[str, Any]]],
    boundary: list[list[dict[str, Any]]] | None,
    session: list[list[dict[str, Any]]] | None,
    action: str,
    resource: str,
    context: dict[str, Any],
    as_role_session: bool,
) -> None:
    policy_set = compile_policy_set(
        identity=_sources("p", identity),
        boundary=None if boundary is None else _sources("b", boundary),
        session=None if session is None else _sources("s", session),
    )
    principal = DEPLOYER_SESSION if as_role_session else ALICE
    request = Request(principal, action, resource, context)
    fast = evaluate(policy_set, request)
    full = _evaluate_identity(policy_set, request)
    assert (fast.decision, fast.deny_reason) == (full.decision, full.deny_reason)
    assert fast.matched_statements == full.matched_statements
    assert fast.missing_context_values == full.missing_context_values
    if fast.allowed:
        assert fast.matched_statements
        assert all(m.effect == "Allow" for m in fast.matched_statements)
    elif fast.decision == "explicitDeny":
        assert fast.matched_statements
        assert all(m.effect == "Deny" for m in fast.matched_statements)
    else:
        assert fast.matched_statements == ()


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.text("ab/", max_size=4), min_size=1, max_size=8),
    st.lists(st.text("ab/", max_size=4), min_size=1, max_size=4),
    st.text("ab/", max_size=6),
)
def test_it_finds_a_resource_by_prefix_and_exact_name_as_a_plain_scan_would(
    prefixes: list[str], names: list[str], key: str
) -> None:
    base = "arn:aws:s3:::b/"
    statements = [allow("s3:GetObject", f"{base}{p}*") for p in prefixes]
    statements += [allow("s3:GetObject", f"{base}{n}") for n in names]
    policy_set = compile_policy_set(identity=sources(doc(*statements)))
    resource = base + key
    decision = evaluate(policy_set, Request(ALICE, "s3:GetObject", resource))
    expected = any(key.startswith(p) for p in prefixes) or key in names
    assert decision.allowed == expected


ALL_CONTEXTS: list[dict[str, Any]] = [
    {},
    {"aws:MultiFactorAuthPresent": True, "aws:MultiFactorAuthAge": 30},
    {"aws:SourceIp": "10.1.2.3", "aws:TagKeys": ["team"], "aws:PrincipalTag/team": "red"},
    {"aws:SourceIp": "192.0.2.1", "aws:MultiFactorAuthPresent": "false", "s3:prefix": "x"},
    {"aws:SourceVpc": "vpc-1", "s3:prefix": "home/a", "aws:PrincipalTag/team": "blue"},
]


@settings(max_examples=400, deadline=None)
@given(
    policies,
    st.none() | policies,
    st.none() | policies,
    st.sampled_from(ACTIONS),
    st.sampled_from(REQUEST_RESOURCES),
)
def test_a_set_that_decides_without_context_decides_the_same_in_every_context(
    identity: list[list[dict[str, Any]]],
    boundary: list[list[dict[str, Any]]] | None,
    session: list[list[dict[str, Any]]] | None,
    action: str,
    resource: str,
) -> None:
    policy_set = compile_policy_set(
        identity=_sources("p", identity),
        boundary=None if boundary is None else _sources("b", boundary),
        session=None if session is None else _sources("s", session),
    )
    if not policy_set.decides_without_context(action):
        return
    outcomes = {
        evaluate(policy_set, Request(ALICE, action, resource, context)).decision
        for context in ALL_CONTEXTS
    }
    assert len(outcomes) == 1


def test_it_says_which_sets_decide_without_context() -> None:
    plain = compile_policy_set(
        identity=sources(doc(allow("s3:GetObject", f"{BUCKET}/*"), deny("s3:Delete*")))
    )
    assert plain.decides_without_context("s3:GetObject")

    conditional = compile_policy_set(
        identity=sources(
            doc(
                allow("s3:GetObject", "*"),
                deny("s3:GetObject", "*", Condition={"Bool": {"aws:SecureTransport": "false"}}),
            )
        )
    )
    assert not conditional.decides_without_context("s3:GetObject")
    assert conditional.decides_without_context("s3:PutObject")  # no statement can apply

    variable = compile_policy_set(
        identity=sources(doc(allow("s3:GetObject", f"{BUCKET}/home/${{aws:username}}/*")))
    )
    assert not variable.decides_without_context("s3:GetObject")

    bounded = compile_policy_set(
        identity=sources(doc(allow("s3:GetObject"))), boundary=sources(doc(allow("s3:*")))
    )
    assert not bounded.decides_without_context("s3:GetObject")

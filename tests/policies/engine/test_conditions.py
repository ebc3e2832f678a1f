"""Every condition operator, the set qualifiers, IfExists, Null, and failing closed.

https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html
"""

from __future__ import annotations

import base64
import ipaddress
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policies.engine.conditions import ConditionValueError, to_address

from .cast import cond, decide, when


@pytest.mark.parametrize(
    ("operator", "policy", "request_value", "expected"),
    [
        ("StringEquals", "red", "red", True),
        ("StringEquals", "red", "Red", False),
        ("StringEquals", ["blue", "red"], "red", True),
        ("StringNotEquals", "red", "red", False),
        ("StringNotEquals", "red", "blue", True),
        ("StringEqualsIgnoreCase", "RED", "red", True),
        ("StringNotEqualsIgnoreCase", "RED", "red", False),
        ("StringNotEqualsIgnoreCase", "RED", "blue", True),
        ("StringLike", "r*d", "rooted", True),
        ("StringLike", "r?d", "red", True),
        ("StringLike", "r?d", "reed", False),
        ("StringLike", "R*", "red", False),
        ("StringNotLike", "r*", "red", False),
        ("StringNotLike", "b*", "red", True),
    ],
)
def test_it_compares_strings(
    operator: str, policy: object, request_value: str, expected: bool
) -> None:
    assert (
        cond(
            operator, "aws:PrincipalTag/colour", policy, {"aws:PrincipalTag/colour": request_value}
        )
        is expected
    )


@pytest.mark.parametrize(
    ("operator", "policy", "request_value", "expected"),
    [
        ("NumericEquals", "10", 10, True),
        ("NumericEquals", "10", "10.0", True),
        ("NumericNotEquals", "10", 11, True),
        ("NumericNotEquals", "10", 10, False),
        ("NumericLessThan", "3600", 3599, True),
        ("NumericLessThan", "3600", 3600, False),
        ("NumericLessThanEquals", "3600", 3600, True),
        ("NumericGreaterThan", "3600", 3601, True),
        ("NumericGreaterThan", "3600", 3600, False),
        ("NumericGreaterThanEquals", "3600", 3600, True),
        ("NumericGreaterThanEquals", 1.5, "1.49", False),
    ],
)
def test_it_compares_numbers(
    operator: str, policy: object, request_value: object, expected: bool
) -> None:
    assert (
        cond(operator, "aws:MultiFactorAuthAge", policy, {"aws:MultiFactorAuthAge": request_value})
        is expected
    )


NOON = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("operator", "policy", "request_value", "expected"),
    [
        ("DateEquals", "2026-01-01T12:00:00Z", NOON, True),
        ("DateEquals", "2026-01-01T12:00:00Z", "2026-01-01T13:00:00+01:00", True),
        ("DateNotEquals", "2026-01-01T12:00:00Z", NOON, False),
        ("DateLessThan", "2026-01-02", NOON, True),
        ("DateLessThan", "2026-01-01", NOON, False),
        ("DateLessThanEquals", "2026-01-01T12:00:00Z", NOON, True),
        ("DateGreaterThan", "2025-12-31T23:59:59Z", NOON, True),
        ("DateGreaterThanEquals", str(int(NOON.timestamp())), NOON, True),
        ("DateGreaterThan", str(int(NOON.timestamp())), NOON, False),
        ("DateLessThan", "2026-01-01T12:00:01Z", int(NOON.timestamp()), True),
    ],
)
def test_it_compares_dates_in_iso_8601_and_epoch_seconds(
    operator: str, policy: str, request_value: object, expected: bool
) -> None:
    assert cond(operator, "aws:CurrentTime", policy, {"aws:CurrentTime": request_value}) is expected


def test_it_compares_booleans_whatever_their_spelling() -> None:
    assert cond("Bool", "aws:SecureTransport", "true", {"aws:SecureTransport": True})
    assert cond("Bool", "aws:SecureTransport", True, {"aws:SecureTransport": "TRUE"})
    assert not cond("Bool", "aws:SecureTransport", "true", {"aws:SecureTransport": False})


def test_it_compares_binary_values_as_base64() -> None:
    value = base64.b64encode(b"\x00\x01secret").decode()
    assert cond("BinaryEquals", "x:blob", value, {"x:blob": b"\x00\x01secret"})
    assert cond("BinaryEquals", "x:blob", value, {"x:blob": value})
    assert not cond("BinaryEquals", "x:blob", value, {"x:blob": b"other"})


@pytest.mark.parametrize(
    ("operator", "cidrs", "ip", "expected"),
    [
        ("IpAddress", "203.0.113.0/24", "203.0.113.9", True),
        ("IpAddress", "203.0.113.0/24", "198.51.100.1", False),
        ("IpAddress", ["10.0.0.0/8", "2001:db8::/32"], "2001:db8::1", True),
        ("IpAddress", "2001:db8::/32", "2001:db9::1", False),
        ("IpAddress", "203.0.113.9", "203.0.113.9", True),
        ("NotIpAddress", "203.0.113.0/24", "203.0.113.9", False),
        ("NotIpAddress", "203.0.113.0/24", "198.51.100.1", True),
        ("IpAddress", "10.0.0.0/8", "::ffff:10.0.0.1", False),
    ],
)
def test_it_matches_ipv4_and_ipv6_cidr_blocks(
    operator: str, cidrs: object, ip: str, expected: bool
) -> None:
    assert cond(operator, "aws:SourceIp", cidrs, {"aws:SourceIp": ip}) is expected


@settings(max_examples=500, deadline=None)
@given(st.text("0123456789.x: /", max_size=18) | st.ip_addresses().map(str))
def test_it_reads_a_source_ip_exactly_as_the_ipaddress_module_does(text: str) -> None:
    # The engine reads dotted quads with inet_pton for speed; it must accept and reject
    # exactly what ipaddress does (leading zeros, short forms, IPv6), or a deny could miss.
    try:
        expected: object = ipaddress.ip_address(text.strip())
    except ValueError:
        expected = None
    try:
        got: object = to_address(text)
    except ConditionValueError:
        got = None
    assert got == expected


@pytest.mark.parametrize(
    ("operator", "policy", "value", "expected"),
    [
        (
            "ArnEquals",
            "arn:aws:iam::111111111111:role/deployer",
            "arn:aws:iam::111111111111:role/deployer",
            True,
        ),
        ("ArnLike", "arn:aws:iam::*:role/deploy*", "arn:aws:iam::111111111111:role/deployer", True),
        ("ArnLike", "arn:aws:iam::1?1111111111:role/*", "arn:aws:iam::111111111111:role/x", True),
        (
            "ArnLike",
            "arn:aws:iam::*:role/deploy*",
            "arn:aws:iam::111111111111:user/deployer",
            False,
        ),
        ("ArnLike", "arn:aws:iam::*:role/*", "not-an-arn", False),
        (
            "ArnNotEquals",
            "arn:aws:iam::111111111111:role/deployer",
            "arn:aws:iam::111111111111:role/other",
            True,
        ),
        ("ArnNotLike", "arn:aws:iam::*:role/*", "arn:aws:iam::111111111111:role/x", False),
    ],
)
def test_it_matches_arns_segment_by_segment(
    operator: str, policy: str, value: str, expected: bool
) -> None:
    assert cond(operator, "aws:PrincipalArn", policy, {"aws:PrincipalArn": value}) is expected


def test_it_reads_condition_keys_case_insensitively() -> None:
    assert cond(
        "StringEquals", "AWS:PRINCIPALTAG/Colour", "red", {"aws:principaltag/colour": "red"}
    )


def test_it_ands_operators_and_keys_and_ors_values() -> None:
    policy = when("StringEquals", "x:a", ["1", "2"]).replace(
        '"Condition": {"StringEquals": {"x:a": ["1", "2"]}}',
        '"Condition": {"StringEquals": {"x:a": ["1", "2"], "x:b": "3"}, "Bool": {"x:c": "true"}}',
    )
    assert decide([policy], "iam:GetUser", "*", {"x:a": "2", "x:b": "3", "x:c": True}).allowed
    assert not decide([policy], "iam:GetUser", "*", {"x:a": "2", "x:b": "4", "x:c": True}).allowed
    assert not decide([policy], "iam:GetUser", "*", {"x:a": "2", "x:b": "3", "x:c": False}).allowed


def test_it_keeps_conditions_apart_whose_values_python_thinks_equal() -> None:
    # 1, 1.0 and true are equal (and hash alike) in Python, yet StringEquals compares the
    # text "1" with "1.0", and a boolean is no number: equal-looking conditions in one
    # principal's policies must not be merged.
    as_int = when("StringEquals", "x:k", 1)
    as_float = when("StringEquals", "x:k", 1.0)
    decision = decide([as_int, as_float], "iam:GetUser", "*", {"x:k": "1.0"})
    assert [m.policy_id for m in decision.matched_statements] == ["p2"]
    as_bool = when("NumericEquals", "x:n", True)
    as_number_elsewhere = when("NumericEquals", "x:n", 1).replace("iam:GetUser", "iam:ListUsers")
    # The boolean is no number, so its Allow fails closed whatever came before it.
    assert not decide([as_number_elsewhere, as_bool], "iam:GetUser", "*", {"x:n": "1"}).allowed


class TestMissingKeys:
    def test_it_does_not_match_a_positive_operator_on_a_missing_key(self) -> None:
        assert not cond("StringEquals", "x:k", "v", {})

    def test_it_matches_a_negated_operator_on_a_missing_key(self) -> None:
        assert cond("StringNotEquals", "x:k", "v", {})
        assert cond("StringNotLike", "x:k", "v*", {})
        assert cond("NotIpAddress", "aws:SourceIp", "10.0.0.0/8", {})
        assert cond("ArnNotLike", "aws:SourceArn", "arn:aws:s3:::*", {})

    def test_it_matches_if_exists_on_a_missing_key(self) -> None:
        assert cond("StringEqualsIfExists", "x:k", "v", {})
        assert cond("NumericLessThanIfExists", "x:n", "5", {})
        assert cond("BoolIfExists", "aws:MultiFactorAuthPresent", "true", {})

    def test_it_applies_if_exists_normally_when_the_key_is_present(self) -> None:
        assert cond("StringEqualsIfExists", "x:k", "v", {"x:k": "v"})
        assert not cond("StringEqualsIfExists", "x:k", "v", {"x:k": "w"})

    def test_it_checks_presence_with_null(self) -> None:
        assert cond("Null", "x:k", "true", {})
        assert not cond("Null", "x:k", "true", {"x:k": "v"})
        assert cond("Null", "x:k", "false", {"x:k": "v"})
        assert not cond("Null", "x:k", "false", {})


class TestSetQualifiers:
    def test_it_is_true_for_for_all_values_on_a_missing_key(self) -> None:
        # The well-known trap: an Allow with ForAllValues matches requests without the key.
        assert cond("ForAllValues:StringEquals", "aws:TagKeys", ["team"], {})
        assert cond("ForAllValues:StringEquals", "aws:TagKeys", ["team"], {"aws:TagKeys": []})

    def test_it_is_false_for_for_any_value_on_a_missing_key(self) -> None:
        assert not cond("ForAnyValue:StringEquals", "aws:TagKeys", ["team"], {})
        assert not cond("ForAnyValue:StringEquals", "aws:TagKeys", ["team"], {"aws:TagKeys": []})

    def test_it_needs_every_value_to_match_for_all_values(self) -> None:
        keys = ["team", "cost"]
        assert cond("ForAllValues:StringEquals", "aws:TagKeys", keys, {"aws:TagKeys": ["team"]})
        assert cond("ForAllValues:StringEquals", "aws:TagKeys", keys, {"aws:TagKeys": keys})
        assert not cond(
            "ForAllValues:StringEquals", "aws:TagKeys", keys, {"aws:TagKeys": ["team", "owner"]}
        )

    def test_it_needs_one_value_to_match_for_any_value(self) -> None:
        keys = ["team"]
        assert cond("ForAnyValue:StringEquals", "aws:TagKeys", keys, {"aws:TagKeys": ["x", "team"]})
        assert not cond("ForAnyValue:StringEquals", "aws:TagKeys", keys, {"aws:TagKeys": ["x"]})

    def test_it_negates_each_value_with_a_negated_operator(self) -> None:
        keys = ["secret"]
        assert cond(
            "ForAllValues:StringNotEquals", "aws:TagKeys", keys, {"aws:TagKeys": ["a", "b"]}
        )
        assert not cond(
            "ForAllValues:StringNotEquals", "aws:TagKeys", keys, {"aws:TagKeys": ["a", "secret"]}
        )
        assert cond(
            "ForAnyValue:StringNotEquals", "aws:TagKeys", keys, {"aws:TagKeys": ["a", "secret"]}
        )
        assert not cond(
            "ForAnyValue:StringNotEquals", "aws:TagKeys", keys, {"aws:TagKeys": ["secret"]}
        )
        assert cond("ForAllValues:StringNotEquals", "aws:TagKeys", keys, {})
        assert not cond("ForAnyValue:StringNotEquals", "aws:TagKeys", keys, {})

    def test_it_supports_if_exists_with_a_qualifier(self) -> None:
        assert cond("ForAnyValue:StringLikeIfExists", "aws:TagKeys", ["t*"], {})
        assert cond(
            "ForAnyValue:StringLikeIfExists", "aws:TagKeys", ["t*"], {"aws:TagKeys": ["team"]}
        )

    def test_it_treats_a_multivalued_key_under_a_plain_operator_as_any_value(self) -> None:
        assert cond("StringEquals", "aws:TagKeys", "team", {"aws:TagKeys": ["x", "team"]})
        assert not cond("StringNotEquals", "aws:TagKeys", "team", {"aws:TagKeys": ["x", "team"]})


class TestFailClosed:
    def test_it_does_not_let_an_unreadable_value_satisfy_an_allow(self) -> None:
        assert not cond("NumericLessThan", "x:n", "10", {"x:n": "not a number"})
        assert not cond("IpAddress", "aws:SourceIp", "10.0.0.0/8", {"aws:SourceIp": "nonsense"})
        assert not cond(
            "DateLessThan", "aws:CurrentTime", "2030-01-01", {"aws:CurrentTime": "soon"}
        )
        # Even the negated operator does not match when the value cannot be read.
        assert not cond("NumericNotEquals", "x:n", "10", {"x:n": "ten"})

    def test_it_lets_an_unreadable_value_trigger_a_deny(self) -> None:
        allow_all = (
            '{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}'
        )
        deny_old_mfa = when("NumericGreaterThan", "aws:MultiFactorAuthAge", "3600", effect="Deny")
        decision = decide(
            [allow_all, deny_old_mfa], "iam:GetUser", "*", {"aws:MultiFactorAuthAge": "long"}
        )
        assert decision.decision == "explicitDeny"
        assert [m.policy_id for m in decision.matched_statements] == ["p2"]

    def test_it_treats_a_bad_policy_value_as_unusable_in_an_allow(self) -> None:
        assert not cond("DateLessThan", "aws:CurrentTime", "tomorrow", {"aws:CurrentTime": NOON})

    def test_it_lets_a_bad_policy_value_trigger_a_deny(self) -> None:
        allow_all = (
            '{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}'
        )
        bad = when("DateLessThan", "aws:CurrentTime", "tomorrow", effect="Deny")
        assert (
            decide([allow_all, bad], "iam:GetUser", "*", {"aws:CurrentTime": NOON}).decision
            == "explicitDeny"
        )

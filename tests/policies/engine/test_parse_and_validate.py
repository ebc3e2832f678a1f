# ruff: noqa: E501 -- policy documents and cases read best as one literal per line.
"""Parsing with IAM's MalformedPolicyDocument messages, and validation findings with spans."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policies.engine import Finding, PolicyParseError, PolicyType, parse_policy, validate
from policies.engine.catalog import ACTIONS, access_level, known_actions
from policies.engine.parser import _build, _build_identity_fast, check_document


def rejection(text: str, policy_type: PolicyType = PolicyType.IDENTITY) -> str:
    with pytest.raises(PolicyParseError) as caught:
        parse_policy(text, policy_type=policy_type)
    return caught.value.message


GOOD = '{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "iam:GetUser", "Resource": "*"}}'


def test_it_parses_a_single_statement_object_and_a_list() -> None:
    one = parse_policy(GOOD)
    assert one.version == "2012-10-17"
    assert [s.actions for s in one.statements] == [("iam:GetUser",)]
    many = parse_policy(
        {"Statement": [{"Sid": "A", "Effect": "Deny", "NotAction": ["s3:*"], "NotResource": "*"}]}
    )
    stmt = many.statements[0]
    assert (stmt.sid, stmt.effect, stmt.not_action, stmt.not_resource) == ("A", "Deny", True, True)
    assert many.version is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "Syntax errors in policy."),
        ("[]", "Syntax errors in policy."),
        ('{"Version": "2012-10-17"}', "Missing required field Statement"),
        (
            '{"Version": "2011-01-01", "Statement": []}',
            "Policy document must be version 2012-10-17 or greater.",
        ),
        (
            '{"Statement": {"Action": "iam:GetUser", "Resource": "*"}}',
            "Missing required field Effect",
        ),
        (
            '{"Statement": {"Effect": "allow", "Action": "iam:GetUser", "Resource": "*"}}',
            "Invalid effect: allow",
        ),
        (
            '{"Statement": {"Effect": "Allow", "Resource": "*"}}',
            "Policy statement must contain actions.",
        ),
        (
            '{"Statement": {"Effect": "Allow", "Action": "iam:GetUser"}}',
            "Policy statement must contain resources.",
        ),
        (
            '{"Statement": {"Effect": "Allow", "Action": "GetUser", "Resource": "*"}}',
            "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.",
        ),
        (
            '{"Statement": {"Effect": "Allow", "Action": "iam:GetUser", "Resource": "bucket"}}',
            'Resource bucket must be in ARN format or "*".',
        ),
        (
            '{"Statement": {"Effect": "Allow", "Action": "iam:GetUser", "Resource": "*", "Principal": "*"}}',
            "Has prohibited field Principal",
        ),
        (
            '{"Statement": {"Effect": "Allow", "Action": "iam:GetUser", "Resource": "*", "Foo": 1}}',
            "Unknown field Foo",
        ),
        (
            '{"Statement": {"Effect": "Allow", "Action": "iam:GetUser", "Resource": "*", "Condition": {"StringEqualz": {"a:b": "c"}}}}',
            "Invalid Condition type : StringEqualz",
        ),
        (
            '{"Statement": {"Effect": "Allow", "Action": "iam:GetUser", "Resource": "*", "Condition": {"NullIfExists": {"a:b": "true"}}}}',
            "Invalid Condition type : NullIfExists",
        ),
        (
            '{"Statement": [{"Sid": "A", "Effect": "Allow", "Action": "iam:GetUser", "Resource": "*"}, {"Sid": "A", "Effect": "Allow", "Action": "iam:GetUser", "Resource": "*"}]}',
            "Statement IDs (SID) in a single policy must be unique.",
        ),
        (
            '{"Statement": {"Sid": "no spaces", "Effect": "Allow", "Action": "iam:GetUser", "Resource": "*"}}',
            "Statement IDs (SID) must be alpha-numeric. Check that your input satisfies the regular expression [0-9A-Za-z]*",
        ),
        (
            '{"Statement": {"Effect": "Allow", "Action": "iam:GetUser", "Resource": "*"}, "Id": "\u0100"}',
            "Syntax errors in policy.",
        ),
    ],
)
def test_it_rejects_what_iam_rejects_with_its_message(text: str, message: str) -> None:
    assert rejection(text) == message


def test_it_requires_a_principal_in_resource_and_trust_policies() -> None:
    text = '{"Statement": {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}}'
    assert rejection(text, PolicyType.RESOURCE) == "Missing required field Principal"


def test_it_forbids_resource_in_a_trust_policy() -> None:
    text = '{"Statement": {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole", "Resource": "*"}}'
    assert rejection(text, PolicyType.TRUST) == "Has prohibited field Resource"


def test_it_rejects_an_invalid_principal() -> None:
    text = '{"Statement": {"Effect": "Allow", "Principal": {"AWS": "alice"}, "Action": "s3:GetObject"}}'
    assert rejection(text, PolicyType.RESOURCE) == 'Invalid principal in policy: "AWS":"alice"'


def test_it_accepts_the_principal_forms_aws_documents() -> None:
    text = """{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {
      "AWS": ["111111111111", "arn:aws:iam::111111111111:root", "arn:aws:iam::111111111111:user/a/b",
              "arn:aws:iam::111111111111:role/r", "arn:aws:sts::111111111111:assumed-role/r/s"],
      "Federated": "accounts.google.com", "Service": "ec2.amazonaws.com", "CanonicalUser": "79a59df9"}}}"""
    principal = parse_policy(text, policy_type=PolicyType.TRUST).statements[0].principal
    assert principal is not None
    assert len(principal.aws) == 5
    assert principal.federated == ("accounts.google.com",)


def test_it_points_a_parse_error_at_its_place() -> None:
    with pytest.raises(PolicyParseError) as caught:
        parse_policy(
            '{\n  "Statement": {\n    "Effect": "Maybe", "Action": "iam:GetUser", "Resource": "*"}}',
            positions=True,
        )
    assert caught.value.path == ("Statement", "Effect")
    assert caught.value.span == (3, 15, 3, 21)


class TestValidate:
    TEXT = """{
  "Version": "2012-10-17",
  "Statement": [
    {"Sid": "Loose", "Effect": "Allow", "NotAction": "iam:*", "Resource": "*"},
    {"Sid": "Pass", "Effect": "Allow", "Action": ["iam:PassRole", "iam:Pass*"], "Resource": "*"},
    {"Effect": "Allow", "Action": "iam:GetUser", "Resource": "arn:aws:iam::1:user/x",
     "Condition": {"DateGreaterThan": {"aws:CurrentTime": "yesterday"}}},
    {"Effect": "Allow", "Action": ["foo:Bar", "iam:GetUsr"], "Resource": "*"}
  ]
}"""

    def findings(self) -> dict[str, Finding]:
        return {f.issue_code: f for f in validate(self.TEXT, known_actions=known_actions())}

    def test_it_warns_about_allow_with_not_action(self) -> None:
        assert self.findings()["ALLOW_WITH_NOT_ACTION"] == Finding(
            "WARNING",
            "ALLOW_WITH_NOT_ACTION",
            "Allow with NotAction allows every action not listed, including actions of services "
            "added later; list the allowed actions instead.",
            ("Statement", 0, "NotAction"),
            (4, 54, 4, 60),
        )

    def test_it_flags_pass_role_on_every_resource(self) -> None:
        finding = self.findings()["PASS_ROLE_WITH_STAR_IN_RESOURCE"]
        assert (finding.finding_type, finding.path, finding.span) == (
            "SECURITY_WARNING",
            ("Statement", 1, "Resource"),
            (5, 93, 5, 95),
        )

    def test_it_suggests_removing_redundant_actions(self) -> None:
        finding = self.findings()["REDUNDANT_ACTION"]
        assert (
            finding.message == "iam:PassRole is already covered by iam:Pass* in the same statement."
        )
        assert finding.path == ("Statement", 1, "Action", 0)

    def test_it_reports_a_date_that_is_not_a_date(self) -> None:
        finding = self.findings()["INVALID_DATE_CONDITION_VALUE"]
        assert finding.finding_type == "ERROR"
        assert finding.span == (7, 59, 7, 69)

    def test_it_reports_unknown_services_and_actions_with_a_catalogue(self) -> None:
        found = self.findings()
        assert found["UNKNOWN_SERVICE"].message == "The service foo in foo:Bar is not known."
        assert found["UNKNOWN_ACTION"].message == "iam:GetUsr matches no action of the iam service."
        assert found["UNKNOWN_ACTION"].span == (8, 47, 8, 58)

    def test_it_orders_findings_by_severity(self) -> None:
        kinds = [f.finding_type for f in validate(self.TEXT, known_actions=known_actions())]
        order = ["ERROR", "SECURITY_WARNING", "WARNING", "SUGGESTION"]
        assert kinds == sorted(kinds, key=order.index)

    def test_it_reports_json_syntax_errors_with_position(self) -> None:
        assert validate('{\n  "Version": "2012-10-17",\n  "Statement": [1,]\n}') == [
            Finding(
                "ERROR",
                "JSON_SYNTAX_ERROR",
                "The policy is not valid JSON: Expecting value at line 3, column 19.",
                (),
                (3, 19, 3, 19),
            )
        ]

    def test_it_reports_missing_elements(self) -> None:
        codes = {
            f.issue_code for f in validate('{"Version": "2012-10-17", "Statement": {"Sid": "x"}}')
        }
        assert {"MISSING_EFFECT", "MISSING_ACTION", "MISSING_RESOURCE"} <= codes

    def test_it_reports_principal_rules_per_policy_type(self) -> None:
        identity = validate(
            '{"Statement": {"Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": "*"}}'
        )
        assert "PRINCIPAL_IN_IDENTITY_POLICY" in {f.issue_code for f in identity}
        resource = validate(
            '{"Statement": {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}}',
            PolicyType.RESOURCE,
        )
        assert "MISSING_PRINCIPAL" in {f.issue_code for f in resource}

    def test_it_reports_size_over_quota_without_counting_whitespace(self) -> None:
        text = '{"Statement": {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}}'
        size = len(text.replace(" ", ""))
        assert validate(text, max_size=size) == [
            f for f in validate(text) if f.issue_code != "POLICY_SIZE_EXCEEDS_QUOTA"
        ]
        assert "POLICY_SIZE_EXCEEDS_QUOTA" in {
            f.issue_code for f in validate(text, max_size=size - 1)
        }

    def test_it_reports_characters_iam_does_not_accept(self) -> None:
        finding = validate('{"Statement": {"Sid": "\u2603"}}')[0]
        assert (finding.issue_code, finding.span) == ("INVALID_CHARACTERS", (1, 24, 1, 24))

    def test_it_reports_invalid_operators_and_arns(self) -> None:
        text = '{"Statement": {"Effect": "Allow", "Action": "s3:*", "Resource": "s3://b", "Condition": {"Foo": {"a:b": "c"}}}}'
        codes = {f.issue_code for f in validate(text)}
        assert {"INVALID_ARN_RESOURCE", "INVALID_CONDITION_OPERATOR"} <= codes


def test_it_catalogues_iam_and_sts_actions_with_access_levels() -> None:
    assert access_level("iam:createuser") == "Write"
    assert access_level("iam:AttachUserPolicy") == "Permissions management"
    assert access_level("iam:ListUsers") == "List"
    assert access_level("iam:GetUser") == "Read"
    assert access_level("iam:TagUser") == "Tagging"
    assert access_level("sts:AssumeRole") == "Write"
    assert access_level("portcullis:Authorize") == "Read"
    assert "iam:PassRole" in ACTIONS
    assert len([a for a in ACTIONS if a.startswith("iam:")]) > 150


# ---- the one-pass parser agrees with the full checker -----------------------------------

_ABSENT = object()

# For each element: values the checker accepts, then values (or absences) it may reject.
_STATEMENT_FIELDS: dict[str, tuple[list[Any], list[Any]]] = {
    "Sid": ([_ABSENT, "A", "B", ""], ["a-b", None, 1]),
    "Effect": (["Allow", "Deny"], [_ABSENT, "allow", None, 1]),
    "Action": (
        ["iam:GetUser", "*", ["s3:Get*", "iam:*User*"]],
        [_ABSENT, [], ["iam:GetUser", 3], "bad", None, {"a": "b"}, "s3:Get Object"],
    ),
    "NotAction": ([_ABSENT], [["s3:*"], [], None]),
    "Resource": (
        ["*", "arn:aws:s3:::b/*", ["arn:aws:iam::*:user/x", "*"], "arn:a*"],
        [_ABSENT, "arn:aws", "nope", [], ["*", 1], None],
    ),
    "NotResource": ([_ABSENT], ["arn:aws:s3:::b/*", [], None]),
    "Principal": ([_ABSENT], ["*", {"AWS": "123456789012"}]),
    "NotPrincipal": ([_ABSENT], [{"AWS": "*"}]),
    "Condition": (
        [
            _ABSENT,
            {},
            {"StringEquals": {"aws:username": "a"}},
            {"StringEquals": {"aws:username": ["a", 1, True, 1.5]}},
            {"NumericLessThan": {"a:b": "not a number"}},
            {"ForAllValues:StringLike": {"a:b": "x*"}, "DateLessThan": {"a:b": "2030-01-01"}},
        ],
        [
            None,
            "x",
            {"Bogus": {"a:b": "x"}},
            {"StringEquals": {}},
            {"StringEquals": []},
            {"StringEquals": {"nokey": "x"}},
            {"StringEquals": {":b": "x"}},
            {"StringEquals": {"a:b": []}},
            {"StringEquals": {"a:b": [None]}},
            {"StringEquals": {"a:b": None}},
            {"Bool": {"a:b": {"x": 1}}},
            {"NullIfExists": {"a:b": "true"}},
        ],
    ),
    "Foo": ([_ABSENT], ["bar"]),
}
_TOP_FIELDS: dict[str, tuple[list[Any], list[Any]]] = {
    "Version": (["2012-10-17", "2008-10-17", _ABSENT], ["2011-01-01", None, 1]),
    "Id": ([_ABSENT, "x"], [None, 3]),
    "Foo": ([_ABSENT], ["bar"]),
}


@st.composite
def _object(draw: st.DrawFn, fields: dict[str, tuple[list[Any], list[Any]]]) -> dict[str, Any]:
    """Accepted values, with one or two elements swapped for doubtful ones now and then."""
    doubtful: set[str] = set()
    if draw(st.integers(0, 3)) == 0:
        doubtful = draw(st.sets(st.sampled_from(sorted(fields)), min_size=1, max_size=2))
    out = {}
    for name, (good, bad) in fields.items():
        value = draw(st.sampled_from(bad if name in doubtful else good))
        if value is not _ABSENT:
            out[name] = value
    return out


@st.composite
def _statements(draw: st.DrawFn) -> dict[str, Any]:
    stmt = draw(_object(_STATEMENT_FIELDS))
    # NotAction and NotResource in place of Action and Resource, now and then.
    for key in ("Action", "Resource"):
        if key in stmt and f"Not{key}" not in stmt and draw(st.booleans()):
            stmt[f"Not{key}"] = stmt.pop(key)
    return stmt


@st.composite
def _documents(draw: st.DrawFn) -> dict[str, Any]:
    doc = draw(_object(_TOP_FIELDS))
    statements = st.lists(_statements(), max_size=3)
    doc["Statement"] = draw(
        st.one_of(_statements(), statements, st.sampled_from([_ABSENT, "s", None]))
    )
    if doc["Statement"] is _ABSENT:
        del doc["Statement"]
    return doc


def _assert_one_pass_agrees(doc: dict[str, Any]) -> None:
    text = json.dumps(doc)
    rejected = [i for i in check_document(doc, PolicyType.IDENTITY, notes=False) if i.aws_message]
    fast = _build_identity_fast(json.loads(text), text)
    if rejected:
        assert fast is None
        assert rejection(text) == rejected[0].aws_message
    else:
        assert fast is not None
        assert fast == _build(json.loads(text), PolicyType.IDENTITY, text, None)
        assert parse_policy(text) == fast


@settings(max_examples=800, deadline=None)
@given(_documents())
def test_it_parses_in_one_pass_exactly_what_the_full_checker_accepts(doc: dict[str, Any]) -> None:
    _assert_one_pass_agrees(doc)


_BASE = {"Sid": "A", "Effect": "Allow", "Action": "iam:GetUser", "Resource": "*"}


@pytest.mark.parametrize(
    ("where", "name", "value"),
    [
        *(("top", name, v) for name, (_, bad) in _TOP_FIELDS.items() for v in bad),
        *(("statement", name, v) for name, (_, bad) in _STATEMENT_FIELDS.items() for v in bad),
    ],
)
def test_it_parses_in_one_pass_what_the_checker_accepts_element_by_element(
    where: str, name: str, value: Any
) -> None:
    stmt = dict(_BASE)
    doc: dict[str, Any] = {"Version": "2012-10-17", "Statement": [stmt]}
    target = doc if where == "top" else stmt
    if value is _ABSENT:
        target.pop(name, None)
    else:
        target[name] = value
    _assert_one_pass_agrees(doc)

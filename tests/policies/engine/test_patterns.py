"""Wildcards in actions and resources, and policy variables."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from policies.engine.patterns import Pattern

from .cast import ACCOUNT, ALICE, Principal, allow, decide, doc


def reference_glob(pattern: str, value: str, *, stop: str = "") -> bool:
    """Slow recursive matcher: * any run of characters not in ``stop``, ? one such char."""
    if not pattern:
        return not value
    head = pattern[0]
    if head == "*":
        if reference_glob(pattern[1:], value, stop=stop):
            return True
        return (
            bool(value) and value[0] not in stop and reference_glob(pattern, value[1:], stop=stop)
        )
    if not value:
        return False
    if head == "?":
        return value[0] not in stop and reference_glob(pattern[1:], value[1:], stop=stop)
    return head == value[0] and reference_glob(pattern[1:], value[1:], stop=stop)


def reference_arn(pattern: str, value: str) -> bool:
    """AWS's rule written out slowly: the first five ARN segments are matched one by one
    (a * that ends a segment may run on across colons), the resource part as a whole."""
    if not pattern.startswith("arn:"):
        return reference_glob(pattern, value)
    # Rewrite each segment-ending * of the first five segments as a marker that may cross
    # colons, then match character by character.
    segs = pattern.split(":", 5)
    out: list[tuple[str, bool]] = []  # (char, crosses colons)
    for i, seg in enumerate(segs):
        if i:
            out.append((":", False))
        last = i == len(segs) - 1
        for j, ch in enumerate(seg):
            crosses = i >= 5 or (ch == "*" and j == len(seg) - 1)
            out.append((ch, crosses))
        del last
    return _match_marked(out, value)


def _match_marked(pat: list[tuple[str, bool]], value: str) -> bool:
    if not pat:
        return not value
    (ch, crosses), rest = pat[0], pat[1:]
    stop = "" if crosses else ":"
    if ch == "*":
        if _match_marked(rest, value):
            return True
        return bool(value) and value[0] not in stop and _match_marked(pat, value[1:])
    if not value:
        return False
    if ch == "?":
        return value[0] not in stop and _match_marked(rest, value[1:])
    return ch == value[0] and _match_marked(rest, value[1:])


ALPHABET = "ab:/*?"
VALUES = "ab:/"


@settings(max_examples=400, deadline=None)
@given(st.text(ALPHABET, max_size=8), st.text(VALUES, max_size=10))
def test_it_agrees_with_a_reference_matcher_for_plain_patterns(pattern: str, value: str) -> None:
    assert Pattern(pattern, arn=False).match(value, None) == reference_glob(pattern, value)


@settings(max_examples=400, deadline=None)
@given(st.text("aB:*?", max_size=8), st.text("abAB:", max_size=10))
def test_it_agrees_with_a_reference_matcher_for_actions(pattern: str, value: str) -> None:
    # Actions are matched lower-cased on both sides (the evaluator lowers the request's).
    expected = reference_glob(pattern.lower(), value.lower())
    assert Pattern(pattern, arn=False, ignore_case=True).match(value.lower(), None) == expected


@settings(max_examples=600, deadline=None)
@given(
    st.lists(st.text(ALPHABET, max_size=3), min_size=1, max_size=7),
    st.lists(st.text("ab/", max_size=3), min_size=1, max_size=7),
)
def test_it_agrees_with_a_reference_matcher_for_arns(
    segments: list[str], values: list[str]
) -> None:
    pattern = "arn:" + ":".join(segments)
    value = "arn:" + ":".join(values)
    assert Pattern(pattern, arn=True).match(value, None) == reference_arn(pattern, value)


def test_it_matches_actions_case_insensitively_with_wildcards() -> None:
    policy = doc(allow(["IAM:get*", "iam:List?ser*"]))
    assert decide([policy], "iam:GetUser").allowed
    assert decide([policy], "IAM:GETUSER").allowed
    assert decide([policy], "iam:ListUsers").allowed
    assert not decide([policy], "iam:ListGroups").allowed
    assert not decide([policy], "sts:GetCallerIdentity").allowed


def test_it_matches_resources_case_sensitively() -> None:
    policy = doc(allow("iam:GetUser", f"arn:aws:iam::{ACCOUNT}:user/Bob"))
    assert decide([policy], "iam:GetUser", f"arn:aws:iam::{ACCOUNT}:user/Bob").allowed
    assert not decide([policy], "iam:GetUser", f"arn:aws:iam::{ACCOUNT}:user/bob").allowed


def test_it_lets_a_wildcard_span_slashes_and_colons_in_the_resource_part() -> None:
    policy = doc(allow("logs:GetLogEvents", f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:app*"))
    resource = f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:app/web:log-stream:x"
    assert decide([policy], "logs:GetLogEvents", resource).allowed


def test_it_keeps_a_mid_segment_wildcard_inside_its_segment() -> None:
    policy = doc(allow("iam:GetUser", "arn:aws:iam::1*1:user/x"))
    same = {"resource_account": ACCOUNT}
    assert decide([policy], "iam:GetUser", "arn:aws:iam::111:user/x", **same).allowed
    assert not decide([policy], "iam:GetUser", "arn:aws:iam::1:2:1:user/x", **same).allowed


def test_it_lets_a_trailing_wildcard_match_the_rest_of_the_arn() -> None:
    policy = doc(allow("iam:GetUser", "arn:aws:iam::*"))
    assert decide([policy], "iam:GetUser", f"arn:aws:iam::{ACCOUNT}:user/x").allowed
    assert not decide([policy], "iam:GetUser", f"arn:aws:sts::{ACCOUNT}:assumed-role/r/s").allowed


def test_it_matches_star_against_everything() -> None:
    assert decide([doc(allow("*", "*"))], "anything:AtAll", "whatever").allowed


class TestVariables:
    USER_HOME = f"arn:aws:iam::{ACCOUNT}:user/${{aws:username}}"

    def test_it_substitutes_the_user_name_in_resources(self) -> None:
        policy = doc(allow("iam:GetUser", self.USER_HOME))
        assert decide([policy], "iam:GetUser", ALICE.arn).allowed
        assert not decide([policy], "iam:GetUser", f"arn:aws:iam::{ACCOUNT}:user/bob").allowed

    def test_it_does_not_substitute_in_version_2008(self) -> None:
        policy = doc(allow("iam:GetUser", self.USER_HOME), version="2008-10-17")
        assert not decide([policy], "iam:GetUser", ALICE.arn).allowed
        literal = f"arn:aws:iam::{ACCOUNT}:user/${{aws:username}}"
        assert decide([policy], "iam:GetUser", literal).allowed

    def test_it_does_not_substitute_without_a_version(self) -> None:
        policy = doc(allow("iam:GetUser", self.USER_HOME), version=None)
        assert not decide([policy], "iam:GetUser", ALICE.arn).allowed

    def test_it_makes_a_resource_with_an_unknown_variable_not_match(self) -> None:
        session = Principal(
            arn=f"arn:aws:sts::{ACCOUNT}:assumed-role/r/s",
            account=ACCOUNT,
            kind="role_session",
            role_arn=f"arn:aws:iam::{ACCOUNT}:role/r",
        )
        policy = doc(allow("iam:GetUser", self.USER_HOME))
        # Role sessions have no aws:username.
        assert not decide(
            [policy], "iam:GetUser", f"arn:aws:iam::{ACCOUNT}:user/", principal=session
        ).allowed

    def test_it_uses_a_default_when_the_key_is_missing(self) -> None:
        policy = doc(
            allow("s3:GetObject", "arn:aws:s3:::docs/${aws:PrincipalTag/dept, 'shared'}/*")
        )
        assert decide([policy], "s3:GetObject", "arn:aws:s3:::docs/shared/a.txt").allowed
        tagged = Principal(**{**ALICE.__dict__, "tags": {"dept": "legal"}})
        assert decide(
            [policy], "s3:GetObject", "arn:aws:s3:::docs/legal/a.txt", principal=tagged
        ).allowed
        assert not decide(
            [policy], "s3:GetObject", "arn:aws:s3:::docs/shared/a.txt", principal=tagged
        ).allowed

    def test_it_reads_principal_tags_and_context_keys(self) -> None:
        policy = doc(
            allow(
                "s3:GetObject",
                "arn:aws:s3:::teams/${aws:PrincipalTag/team}/${s3:prefix}",
            )
        )
        ok = decide([policy], "s3:GetObject", "arn:aws:s3:::teams/red/x", {"s3:prefix": "x"})
        assert ok.allowed

    def test_it_treats_escapes_as_literal_characters(self) -> None:
        policy = doc(allow("s3:GetObject", "arn:aws:s3:::b/${*}${?}${$}"))
        assert decide([policy], "s3:GetObject", "arn:aws:s3:::b/*?$").allowed
        assert not decide([policy], "s3:GetObject", "arn:aws:s3:::b/abc").allowed

    def test_it_does_not_let_a_substituted_value_act_as_a_wildcard(self) -> None:
        policy = doc(allow("s3:GetObject", "arn:aws:s3:::b/${aws:PrincipalTag/team}"))
        starry = Principal(**{**ALICE.__dict__, "tags": {"team": "*"}})
        assert not decide([policy], "s3:GetObject", "arn:aws:s3:::b/red", principal=starry).allowed
        assert decide([policy], "s3:GetObject", "arn:aws:s3:::b/*", principal=starry).allowed

    def test_it_substitutes_variables_in_condition_values(self) -> None:
        policy = doc(
            allow(
                "iam:GetUser",
                Condition={"StringEquals": {"aws:PrincipalTag/owner": "${aws:username}"}},
            )
        )
        owner = Principal(**{**ALICE.__dict__, "tags": {"owner": "alice"}})
        assert decide([policy], "iam:GetUser", principal=owner).allowed
        other = Principal(**{**ALICE.__dict__, "tags": {"owner": "bob"}})
        assert not decide([policy], "iam:GetUser", principal=other).allowed

    def test_it_substitutes_variables_in_string_like_as_literals(self) -> None:
        policy = doc(
            allow(
                "s3:ListBucket", Condition={"StringLike": {"s3:prefix": "home/${aws:username}/*"}}
            )
        )
        assert decide([policy], "s3:ListBucket", "*", {"s3:prefix": "home/alice/docs"}).allowed
        assert not decide([policy], "s3:ListBucket", "*", {"s3:prefix": "home/bob/docs"}).allowed

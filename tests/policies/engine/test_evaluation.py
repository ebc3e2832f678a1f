"""AWS's policy evaluation logic, with the examples from its documentation.

https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html
"""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from policies.engine import (
    Decision,
    MatchedStatement,
    Request,
    SourcedPolicy,
    access_denied_message,
    compile_policy_set,
    compile_policy_set_from_json,
    compile_trust_policy,
    evaluate,
    evaluate_trust,
    policy_set_to_json,
)
from policies.engine.evaluator import Principal

from .cast import (
    ACCOUNT,
    ALICE,
    BOB,
    DEPLOYER_ROLE,
    DEPLOYER_SESSION,
    OTHER,
    ROOT,
    allow,
    decide,
    deny,
    doc,
    resource_policy,
    sources,
)

ALICE_RESOURCE = f"arn:aws:iam::{ACCOUNT}:user/alice"
BUCKET = "arn:aws:s3:::reports/q1.csv"


def ms(
    policy_id: str,
    index: int,
    effect: str = "Allow",
    sid: str | None = None,
    kind: str = "identity",
) -> MatchedStatement:
    return MatchedStatement(policy_id, kind, index, sid, effect)  # type: ignore[arg-type]


def test_it_denies_by_default() -> None:
    decision = decide([], "iam:CreateUser")
    assert decision == Decision(
        "implicitDeny", (), (), "no identity-based policy allows the iam:CreateUser action"
    )


def test_it_allows_what_an_identity_policy_allows_and_reports_the_statements() -> None:
    p1 = doc(
        allow("iam:Get*"),
        {"Sid": "Users", "Effect": "Allow", "Action": "iam:GetUser", "Resource": "*"},
    )
    decision = decide([p1], "iam:GetUser", ALICE_RESOURCE)
    assert decision == Decision("allowed", (ms("p1", 0), ms("p1", 1, sid="Users")), (), "")


def test_it_lets_an_explicit_deny_win_over_any_allow() -> None:
    decision = decide(
        [doc(allow("*")), doc({**deny("iam:Delete*"), "Sid": "NoDelete"})], "iam:DeleteUser"
    )
    assert decision == Decision(
        "explicitDeny", (ms("p2", 0, "Deny", "NoDelete"),), (), "identity-based policy"
    )


def test_it_applies_not_action_and_not_resource() -> None:
    policy = doc({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"})
    assert decide([policy], "s3:GetObject").allowed
    assert not decide([policy], "iam:GetUser").allowed
    policy = doc({"Effect": "Allow", "Action": "s3:*", "NotResource": "arn:aws:s3:::secret/*"})
    assert decide([policy], "s3:GetObject", BUCKET).allowed
    assert not decide([policy], "s3:GetObject", "arn:aws:s3:::secret/x").allowed


class TestBoundariesAndSessions:
    def test_it_needs_the_boundary_to_allow_too(self) -> None:
        decision = decide(
            [doc(allow("iam:*"))], "iam:CreateUser", boundary=[doc(allow("iam:Get*"))]
        )
        assert decision.deny_reason == "no permissions boundary allows the iam:CreateUser action"
        assert decide(
            [doc(allow("iam:*"))], "iam:GetUser", boundary=[doc(allow("iam:Get*"))]
        ).allowed

    def test_it_does_not_grant_from_a_boundary_alone(self) -> None:
        decision = decide([], "iam:GetUser", boundary=[doc(allow("*"))])
        assert decision.deny_reason == "no identity-based policy allows the iam:GetUser action"

    def test_it_reports_a_deny_in_the_boundary(self) -> None:
        decision = decide(
            [doc(allow("*"))], "iam:GetUser", boundary=[doc(allow("*"), deny("iam:GetUser"))]
        )
        assert decision == Decision(
            "explicitDeny", (ms("b1", 1, "Deny", kind="boundary"),), (), "permissions boundary"
        )

    def test_it_treats_an_empty_session_policy_list_as_allowing_nothing(self) -> None:
        decision = decide([doc(allow("*"))], "iam:GetUser", principal=DEPLOYER_SESSION, session=[])
        assert decision.deny_reason == "no session policy allows the iam:GetUser action"
        assert decide(
            [doc(allow("*"))], "iam:GetUser", principal=DEPLOYER_SESSION, session=None
        ).allowed

    def test_it_intersects_with_the_session_policy(self) -> None:
        session = [doc(allow("iam:List*"))]
        assert decide(
            [doc(allow("iam:*"))], "iam:ListUsers", principal=DEPLOYER_SESSION, session=session
        ).allowed
        assert not decide(
            [doc(allow("iam:*"))], "iam:GetUser", principal=DEPLOYER_SESSION, session=session
        ).allowed

    def test_it_reports_allows_from_every_kind_that_matched(self) -> None:
        decision = decide([doc(allow("*"))], "iam:GetUser", boundary=[doc(allow("iam:*"))])
        assert decision.matched_statements == (ms("p1", 0), ms("b1", 0, kind="boundary"))


class TestResourcePolicies:
    def test_it_allows_from_a_same_account_resource_policy_naming_the_user_despite_the_boundary(
        self,
    ) -> None:
        rp = resource_policy(doc({**allow("s3:GetObject"), "Principal": {"AWS": ALICE.arn}}))
        decision = decide(
            [], "s3:GetObject", BUCKET, boundary=[doc(allow("iam:*"))], resource_policy=rp
        )
        assert decision == Decision("allowed", (ms("bucket-policy", 0, kind="resource"),), (), "")

    def test_it_allows_from_a_resource_policy_naming_the_role_session(self) -> None:
        rp = resource_policy(
            doc({**allow("s3:GetObject"), "Principal": {"AWS": DEPLOYER_SESSION.arn}})
        )
        decision = decide(
            [], "s3:GetObject", BUCKET, principal=DEPLOYER_SESSION, session=[], resource_policy=rp
        )
        assert decision.allowed

    def test_it_limits_a_resource_policy_naming_the_role_by_the_session_policy(self) -> None:
        rp = resource_policy(doc({**allow("s3:GetObject"), "Principal": {"AWS": DEPLOYER_ROLE}}))
        limited = decide(
            [], "s3:GetObject", BUCKET, principal=DEPLOYER_SESSION, session=[], resource_policy=rp
        )
        assert limited.deny_reason == "no session policy allows the s3:GetObject action"
        free = decide([], "s3:GetObject", BUCKET, principal=DEPLOYER_SESSION, resource_policy=rp)
        assert free.allowed
        bounded = decide(
            [],
            "s3:GetObject",
            BUCKET,
            principal=DEPLOYER_SESSION,
            boundary=[doc(allow("iam:*"))],
            resource_policy=rp,
        )
        assert bounded.deny_reason == "no permissions boundary allows the s3:GetObject action"

    def test_it_needs_identity_permission_when_the_resource_policy_names_only_the_account(
        self,
    ) -> None:
        rp = resource_policy(
            doc({**allow("s3:GetObject"), "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}})
        )
        assert not decide([], "s3:GetObject", BUCKET, resource_policy=rp).allowed
        assert decide(
            [doc(allow("s3:GetObject"))], "s3:GetObject", BUCKET, resource_policy=rp
        ).allowed

    def test_it_needs_both_sides_across_accounts(self) -> None:
        rp = resource_policy(doc({**allow("s3:GetObject"), "Principal": {"AWS": OTHER}}))
        bob_allows = doc(allow("s3:GetObject"))
        assert decide(
            [bob_allows], "s3:GetObject", BUCKET, principal=BOB, resource_policy=rp
        ).allowed
        no_identity = decide([], "s3:GetObject", BUCKET, principal=BOB, resource_policy=rp)
        assert no_identity.deny_reason == "no identity-based policy allows the s3:GetObject action"
        no_resource = decide(
            [bob_allows], "s3:GetObject", BUCKET, principal=BOB, resource_account=ACCOUNT
        )
        assert no_resource.deny_reason == "no resource-based policy allows the s3:GetObject action"

    def test_it_lets_a_resource_policy_deny_win(self) -> None:
        rp = resource_policy(doc({**deny("s3:*"), "Principal": "*"}))
        decision = decide([doc(allow("*"))], "s3:GetObject", BUCKET, resource_policy=rp)
        assert decision == Decision(
            "explicitDeny",
            (ms("bucket-policy", 0, "Deny", kind="resource"),),
            (),
            "resource-based policy",
        )

    def test_it_applies_not_principal_to_everyone_not_listed(self) -> None:
        statement = {
            **deny("s3:*"),
            "NotPrincipal": {"AWS": [ALICE.arn, f"arn:aws:iam::{ACCOUNT}:root"]},
        }
        rp = resource_policy(doc(statement))
        assert decide([doc(allow("*"))], "s3:GetObject", BUCKET, resource_policy=rp).allowed
        other = Principal(
            **{**ALICE.__dict__, "arn": f"arn:aws:iam::{ACCOUNT}:user/carol", "username": "carol"}
        )
        assert (
            decide(
                [doc(allow("*"))], "s3:GetObject", BUCKET, principal=other, resource_policy=rp
            ).decision
            == "explicitDeny"
        )

    def test_it_denies_the_user_named_in_not_principal_without_its_account(self) -> None:
        # AWS: with NotPrincipal and Deny, also list the account, or the user is denied too.
        rp = resource_policy(doc({**deny("s3:*"), "NotPrincipal": {"AWS": ALICE.arn}}))
        assert (
            decide([doc(allow("*"))], "s3:GetObject", BUCKET, resource_policy=rp).decision
            == "explicitDeny"
        )

    def test_it_grants_anonymous_principals_only_through_a_star_principal(self) -> None:
        anonymous = Principal(arn="", account="", kind="anonymous")
        public = resource_policy(doc({**allow("s3:GetObject"), "Principal": "*"}))
        assert decide(
            [], "s3:GetObject", BUCKET, principal=anonymous, resource_policy=public
        ).allowed
        named = resource_policy(doc({**allow("s3:GetObject"), "Principal": {"AWS": ACCOUNT}}))
        decision = decide([], "s3:GetObject", BUCKET, principal=anonymous, resource_policy=named)
        assert decision.deny_reason == "no resource-based policy allows the s3:GetObject action"


class TestRoot:
    def test_it_allows_the_root_user_everything_in_its_account(self) -> None:
        decision = decide([], "iam:DeleteAccountPasswordPolicy", principal=ROOT)
        assert decision == Decision("allowed", (), (), "")

    def test_it_does_not_apply_identity_policies_to_root(self) -> None:
        assert decide([doc(deny("*"))], "iam:CreateUser", principal=ROOT).allowed

    def test_it_lets_a_resource_policy_deny_the_root_user(self) -> None:
        rp = resource_policy(doc({**deny("s3:*"), "Principal": {"AWS": ACCOUNT}}))
        assert (
            decide([], "s3:GetObject", BUCKET, principal=ROOT, resource_policy=rp).decision
            == "explicitDeny"
        )


class TestTrust:
    TRUST_ACCOUNT = doc(
        {
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
            "Action": "sts:AssumeRole",
        }
    )
    TRUST_ALICE = doc(
        {"Effect": "Allow", "Principal": {"AWS": ALICE.arn}, "Action": "sts:AssumeRole"}
    )

    def assume(self, trust: str, identity: list[str], principal: Principal = ALICE) -> Decision:
        return evaluate_trust(
            trust_policy=compile_trust_policy(
                SourcedPolicy("trust", trust), role_arn=DEPLOYER_ROLE
            ),
            role_arn=DEPLOYER_ROLE,
            caller_policy_set=compile_policy_set(identity=sources(*identity)),
            request=Request(principal=principal, action="sts:AssumeRole", resource=DEPLOYER_ROLE),
        )

    def test_it_lets_a_trust_policy_naming_the_user_grant_alone(self) -> None:
        decision = self.assume(self.TRUST_ALICE, [])
        assert decision == Decision("allowed", (ms("trust", 0, kind="trust"),), (), "")

    def test_it_needs_identity_permission_when_the_trust_policy_names_the_account(self) -> None:
        assert not self.assume(self.TRUST_ACCOUNT, []).allowed
        assert self.assume(
            self.TRUST_ACCOUNT, [doc(allow("sts:AssumeRole", DEPLOYER_ROLE))]
        ).allowed

    def test_it_needs_the_trust_policy_even_with_identity_permission(self) -> None:
        trust_bob = doc(
            {"Effect": "Allow", "Principal": {"AWS": BOB.arn}, "Action": "sts:AssumeRole"}
        )
        decision = self.assume(trust_bob, [doc(allow("sts:AssumeRole"))])
        assert decision.deny_reason == "no resource-based policy allows the sts:AssumeRole action"

    def test_it_needs_both_sides_across_accounts(self) -> None:
        trust_bob = doc(
            {"Effect": "Allow", "Principal": {"AWS": BOB.arn}, "Action": "sts:AssumeRole"}
        )
        assert not self.assume(trust_bob, [], principal=BOB).allowed
        assert self.assume(trust_bob, [doc(allow("sts:AssumeRole"))], principal=BOB).allowed

    def test_it_matches_federated_principals_and_conditions_for_web_identity(self) -> None:
        provider = f"arn:aws:iam::{ACCOUNT}:oidc-provider/idp.example.com"
        trust = doc(
            {
                "Effect": "Allow",
                "Principal": {"Federated": provider},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {"StringEquals": {"idp.example.com:aud": "portcullis"}},
            }
        )
        caller = Principal(arn=provider, account=ACCOUNT, kind="federated_user", user_id="sub-1")
        compiled = compile_trust_policy(SourcedPolicy("trust", trust), role_arn=DEPLOYER_ROLE)

        def ask(aud: str) -> Decision:
            request = Request(
                caller, "sts:AssumeRoleWithWebIdentity", DEPLOYER_ROLE, {"idp.example.com:aud": aud}
            )
            return evaluate_trust(
                trust_policy=compiled,
                role_arn=DEPLOYER_ROLE,
                caller_policy_set=None,
                request=request,
            )

        assert ask("portcullis").allowed
        assert not ask("someone-else").allowed


class TestAwsDocumentationExamples:
    # "AWS: Denies access to AWS based on MFA" (reference_policies_examples_aws_mfa-deny...):
    # with long-term access keys aws:MultiFactorAuthPresent is absent, so BoolIfExists
    # matches and the deny applies.
    DENY_WITHOUT_MFA = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Sid": "AllowAll", "Effect": "Allow", "Action": "*", "Resource": "*"},
                {
                    "Sid": "BlockMostAccessUnlessSignedInWithMFA",
                    "Effect": "Deny",
                    "NotAction": [
                        "iam:CreateVirtualMFADevice",
                        "iam:EnableMFADevice",
                        "iam:ListMFADevices",
                        "sts:GetSessionToken",
                    ],
                    "Resource": "*",
                    "Condition": {"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}},
                },
            ],
        }
    )

    def test_it_denies_long_term_keys_without_mfa(self) -> None:
        decision = decide([self.DENY_WITHOUT_MFA], "iam:CreateUser")
        assert decision == Decision(
            "explicitDeny",
            (ms("p1", 1, "Deny", "BlockMostAccessUnlessSignedInWithMFA"),),
            ("aws:MultiFactorAuthPresent",),
            "identity-based policy",
        )
        assert access_denied_message(ALICE.arn, "iam:CreateUser", "*", decision) == (
            f"User: {ALICE.arn} is not authorized to perform: iam:CreateUser on resource: * "
            "with an explicit deny in an identity-based policy"
        )

    def test_it_allows_with_mfa_and_lets_mfa_setup_through_without_it(self) -> None:
        assert decide(
            [self.DENY_WITHOUT_MFA], "iam:CreateUser", "*", {"aws:MultiFactorAuthPresent": True}
        ).allowed
        assert decide([self.DENY_WITHOUT_MFA], "iam:EnableMFADevice").allowed

    # "IAM: Allows IAM users to manage their own credentials" (simplified).
    OWN_CREDENTIALS = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "AllowViewAccountInfo",
                    "Effect": "Allow",
                    "Action": ["iam:GetAccountPasswordPolicy", "iam:GetAccountSummary"],
                    "Resource": "*",
                },
                {
                    "Sid": "AllowManageOwnAccessKeys",
                    "Effect": "Allow",
                    "Action": [
                        "iam:CreateAccessKey",
                        "iam:DeleteAccessKey",
                        "iam:ListAccessKeys",
                        "iam:UpdateAccessKey",
                    ],
                    "Resource": "arn:aws:iam::*:user/${aws:username}",
                },
            ],
        }
    )

    def test_it_lets_users_manage_only_their_own_access_keys(self) -> None:
        own = decide([self.OWN_CREDENTIALS], "iam:CreateAccessKey", ALICE_RESOURCE)
        assert own == Decision("allowed", (ms("p1", 1, sid="AllowManageOwnAccessKeys"),), (), "")
        other = decide(
            [self.OWN_CREDENTIALS], "iam:CreateAccessKey", f"arn:aws:iam::{ACCOUNT}:user/bob"
        )
        assert other.decision == "implicitDeny"
        assert access_denied_message(
            ALICE.arn, "iam:CreateAccessKey", f"arn:aws:iam::{ACCOUNT}:user/bob", other
        ) == (
            f"User: {ALICE.arn} is not authorized to perform: iam:CreateAccessKey on resource: "
            f"arn:aws:iam::{ACCOUNT}:user/bob because no identity-based policy allows the "
            "iam:CreateAccessKey action"
        )


def test_it_reports_missing_context_keys_of_statements_that_applied() -> None:
    policy = doc(allow("iam:GetUser", Condition={"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}))
    decision = decide([policy], "iam:GetUser")
    assert decision == Decision(
        "implicitDeny",
        (),
        ("aws:SourceIp",),
        "no identity-based policy allows the iam:GetUser action",
    )
    assert decide([policy], "iam:ListUsers").missing_context_values == ()


def test_it_derives_principal_keys_from_the_principal() -> None:
    policy = doc(
        allow(
            "iam:GetUser",
            Condition={
                "StringEquals": {
                    "aws:username": "alice",
                    "aws:PrincipalAccount": ACCOUNT,
                    "aws:PrincipalArn": ALICE.arn,
                    "aws:userid": ALICE.user_id,
                    "aws:PrincipalTag/team": "red",
                    "aws:PrincipalType": "User",
                }
            },
        )
    )
    assert decide([policy], "iam:GetUser").allowed
    session_policy = doc(
        allow("iam:GetUser", Condition={"StringEquals": {"aws:PrincipalArn": DEPLOYER_ROLE}})
    )
    assert decide([session_policy], "iam:GetUser", principal=DEPLOYER_SESSION).allowed


def test_it_refuses_to_compile_a_malformed_stored_policy() -> None:
    import pytest

    from policies.engine import PolicyParseError

    with pytest.raises(PolicyParseError) as caught:
        compile_policy_set(identity=[SourcedPolicy("broken", '{"Statement": [{"Effect": "Allow"')])
    assert caught.value.message == "Syntax errors in policy."


def test_it_turns_an_internal_error_into_an_explicit_deny() -> None:
    policy_set = compile_policy_set(identity=sources(doc(allow("*"))))
    request = Request(principal=ALICE, action=None, resource="*")  # type: ignore[arg-type]
    assert evaluate(policy_set, request) == Decision("explicitDeny", (), (), "evaluation error")


def test_it_round_trips_a_policy_set_through_json_exactly() -> None:
    identity = sources(
        doc(allow("iam:Get*")), '{"Statement":{"Effect":"Deny","Action":"*","Resource":"*"}}'
    )
    text = policy_set_to_json(identity, None, [])
    rebuilt = compile_policy_set_from_json(text)
    assert rebuilt.to_json() == text
    assert rebuilt.has_session_policy
    assert not rebuilt.has_boundary
    request = Request(principal=ALICE, action="iam:GetUser", resource="*")
    assert evaluate(rebuilt, request) == evaluate(
        compile_policy_set(identity=identity, session=[]), request
    )


def test_it_is_safe_to_share_a_compiled_set_between_threads() -> None:
    from concurrent.futures import ThreadPoolExecutor

    policy_set = compile_policy_set(
        identity=sources(doc(allow("iam:Get*", "arn:aws:iam::*:user/${aws:username}")))
    )
    requests = [Request(ALICE, f"iam:Get{i % 7}", ALICE_RESOURCE) for i in range(2000)]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda r: evaluate(policy_set, r).allowed, requests))
    assert all(results)


# ---- properties -------------------------------------------------------------------------

ACTIONS = ["iam:GetUser", "iam:CreateUser", "s3:GetObject", "s3:PutObject"]
PATTERNS = ["*", "iam:*", "iam:Get*", "s3:*", "s3:GetObject", "*:Get*", "iam:CreateUser"]
RESOURCES = ["*", "arn:aws:s3:::b/*", ALICE_RESOURCE, "arn:aws:iam::*:user/${aws:username}"]
REQUEST_RESOURCES = [ALICE_RESOURCE, "arn:aws:s3:::b/x", "*"]

statement = st.fixed_dictionaries(
    {
        "Effect": st.sampled_from(["Allow", "Deny"]),
        "Action": st.lists(st.sampled_from(PATTERNS), min_size=1, max_size=3),
        "Resource": st.lists(st.sampled_from(RESOURCES), min_size=1, max_size=2),
    },
    optional={
        "Condition": st.sampled_from(
            [
                {"Bool": {"aws:MultiFactorAuthPresent": "true"}},
                {"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}},
                {"ForAllValues:StringEquals": {"aws:TagKeys": ["team"]}},
                {"StringNotEquals": {"aws:PrincipalTag/team": "blue"}},
            ]
        )
    },
)
contexts = st.sampled_from([{}, {"aws:MultiFactorAuthPresent": True}, {"aws:TagKeys": ["x"]}])


@settings(max_examples=200, deadline=None)
@given(
    st.lists(statement, max_size=6),
    statement,
    st.sampled_from(ACTIONS),
    st.sampled_from(REQUEST_RESOURCES),
    contexts,
)
def test_it_never_turns_a_deny_into_an_allow_by_adding_a_deny(
    statements: list[dict[str, object]],
    extra: dict[str, object],
    action: str,
    resource: str,
    context: dict[str, object],
) -> None:
    extra = {**extra, "Effect": "Deny"}
    before = decide([doc(*statements)] if statements else [], action, resource, context)
    after = decide([doc(*statements, extra)], action, resource, context)
    if not before.allowed:
        assert not after.allowed
    if before.decision == "explicitDeny":
        assert after.decision == "explicitDeny"


@settings(max_examples=200, deadline=None)
@given(
    st.lists(statement, max_size=6),
    statement,
    st.sampled_from(ACTIONS),
    st.sampled_from(REQUEST_RESOURCES),
    contexts,
)
def test_it_never_removes_an_allow_by_adding_an_allow(
    statements: list[dict[str, object]],
    extra: dict[str, object],
    action: str,
    resource: str,
    context: dict[str, object],
) -> None:
    extra = {**extra, "Effect": "Allow"}
    before = decide([doc(*statements)] if statements else [], action, resource, context)
    after = decide([doc(*statements, extra)], action, resource, context)
    if before.allowed:
        assert after.allowed
    if before.decision != "explicitDeny":
        assert after.decision != "explicitDeny"

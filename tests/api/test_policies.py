"""Managed and inline policies, attachments and the simulator over the Query API."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from tests.api.test_users import error_of

ALLOW_LIST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "iam:ListUsers", "Resource": "*"}],
    }
)


def test_it_manages_policies_versions_and_attachments(iam):
    policy = iam.create_policy(PolicyName="lister", PolicyDocument=ALLOW_LIST)["Policy"]
    arn = policy["Arn"]
    assert arn == "arn:aws:iam::111111111111:policy/lister"
    assert policy["DefaultVersionId"] == "v1"

    iam.create_user(UserName="erin")
    iam.attach_user_policy(UserName="erin", PolicyArn=arn)
    attached = iam.list_attached_user_policies(UserName="erin")["AttachedPolicies"]
    assert attached == [{"PolicyName": "lister", "PolicyArn": arn}]
    assert iam.get_policy(PolicyArn=arn)["Policy"]["AttachmentCount"] == 1
    entities = iam.list_entities_for_policy(PolicyArn=arn)
    assert [u["UserName"] for u in entities["PolicyUsers"]] == ["erin"]

    iam.create_policy_version(PolicyArn=arn, PolicyDocument=ALLOW_LIST, SetAsDefault=True)
    version = iam.get_policy_version(PolicyArn=arn, VersionId="v2")["PolicyVersion"]
    assert version["IsDefaultVersion"] is True
    # boto3 decodes IAM's URL-encoded documents back into a dict.
    assert version["Document"]["Statement"][0]["Action"] == "iam:ListUsers"

    with pytest.raises(ClientError) as excinfo:
        iam.delete_policy(PolicyArn=arn)
    assert error_of(excinfo)[0] == "DeleteConflict"
    iam.detach_user_policy(UserName="erin", PolicyArn=arn)
    iam.delete_policy_version(PolicyArn=arn, VersionId="v1")
    iam.delete_policy(PolicyArn=arn)


def test_it_puts_gets_lists_and_deletes_inline_policies(iam):
    iam.create_group(GroupName="ops")
    iam.put_group_policy(GroupName="ops", PolicyName="list", PolicyDocument=ALLOW_LIST)
    assert iam.list_group_policies(GroupName="ops")["PolicyNames"] == ["list"]
    got = iam.get_group_policy(GroupName="ops", PolicyName="list")
    assert got["GroupName"] == "ops"
    assert got["PolicyDocument"]["Version"] == "2012-10-17"

    with pytest.raises(ClientError) as excinfo:
        iam.put_group_policy(GroupName="ops", PolicyName="bad", PolicyDocument="{not json")
    assert error_of(excinfo)[0] == "MalformedPolicyDocument"

    iam.delete_group_policy(GroupName="ops", PolicyName="list")
    assert iam.list_group_policies(GroupName="ops")["PolicyNames"] == []


def test_it_simulates_a_custom_policy(iam):
    results = iam.simulate_custom_policy(
        PolicyInputList=[ALLOW_LIST], ActionNames=["iam:ListUsers", "iam:CreateUser"]
    )["EvaluationResults"]
    decisions = {r["EvalActionName"]: r["EvalDecision"] for r in results}
    assert decisions == {"iam:ListUsers": "allowed", "iam:CreateUser": "implicitDeny"}


def test_it_summarizes_the_account(iam):
    iam.create_user(UserName="frank")
    summary = iam.get_account_summary()["SummaryMap"]
    assert summary["Users"] == 2
    assert summary["UsersQuota"] == 5000

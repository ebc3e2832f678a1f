# ruff: noqa: E501 -- policy documents and cases read best as one literal per line.
"""The SimulateCustomPolicy function and command, the policy summary and context keys."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

from policies.engine import context_keys_for_policies, parse_policy, summarize_policy
from policies.engine.simulate import run, simulate_custom_policy

POLICY = """{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Sid": "ReadWithMfa",
      "Effect": "Allow",
      "Action": "iam:Get*",
      "Resource": "*",
      "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}}
    },
    {"Sid": "NoDelete", "Effect": "Deny", "Action": "iam:Delete*", "Resource": "*"}
  ]
}"""
MFA = [
    {
        "ContextKeyName": "aws:MultiFactorAuthPresent",
        "ContextKeyValues": ["true"],
        "ContextKeyType": "boolean",
    }
]


def test_it_simulates_with_aws_shapes_and_statement_positions() -> None:
    result = simulate_custom_policy(
        {
            "PolicyInputList": [POLICY],
            "ActionNames": ["iam:GetUser", "iam:DeleteUser", "iam:CreateUser"],
            "ContextEntries": MFA,
        }
    )
    assert result == {
        "EvaluationResults": [
            {
                "EvalActionName": "iam:GetUser",
                "EvalResourceName": "*",
                "EvalDecision": "allowed",
                "MatchedStatements": [
                    {
                        "SourcePolicyId": "PolicyInputList.1",
                        "SourcePolicyType": "IAM Policy",
                        "StartPosition": {"Line": 4, "Column": 5},
                        "EndPosition": {"Line": 10, "Column": 5},
                    }
                ],
                "MissingContextValues": [],
            },
            {
                "EvalActionName": "iam:DeleteUser",
                "EvalResourceName": "*",
                "EvalDecision": "explicitDeny",
                "MatchedStatements": [
                    {
                        "SourcePolicyId": "PolicyInputList.1",
                        "SourcePolicyType": "IAM Policy",
                        "StartPosition": {"Line": 11, "Column": 5},
                        "EndPosition": {"Line": 11, "Column": 83},
                    }
                ],
                "MissingContextValues": [],
            },
            {
                "EvalActionName": "iam:CreateUser",
                "EvalResourceName": "*",
                "EvalDecision": "implicitDeny",
                "MatchedStatements": [],
                "MissingContextValues": [],
            },
        ],
        "IsTruncated": False,
    }


def test_it_reports_missing_context_values() -> None:
    result = simulate_custom_policy({"PolicyInputList": [POLICY], "ActionNames": ["iam:GetUser"]})
    assert result["EvaluationResults"][0]["EvalDecision"] == "implicitDeny"
    assert result["EvaluationResults"][0]["MissingContextValues"] == ["aws:MultiFactorAuthPresent"]


def test_it_applies_the_boundary_and_resource_policy() -> None:
    bucket = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": {
                "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::111111111111:user/alice"},
                "Action": "s3:GetObject",
                "Resource": "arn:aws:s3:::b/*",
            },
        }
    )
    result = simulate_custom_policy(
        {
            "PolicyInputList": [
                '{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*"}}'
            ],
            "PermissionsBoundaryPolicyInputList": [
                '{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:List*","Resource":"*"}}'
            ],
            "ResourcePolicy": bucket,
            "ResourceOwner": "arn:aws:iam::111111111111:root",
            "CallerArn": "arn:aws:iam::111111111111:user/alice",
            "ActionNames": ["s3:GetObject", "s3:PutObject"],
            "ResourceArns": ["arn:aws:s3:::b/x"],
        }
    )
    decisions = [(r["EvalActionName"], r["EvalDecision"]) for r in result["EvaluationResults"]]
    assert decisions == [("s3:GetObject", "allowed"), ("s3:PutObject", "implicitDeny")]
    # The identity policy's Allow matched too, but the boundary stops it: the bucket policy
    # naming Alice is what grants.
    matched = result["EvaluationResults"][0]["MatchedStatements"]
    assert [(m["SourcePolicyId"], m["SourcePolicyType"]) for m in matched] == [
        ("PolicyInputList.1", "IAM Policy"),
        ("ResourcePolicy", "Resource Policy"),
    ]


def test_it_converts_typed_context_entries() -> None:
    policy = '{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"*","Condition":{"NumericLessThan":{"s3:max-keys":"10"},"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}}'
    entries = [
        {"ContextKeyName": "s3:max-keys", "ContextKeyValues": ["5"], "ContextKeyType": "numeric"},
        {
            "ContextKeyName": "aws:SourceIp",
            "ContextKeyValues": ["10.1.1.1"],
            "ContextKeyType": "ip",
        },
    ]
    result = simulate_custom_policy(
        {"PolicyInputList": [policy], "ActionNames": ["s3:GetObject"], "ContextEntries": entries}
    )
    assert result["EvaluationResults"][0]["EvalDecision"] == "allowed"


def test_it_writes_an_error_for_a_bad_line_and_carries_on() -> None:
    lines = "\n".join(
        [
            "this is not json",
            json.dumps({"PolicyInputList": ['{"Statement": []'], "ActionNames": ["iam:GetUser"]}),
            json.dumps({"ActionNames": ["iam:GetUser"]}),
            json.dumps(
                {"PolicyInputList": [POLICY], "ActionNames": ["iam:GetUser"], "ContextEntries": MFA}
            ),
        ]
    )
    out = io.StringIO()
    assert run(io.StringIO(lines), out) == 3
    results = [json.loads(line) for line in out.getvalue().splitlines()]
    assert results[0]["Error"]["Code"] == "MalformedInput"
    assert results[1] == {
        "Error": {
            "Code": "MalformedPolicyDocument",
            "Message": "PolicyInputList.1: Syntax errors in policy.",
        }
    }
    assert results[2] == {
        "Error": {"Code": "InvalidInput", "Message": "PolicyInputList is required."}
    }
    assert results[3]["EvaluationResults"][0]["EvalDecision"] == "allowed"


def test_it_runs_as_a_command() -> None:
    root = Path(__file__).resolve().parents[3]
    line = json.dumps({"PolicyInputList": [POLICY], "ActionNames": ["iam:DeleteUser"]})
    done = subprocess.run(
        [sys.executable, "-m", "policies.engine.simulate"],
        input=f"{line}\nnope\n",
        capture_output=True,
        text=True,
        cwd=root,
        check=True,
    )
    outputs = [json.loads(x) for x in done.stdout.splitlines()]
    assert outputs[0]["EvaluationResults"][0]["EvalDecision"] == "explicitDeny"
    assert outputs[1]["Error"]["Code"] == "MalformedInput"
    assert done.stderr == ""


def test_it_lists_context_keys_including_variables() -> None:
    policy = parse_policy(
        '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::b/${aws:username}/*",'
        '"Condition":{"Bool":{"aws:MultiFactorAuthPresent":"true"},"StringEquals":{"AWS:MultiFactorAuthPresent":"x","s3:prefix":"${aws:PrincipalTag/team, \'none\'}"}}}]}'
    )
    assert context_keys_for_policies([policy]) == [
        "aws:MultiFactorAuthPresent",
        "s3:prefix",
        "aws:username",
        "aws:PrincipalTag/team",
    ]


def test_it_summarises_a_policy_by_service_and_access_level() -> None:
    policy = parse_policy(
        '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["iam:Get*","iam:ListUsers"],"Resource":"*"},'
        '{"Effect":"Allow","Action":"sts:*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"true"}}},'
        '{"Effect":"Deny","Action":"iam:GetUser","Resource":"arn:aws:iam::1:user/root-ish"},'
        '{"Effect":"Allow","Action":"ec2:DescribeInstances","Resource":"*"}]}'
    )
    summary = summarize_policy(policy)
    iam = summary["services"]["iam"]
    assert iam["access"] == "Limited: List, Read"
    assert iam["Allow"]["List"]["actions"] == ["ListUsers"]
    assert "GetUser" in iam["Allow"]["Read"]["actions"]
    assert iam["Deny"]["Read"] == {
        "actions": ["GetUser"],
        "resources": ["arn:aws:iam::1:user/root-ish"],
        "conditions": False,
    }
    sts = summary["services"]["sts"]
    assert sts["access"] == "Full access"
    assert sts["Allow"]["Write"]["conditions"] is True
    assert summary["uncatalogued"] == ["ec2:DescribeInstances"]

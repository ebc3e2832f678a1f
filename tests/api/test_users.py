"""Users over the Query API, with boto3 as the client."""

from __future__ import annotations

import re

import pytest
from botocore.exceptions import ClientError

from audit.models import AuditEvent
from tests.api.conftest import client


def error_of(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[str, str, int]:
    response = excinfo.value.response
    return (
        response["Error"]["Code"],
        response["Error"]["Message"],
        response["ResponseMetadata"]["HTTPStatusCode"],
    )


def test_it_creates_gets_lists_and_deletes_a_user(iam):
    created = iam.create_user(
        UserName="alice", Path="/eng/", Tags=[{"Key": "team", "Value": "red"}]
    )["User"]

    assert created["UserName"] == "alice"
    assert created["Arn"] == "arn:aws:iam::111111111111:user/eng/alice"
    assert re.fullmatch(r"AIDA[A-Z2-7]{17}", created["UserId"])
    assert created["Tags"] == [{"Key": "team", "Value": "red"}]
    assert created["CreateDate"].tzinfo is not None

    fetched = iam.get_user(UserName="ALICE")["User"]
    assert fetched["UserId"] == created["UserId"]
    assert [u["UserName"] for u in iam.list_users(PathPrefix="/eng/")["Users"]] == ["alice"]
    assert iam.list_user_tags(UserName="alice")["Tags"] == [{"Key": "team", "Value": "red"}]

    iam.delete_user(UserName="alice")
    with pytest.raises(ClientError) as excinfo:
        iam.get_user(UserName="alice")
    assert error_of(excinfo) == (
        "NoSuchEntity",
        "The user with name alice cannot be found.",
        404,
    )


def test_it_returns_the_caller_for_get_user_without_a_name(iam):
    assert iam.get_user()["User"]["Arn"] == "arn:aws:iam::111111111111:user/admin"


def test_it_answers_conflicts_and_validation_as_aws_does(iam):
    iam.create_user(UserName="bob")
    with pytest.raises(ClientError) as excinfo:
        iam.create_user(UserName="BOB")
    assert error_of(excinfo) == ("EntityAlreadyExists", "User with name BOB already exists.", 409)

    with pytest.raises(ClientError) as excinfo:
        iam.create_user(UserName="bad name")
    assert error_of(excinfo) == (
        "ValidationError",
        "1 validation error detected: Value 'bad name' at 'userName' failed to satisfy "
        r"constraint: Member must satisfy regular expression pattern: [\w+=,.@-]+",
        400,
    )


def test_it_pages_list_users_with_marker_and_max_items(iam):
    for i in range(5):
        iam.create_user(UserName=f"user{i}")

    first = iam.list_users(MaxItems=2)
    assert first["IsTruncated"] is True
    names = [u["UserName"] for u in first["Users"]]
    marker = first["Marker"]
    while marker:
        page = iam.list_users(MaxItems=2, Marker=marker)
        names += [u["UserName"] for u in page["Users"]]
        marker = page.get("Marker")
    assert names == ["admin", "user0", "user1", "user2", "user3", "user4"]

    paginated = iam.get_paginator("list_users").paginate(PaginationConfig={"PageSize": 4})
    assert [u["UserName"] for page in paginated for u in page["Users"]] == names


def test_it_denies_a_limited_user_with_aws_message_and_audits_it(live_server, limited, admin):
    iam = client("iam", live_server, limited)
    assert iam.get_user()["User"]["UserName"] == "limited"

    with pytest.raises(ClientError) as excinfo:
        iam.create_user(UserName="mallory")

    assert error_of(excinfo) == (
        "AccessDenied",
        "User: arn:aws:iam::111111111111:user/limited is not authorized to perform: "
        "iam:CreateUser on resource: arn:aws:iam::111111111111:user/mallory because no "
        "identity-based policy allows the iam:CreateUser action",
        403,
    )
    event = AuditEvent.objects.get(action="iam:CreateUser", category="api")
    assert event.result == "Failure"
    assert event.error_code == "AccessDenied"
    assert event.access_key_id == "AKIALIMITED00000001"
    assert event.category == "api"
    assert event.request_id == excinfo.value.response["ResponseMetadata"]["RequestId"]


def test_it_audits_reads_and_writes(iam):
    iam.create_user(UserName="carol")
    iam.get_user(UserName="carol")

    write = AuditEvent.objects.get(action="iam:CreateUser", access_key_id="AKIAADMIN0000000001")
    read = AuditEvent.objects.get(action="iam:GetUser")
    assert write.category == "change"
    assert write.access_key_id == "AKIAADMIN0000000001"
    assert read.category == "api"
    assert read.resource_arn == "arn:aws:iam::111111111111:user/carol"
    assert read.result == "Success"


def test_it_updates_renames_and_untags_users(iam):
    iam.create_user(UserName="dave", Tags=[{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}])
    iam.untag_user(UserName="dave", TagKeys=["a"])
    iam.tag_user(UserName="dave", Tags=[{"Key": "c", "Value": "3"}])
    iam.update_user(UserName="dave", NewUserName="david", NewPath="/ops/")

    user = iam.get_user(UserName="david")["User"]
    assert user["Arn"] == "arn:aws:iam::111111111111:user/ops/david"
    assert {t["Key"] for t in iam.list_user_tags(UserName="david")["Tags"]} == {"b", "c"}

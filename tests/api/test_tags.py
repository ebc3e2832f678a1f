"""Tags on instance profiles and virtual MFA devices over the Query API with boto3.

Cast (besides the conftest's ``admin``): ``tagger``, an IAM user who may tag instance profiles
only with ``team=red``, to show ``aws:RequestTag/*`` reaching the engine.
"""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from audit.models import AuditEvent
from tests.api.conftest import Keys, client
from tests.api.test_users import error_of

ACCOUNT = "111111111111"
PROFILE_ARN = f"arn:aws:iam::{ACCOUNT}:instance-profile/web"
DEVICE_SERIAL = f"arn:aws:iam::{ACCOUNT}:mfa/phone"


def raises(call, *args, **kwargs) -> tuple[str, str, int]:
    with pytest.raises(ClientError) as excinfo:
        call(*args, **kwargs)
    return error_of(excinfo)


def tag_events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action, result="Success").order_by("id"))


def fifty_tags() -> list[dict[str, str]]:
    return [{"Key": f"k{i}", "Value": str(i)} for i in range(50)]


# --- instance profiles ------------------------------------------------------------------------


def test_it_tags_lists_and_untags_an_instance_profile(iam):
    iam.create_instance_profile(InstanceProfileName="web", Tags=[{"Key": "env", "Value": "dev"}])

    iam.tag_instance_profile(
        InstanceProfileName="web",
        Tags=[{"Key": "team", "Value": "red"}, {"Key": "env", "Value": "prod"}],
    )
    assert iam.list_instance_profile_tags(InstanceProfileName="web")["Tags"] == [
        {"Key": "env", "Value": "prod"},
        {"Key": "team", "Value": "red"},
    ]
    profile = iam.get_instance_profile(InstanceProfileName="web")["InstanceProfile"]
    assert {t["Key"]: t["Value"] for t in profile["Tags"]} == {"env": "prod", "team": "red"}

    iam.untag_instance_profile(InstanceProfileName="WEB", TagKeys=["env", "absent"])
    assert iam.list_instance_profile_tags(InstanceProfileName="web")["Tags"] == [
        {"Key": "team", "Value": "red"}
    ]

    [tagged] = tag_events("iam:TagInstanceProfile")
    assert tagged.resource_arn == PROFILE_ARN
    assert tagged.before == {"Tags": [{"Key": "env", "Value": "dev"}]}
    assert {t["Key"]: t["Value"] for t in tagged.after["Tags"]} == {"env": "prod", "team": "red"}
    [untagged] = tag_events("iam:UntagInstanceProfile")
    assert untagged.resource_arn == PROFILE_ARN
    assert untagged.request_parameters["TagKeys"] == ["env", "absent"]
    assert untagged.after == {"Tags": [{"Key": "team", "Value": "red"}]}


def test_it_refuses_the_51st_instance_profile_tag_and_changes_nothing(iam):
    iam.create_instance_profile(InstanceProfileName="web", Tags=fifty_tags())

    assert raises(
        iam.tag_instance_profile,
        InstanceProfileName="web",
        Tags=[{"Key": "one-more", "Value": "x"}],
    ) == ("LimitExceeded", "The number of tags has exceeded the limit of 50.", 409)
    # Replacing an existing key's value stays within the limit.
    iam.tag_instance_profile(InstanceProfileName="web", Tags=[{"Key": "k0", "Value": "new"}])

    tags = iam.list_instance_profile_tags(InstanceProfileName="web", MaxItems=100)["Tags"]
    assert len(tags) == 50
    assert {"Key": "k0", "Value": "new"} in tags
    assert "one-more" not in {t["Key"] for t in tags}
    assert len(tag_events("iam:TagInstanceProfile")) == 1


def test_it_refuses_aws_prefixed_instance_profile_tag_keys(iam):
    iam.create_instance_profile(InstanceProfileName="web")

    assert raises(
        iam.tag_instance_profile,
        InstanceProfileName="web",
        Tags=[{"Key": "aws:owner", "Value": "me"}],
    ) == ("InvalidInput", "User-defined tag keys can't start with 'aws:'.", 400)
    assert iam.list_instance_profile_tags(InstanceProfileName="web")["Tags"] == []
    assert tag_events("iam:TagInstanceProfile") == []


def test_it_reports_an_unknown_instance_profile(iam):
    message = ("NoSuchEntity", "Instance Profile ghost cannot be found.", 404)
    assert (
        raises(
            iam.tag_instance_profile,
            InstanceProfileName="ghost",
            Tags=[{"Key": "a", "Value": "b"}],
        )
        == message
    )
    assert raises(iam.untag_instance_profile, InstanceProfileName="ghost", TagKeys=["a"]) == message
    assert tag_events("iam:TagInstanceProfile") == []
    assert tag_events("iam:UntagInstanceProfile") == []


def test_it_authorizes_instance_profile_tags_with_the_request_tags(live_server, iam):
    iam.create_instance_profile(InstanceProfileName="web")
    iam.create_user(UserName="tagger")
    iam.put_user_policy(
        UserName="tagger",
        PolicyName="tag-red-only",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": "iam:TagInstanceProfile",
                        "Resource": PROFILE_ARN,
                        "Condition": {"StringEquals": {"aws:RequestTag/team": "red"}},
                    }
                ],
            }
        ),
    )
    key = iam.create_access_key(UserName="tagger")["AccessKey"]
    tagger = client("iam", live_server, Keys(key["AccessKeyId"], key["SecretAccessKey"]))

    tagger.tag_instance_profile(InstanceProfileName="web", Tags=[{"Key": "team", "Value": "red"}])
    assert raises(
        tagger.tag_instance_profile,
        InstanceProfileName="web",
        Tags=[{"Key": "team", "Value": "blue"}],
    ) == (
        "AccessDenied",
        f"User: arn:aws:iam::{ACCOUNT}:user/tagger is not authorized to perform: "
        f"iam:TagInstanceProfile on resource: {PROFILE_ARN} because no identity-based policy "
        "allows the iam:TagInstanceProfile action",
        403,
    )
    assert iam.list_instance_profile_tags(InstanceProfileName="web")["Tags"] == [
        {"Key": "team", "Value": "red"}
    ]


# --- virtual MFA devices ----------------------------------------------------------------------


def test_it_tags_lists_and_untags_a_virtual_mfa_device(iam):
    serial = iam.create_virtual_mfa_device(VirtualMFADeviceName="phone")["VirtualMFADevice"][
        "SerialNumber"
    ]
    assert serial == DEVICE_SERIAL

    iam.tag_mfa_device(
        SerialNumber=serial,
        Tags=[{"Key": "owner", "Value": "alice"}, {"Key": "kind", "Value": "phone"}],
    )
    assert iam.list_mfa_device_tags(SerialNumber=serial)["Tags"] == [
        {"Key": "owner", "Value": "alice"},
        {"Key": "kind", "Value": "phone"},
    ]
    iam.untag_mfa_device(SerialNumber=serial, TagKeys=["kind"])
    assert iam.list_mfa_device_tags(SerialNumber=serial)["Tags"] == [
        {"Key": "owner", "Value": "alice"}
    ]
    listed = iam.list_virtual_mfa_devices()["VirtualMFADevices"]
    assert [d["Tags"] for d in listed] == [[{"Key": "owner", "Value": "alice"}]]

    [tagged] = tag_events("iam:TagMFADevice")
    assert tagged.resource_arn == DEVICE_SERIAL
    assert tagged.before == {"Tags": []}
    assert {t["Key"] for t in tagged.after["Tags"]} == {"owner", "kind"}
    [untagged] = tag_events("iam:UntagMFADevice")
    assert untagged.resource_arn == DEVICE_SERIAL
    assert untagged.after == {"Tags": [{"Key": "owner", "Value": "alice"}]}


def test_it_refuses_the_51st_mfa_device_tag_and_aws_prefixed_keys(iam):
    iam.create_virtual_mfa_device(VirtualMFADeviceName="phone", Tags=fifty_tags())

    assert raises(
        iam.tag_mfa_device, SerialNumber=DEVICE_SERIAL, Tags=[{"Key": "extra", "Value": "x"}]
    ) == ("LimitExceeded", "The number of tags has exceeded the limit of 50.", 409)
    assert raises(
        iam.tag_mfa_device, SerialNumber=DEVICE_SERIAL, Tags=[{"Key": "AWS:kind", "Value": "x"}]
    ) == ("InvalidInput", "User-defined tag keys can't start with 'aws:'.", 400)

    tags = iam.list_mfa_device_tags(SerialNumber=DEVICE_SERIAL, MaxItems=100)["Tags"]
    assert {t["Key"]: t["Value"] for t in tags} == {t["Key"]: t["Value"] for t in fifty_tags()}
    assert tag_events("iam:TagMFADevice") == []


def test_it_reports_an_unknown_mfa_device(iam):
    serial = f"arn:aws:iam::{ACCOUNT}:mfa/ghost"
    message = ("NoSuchEntity", f"VirtualMFADevice with serial number {serial} doesn't exist.", 404)
    assert raises(iam.tag_mfa_device, SerialNumber=serial, Tags=[{"Key": "a", "Value": "b"}]) == (
        message
    )
    assert raises(iam.untag_mfa_device, SerialNumber=serial, TagKeys=["a"]) == message
    # Another account's device is outside the administrator's policy, as in AWS.
    other = "arn:aws:iam::222222222222:mfa/phone"
    assert raises(iam.untag_mfa_device, SerialNumber=other, TagKeys=["a"])[0] == "AccessDenied"
    assert tag_events("iam:TagMFADevice") == []
    assert tag_events("iam:UntagMFADevice") == []

"""Credentials over the Query API with boto3: login profiles, ChangePassword, the account
password policy, virtual MFA devices and the credential report.

Cast (besides the conftest's ``admin``): ``bob``, an IAM user with an access key and no policy,
to show what a user may do for themselves.
"""

from __future__ import annotations

import csv
import io
import json

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from audit.models import AuditEvent
from console.models import CredentialReport
from console.tasks import generate_credential_report as generate_task
from identity import crypto, mfa
from identity.models import AccessKey, User
from tests.api.conftest import Keys, client, totp_code, totp_step
from tests.api.test_users import error_of
from tests.conftest import actor_for

GOOD_PASSWORD = "Correct-Horse-42!"
OTHER_PASSWORD = "Battery-Staple-77?"


def user_with_key(iam, name: str) -> Keys:
    iam.create_user(UserName=name)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return Keys(key["AccessKeyId"], key["SecretAccessKey"])


def raises(call, *args, **kwargs) -> tuple[str, str, int]:
    with pytest.raises(ClientError) as excinfo:
        call(*args, **kwargs)
    return error_of(excinfo)


# --- login profiles ---------------------------------------------------------------------------


def test_it_creates_gets_updates_and_deletes_a_login_profile(iam):
    iam.create_user(UserName="carol")
    created = iam.create_login_profile(
        UserName="carol", Password=GOOD_PASSWORD, PasswordResetRequired=True
    )["LoginProfile"]
    assert created["UserName"] == "carol"
    assert created["PasswordResetRequired"] is True
    assert created["CreateDate"].tzinfo is not None

    assert raises(iam.create_login_profile, UserName="carol", Password=GOOD_PASSWORD) == (
        "EntityAlreadyExists",
        "Login Profile for user carol already exists.",
        409,
    )
    iam.update_login_profile(UserName="carol", PasswordResetRequired=False)
    assert iam.get_login_profile(UserName="carol")["LoginProfile"]["PasswordResetRequired"] is False

    iam.delete_login_profile(UserName="carol")
    assert raises(iam.get_login_profile, UserName="carol") == (
        "NoSuchEntity",
        "Login Profile for User carol cannot be found.",
        404,
    )
    assert raises(iam.delete_login_profile, UserName="carol")[0] == "NoSuchEntity"
    assert raises(iam.get_login_profile, UserName="nobody") == (
        "NoSuchEntity",
        "The user with name nobody cannot be found.",
        404,
    )
    create_event = AuditEvent.objects.get(action="iam:CreateLoginProfile", result="Success")
    assert create_event.request_parameters["Password"] == "***"
    assert GOOD_PASSWORD not in json.dumps(
        list(AuditEvent.objects.values("request_parameters", "after"))
    )


def test_it_refuses_a_password_the_account_policy_forbids(iam):
    iam.update_account_password_policy(MinimumPasswordLength=20, RequireNumbers=True)
    iam.create_user(UserName="dave")
    code, message, status = raises(
        iam.create_login_profile, UserName="dave", Password=GOOD_PASSWORD
    )
    assert (code, status) == ("PasswordPolicyViolation", 400)
    assert "20" in message
    assert raises(iam.get_login_profile, UserName="dave")[0] == "NoSuchEntity"


# --- account password policy ------------------------------------------------------------------


def test_it_sets_reads_and_deletes_the_account_password_policy(live_server, iam):
    assert raises(iam.get_account_password_policy) == (
        "NoSuchEntity",
        "The Password Policy with domain name 111111111111 cannot be found.",
        404,
    )
    iam.update_account_password_policy(
        MinimumPasswordLength=12,
        RequireSymbols=True,
        MaxPasswordAge=90,
        PasswordReusePrevention=5,
    )
    policy = iam.get_account_password_policy()["PasswordPolicy"]
    assert policy == {
        "MinimumPasswordLength": 12,
        "RequireSymbols": True,
        "RequireNumbers": False,
        "RequireUppercaseCharacters": False,
        "RequireLowercaseCharacters": False,
        "AllowUsersToChangePassword": False,
        "ExpirePasswords": True,
        "MaxPasswordAge": 90,
        "PasswordReusePrevention": 5,
        "HardExpiry": False,
    }
    # Not partial: omitted fields return to their defaults.
    iam.update_account_password_policy(RequireNumbers=True)
    policy = iam.get_account_password_policy()["PasswordPolicy"]
    assert (policy["MinimumPasswordLength"], policy["RequireSymbols"]) == (6, False)
    assert "MaxPasswordAge" not in policy

    unchecked = client(
        "iam", live_server, Keys(*iam_keys(iam)), config=Config(parameter_validation=False)
    )
    assert raises(unchecked.update_account_password_policy, MinimumPasswordLength=5) == (
        "ValidationError",
        "1 validation error detected: Value '5' at 'minimumPasswordLength' failed to satisfy "
        "constraint: Member must have value greater than or equal to 6",
        400,
    )

    iam.delete_account_password_policy()
    assert raises(iam.delete_account_password_policy) == (
        "NoSuchEntity",
        "The account policy with name PasswordPolicy cannot be found.",
        404,
    )


def iam_keys(iam) -> tuple[str, str]:
    credentials = iam._request_signer._credentials
    return credentials.access_key, credentials.secret_key


def test_it_lets_users_change_their_own_password_only_when_the_account_allows(live_server, iam):
    bob = client("iam", live_server, user_with_key(iam, "bob"))
    iam.create_login_profile(UserName="bob", Password=GOOD_PASSWORD)

    code, message, status = raises(
        bob.change_password, OldPassword=GOOD_PASSWORD, NewPassword=OTHER_PASSWORD
    )
    assert (code, status) == ("AccessDenied", 403)
    assert message == (
        "User: arn:aws:iam::111111111111:user/bob is not authorized to perform: "
        "iam:ChangePassword on resource: arn:aws:iam::111111111111:user/bob because no "
        "identity-based policy allows the iam:ChangePassword action"
    )
    assert raises(bob.get_account_password_policy)[0] == "AccessDenied"

    iam.update_account_password_policy(AllowUsersToChangePassword=True)
    assert bob.get_account_password_policy()["PasswordPolicy"]["AllowUsersToChangePassword"]
    assert raises(bob.change_password, OldPassword="wrong-Password-1", NewPassword=OTHER_PASSWORD)[
        :2
    ] == ("AccessDenied", "The old password is incorrect.")
    bob.change_password(OldPassword=GOOD_PASSWORD, NewPassword=OTHER_PASSWORD)

    changed = AuditEvent.objects.get(action="iam:ChangePassword", result="Success")
    assert changed.actor_arn == "arn:aws:iam::111111111111:user/bob"
    assert changed.request_parameters == {"OldPassword": "***", "NewPassword": "***"}
    assert raises(bob.change_password, OldPassword=GOOD_PASSWORD, NewPassword="Another-Pass-9!")[
        1
    ] == ("The old password is incorrect.")


# --- virtual MFA devices ----------------------------------------------------------------------


def enable_device(iam, user_name: str, device_name: str) -> tuple[str, bytes, int]:
    """Create a virtual device and enable it for the user with two consecutive codes, as an
    authenticator app would show them. Returns serial, seed and the step of the second code."""
    device = iam.create_virtual_mfa_device(VirtualMFADeviceName=device_name)["VirtualMFADevice"]
    seed = device["Base32StringSeed"]
    step = totp_step()
    iam.enable_mfa_device(
        UserName=user_name,
        SerialNumber=device["SerialNumber"],
        AuthenticationCode1=totp_code(seed, step - 1),
        AuthenticationCode2=totp_code(seed, step),
    )
    return device["SerialNumber"], seed, step


def test_it_creates_a_virtual_mfa_device_with_its_seed_and_qr_code(iam):
    device = iam.create_virtual_mfa_device(
        VirtualMFADeviceName="erin-phone", Path="/team/", Tags=[{"Key": "k", "Value": "v"}]
    )["VirtualMFADevice"]

    assert device["SerialNumber"] == "arn:aws:iam::111111111111:mfa/team/erin-phone"
    # Blobs in IAM's model: boto3 decodes AWS's base64 and hands back the Base32 text and PNG.
    assert len(device["Base32StringSeed"]) == 32
    assert device["Base32StringSeed"].isupper()
    assert device["QRCodePNG"].startswith(b"\x89PNG\r\n\x1a\n")
    assert raises(iam.create_virtual_mfa_device, VirtualMFADeviceName="ERIN-phone") == (
        "EntityAlreadyExists",
        "MFADevice entity at the same path and name already exists.",
        409,
    )
    listed = iam.list_virtual_mfa_devices(AssignmentStatus="Unassigned")["VirtualMFADevices"]
    assert [d["SerialNumber"] for d in listed] == [device["SerialNumber"]]
    assert "Base32StringSeed" not in listed[0]
    assert iam.list_mfa_device_tags(SerialNumber=device["SerialNumber"])["Tags"] == [
        {"Key": "k", "Value": "v"}
    ]
    event = AuditEvent.objects.get(action="iam:CreateVirtualMFADevice", result="Success")
    assert device["Base32StringSeed"].decode() not in json.dumps(
        [event.request_parameters, event.after]
    )


def test_it_enables_resyncs_deactivates_and_deletes_an_mfa_device(iam):
    iam.create_user(UserName="erin")
    device = iam.create_virtual_mfa_device(VirtualMFADeviceName="erin-phone")["VirtualMFADevice"]
    serial, seed = device["SerialNumber"], device["Base32StringSeed"]
    step = totp_step()

    assert raises(
        iam.enable_mfa_device,
        UserName="erin",
        SerialNumber=serial,
        AuthenticationCode1=totp_code(seed, step),
        AuthenticationCode2=totp_code(seed, step - 1),
    ) == ("InvalidAuthenticationCode", "Authentication code for device is not valid.", 403)
    iam.enable_mfa_device(
        UserName="erin",
        SerialNumber=serial,
        AuthenticationCode1=totp_code(seed, step - 1),
        AuthenticationCode2=totp_code(seed, step),
    )

    devices = iam.list_mfa_devices(UserName="erin")["MFADevices"]
    assert [(d["UserName"], d["SerialNumber"]) for d in devices] == [("erin", serial)]
    assert devices[0]["EnableDate"].tzinfo is not None
    assigned = iam.list_virtual_mfa_devices(AssignmentStatus="Assigned")["VirtualMFADevices"]
    assert assigned[0]["User"]["UserName"] == "erin"
    assert raises(
        iam.enable_mfa_device,
        UserName="erin",
        SerialNumber=serial,
        AuthenticationCode1="123456",
        AuthenticationCode2="654321",
    ) == ("EntityAlreadyExists", "MFA Device is already in use.", 409)
    assert raises(iam.delete_virtual_mfa_device, SerialNumber=serial) == (
        "DeleteConflict",
        "MFA Device is still in use.",
        409,
    )

    # Resync with the next two codes (a later step than the last one accepted).
    iam.resync_mfa_device(
        UserName="erin",
        SerialNumber=serial,
        AuthenticationCode1=totp_code(seed, step + 1),
        AuthenticationCode2=totp_code(seed, step + 2),
    )
    assert raises(
        iam.resync_mfa_device,
        UserName="erin",
        SerialNumber=serial,
        AuthenticationCode1=totp_code(seed, step + 1),
        AuthenticationCode2=totp_code(seed, step + 2),
    )[0] == ("InvalidAuthenticationCode")

    iam.deactivate_mfa_device(UserName="erin", SerialNumber=serial)
    assert iam.list_mfa_devices(UserName="erin")["MFADevices"] == []
    assert raises(iam.deactivate_mfa_device, UserName="erin", SerialNumber=serial) == (
        "NoSuchEntity",
        f"MFA Device with serial number {serial} does not exist for user erin.",
        404,
    )
    iam.delete_virtual_mfa_device(SerialNumber=serial)
    assert raises(iam.delete_virtual_mfa_device, SerialNumber=serial) == (
        "NoSuchEntity",
        f"VirtualMFADevice with serial number {serial} doesn't exist.",
        404,
    )
    actions = list(
        AuditEvent.objects.filter(resource_arn__in=[serial, "arn:aws:iam::111111111111:user/erin"])
        .exclude(category="api")
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert actions == [
        "iam:CreateUser",
        "iam:CreateVirtualMFADevice",
        "iam:EnableMFADevice",
        "iam:ResyncMFADevice",
        "iam:DeactivateMFADevice",
        "iam:DeleteVirtualMFADevice",
    ]


def test_it_limits_a_user_to_eight_mfa_devices(iam):
    iam.create_user(UserName="frank")
    for index in range(8):
        enable_device(iam, "frank", f"frank-{index}")
    device = iam.create_virtual_mfa_device(VirtualMFADeviceName="frank-8")["VirtualMFADevice"]
    step = totp_step()
    assert raises(
        iam.enable_mfa_device,
        UserName="frank",
        SerialNumber=device["SerialNumber"],
        AuthenticationCode1=totp_code(device["Base32StringSeed"], step - 1),
        AuthenticationCode2=totp_code(device["Base32StringSeed"], step),
    ) == ("LimitExceeded", "Cannot exceed quota for MFADevicesPerUser: 8", 409)
    page = iam.list_mfa_devices(UserName="frank", MaxItems=5)
    assert (len(page["MFADevices"]), page["IsTruncated"]) == (5, True)
    rest = iam.list_mfa_devices(UserName="frank", Marker=page["Marker"])
    assert (len(rest["MFADevices"]), rest["IsTruncated"]) == (3, False)


def test_it_lets_a_user_list_their_own_devices_only_with_permission(live_server, iam):
    bob = client("iam", live_server, user_with_key(iam, "bob"))
    code, message, _ = raises(bob.list_mfa_devices)
    assert code == "AccessDenied"
    assert "iam:ListMFADevices on resource: arn:aws:iam::111111111111:user/bob" in message


# --- credential report ------------------------------------------------------------------------


def test_it_generates_and_returns_the_credential_report(iam, monkeypatch):
    # Keep the generation queued here: a Celery worker started by an earlier test would
    # otherwise finish it before the INPROGRESS answer can be seen.
    queued: list[list[str]] = []
    monkeypatch.setattr(generate_task, "apply_async", lambda args, **_: queued.append(list(args)))
    assert raises(iam.get_credential_report) == (
        "ReportNotPresent",
        "Credential report not present. Please run GenerateCredentialReport.",
        410,
    )
    iam.create_user(UserName="gina")
    assert iam.generate_credential_report()["State"] == "STARTED"
    assert iam.generate_credential_report()["State"] == "INPROGRESS"
    assert raises(iam.get_credential_report) == (
        "ReportInProgress",
        "Credential report is still being generated.",
        404,
    )
    # The queued task, run here as the worker would run it (its own tests cover the queue).
    report_row = CredentialReport.objects.get(account_id="111111111111")
    assert queued == [["111111111111", report_row.generation]]
    generate_task.apply(args=queued[0])
    assert iam.generate_credential_report()["State"] == "COMPLETE"

    report = iam.get_credential_report()
    assert report["ReportFormat"] == "text/csv"
    assert report["GeneratedTime"].tzinfo is not None
    rows = list(csv.reader(io.StringIO(report["Content"].decode("utf-8"))))
    assert rows[0][:3] == ["user", "arn", "user_creation_time"]
    assert [r[0] for r in rows[1:]] == ["<root_account>", "admin", "gina"]
    assert AuditEvent.objects.filter(action="iam:GetCredentialReport", result="Success").exists()
    assert AuditEvent.objects.filter(action="iam:GenerateCredentialReport").count() == 3


def test_it_lets_the_root_user_deactivate_its_own_device_without_a_user_name(
    live_server, api_account, settings
):
    settings.ALLOW_ROOT_ACCESS_KEYS = True
    root = User.objects.get(account=api_account, is_root=True)
    secret = "root-secret-0000000000000000000000000000"
    AccessKey.objects.create(
        access_key_id="AKIAROOT00000000002", user=root, secret_encrypted=crypto.encrypt(secret)
    )
    root_iam = client("iam", live_server, Keys("AKIAROOT00000000002", secret))
    device = root_iam.create_virtual_mfa_device(VirtualMFADeviceName="root-phone")[
        "VirtualMFADevice"
    ]
    # The root user enrols in the console (EnableMFADevice needs an IAM user name).
    step = totp_step()
    mfa.enable_mfa_device(
        account=api_account,
        user_name="",
        user=root,
        serial_number=device["SerialNumber"],
        authentication_code1=totp_code(device["Base32StringSeed"], step - 1),
        authentication_code2=totp_code(device["Base32StringSeed"], step),
        actor=actor_for(root),
    )
    assert [d["SerialNumber"] for d in root_iam.list_mfa_devices()["MFADevices"]] == [
        device["SerialNumber"]
    ]

    root_iam.deactivate_mfa_device(SerialNumber=device["SerialNumber"])
    assert root_iam.list_mfa_devices()["MFADevices"] == []

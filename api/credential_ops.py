"""Credential operations of the Query API: login profiles, ChangePassword, the account password
policy, virtual MFA devices and the credential report.

Resources follow the Service Authorization Reference for IAM ("Actions, resources, and condition
keys for AWS Identity and Access Management"): login profiles, ChangePassword and the MFA
assignment calls act on the *user*; CreateVirtualMFADevice, DeleteVirtualMFADevice and the MFA
tag calls on the *mfa* resource; the password policy, ListVirtualMFADevices and the credential
report have no resource (``*``).
"""

from __future__ import annotations

from typing import Any

from api.iam_ops import IAM, _named, _user_target, page_out, paging
from api.registry import Call, operation, resource_tag_context, tag_context
from console import reports
from identity import mfa, naming, passwords, selectors, services
from identity.errors import NoSuchEntity, ValidationError
from identity.models import MFADevice, User

# --- login profiles ---------------------------------------------------------------------------


def _login_profile_out(profile: passwords.LoginProfile) -> dict[str, Any]:
    return {
        "UserName": profile.user_name,
        "CreateDate": profile.create_date,
        "PasswordResetRequired": profile.password_reset_required,
    }


def _iam_user_name(call: Call) -> tuple[str, str, dict[str, Any]]:
    """The target user's name and ARN for calls whose ``UserName`` defaults to the caller.

    The root user has no login profile in IAM's API (its password is the account's), so a
    root caller must name a user, as must a role session."""
    _user, arn, ctx, name = _user_target(call)
    if name is None:
        raise ValidationError("Must specify userName when calling with non-User credentials")
    return name, arn, ctx


@operation(IAM, "CreateLoginProfile", write=True)
def create_login_profile(call: Call) -> dict[str, Any]:
    name, arn, ctx = _iam_user_name(call)
    call.authorize(arn, context=ctx)
    if "Password" not in call.params:
        # The model made Password optional for root's passwordless sign-in; IAM users need one.
        raise ValidationError(
            "1 validation error detected: Value null at 'password' failed to satisfy "
            "constraint: Member must not be null"
        )
    profile = passwords.create_login_profile(
        account=call.account,
        user_name=name,
        password=call.params["Password"],
        password_reset_required=call.params.get("PasswordResetRequired", False),
        actor=call.actor,
    )
    return {"LoginProfile": _login_profile_out(profile)}


@operation(IAM, "GetLoginProfile", write=False)
def get_login_profile(call: Call) -> dict[str, Any]:
    name, arn, ctx = _iam_user_name(call)
    call.authorize(arn, context=ctx)
    profile = passwords.get_login_profile(account=call.account, user_name=name)
    return {"LoginProfile": _login_profile_out(profile)}


@operation(IAM, "UpdateLoginProfile", write=True)
def update_login_profile(call: Call) -> dict[str, Any]:
    _, arn, ctx = _named(call, User, "user", call.params["UserName"])
    call.authorize(arn, context=ctx)
    passwords.update_login_profile(
        account=call.account,
        user_name=call.params["UserName"],
        password=call.params.get("Password"),
        password_reset_required=call.params.get("PasswordResetRequired"),
        actor=call.actor,
    )
    return {}


@operation(IAM, "DeleteLoginProfile", write=True)
def delete_login_profile(call: Call) -> dict[str, Any]:
    name, arn, ctx = _iam_user_name(call)
    call.authorize(arn, context=ctx)
    passwords.delete_login_profile(account=call.account, user_name=name, actor=call.actor)
    return {}


@operation(IAM, "ChangePassword", write=True)
def change_password(call: Call) -> dict[str, Any]:
    """The caller's own password. "If the account's password policy allows users to change
    their own passwords, IAM users can do so without any permission; otherwise they need
    iam:ChangePassword on their own user" (IAM User Guide, "Permitting IAM users to change
    their own passwords")."""
    user: User | None = call.actor.user
    if user is None or call.actor.kind == "role_session":
        raise passwords.InvalidUserType("Only IAM users can change their own password.")
    if user.is_root:
        raise passwords.InvalidUserType("Root user cannot change password with this operation.")
    call.resource_arn = user.arn
    if not passwords.effective_policy(user.account).allow_users_to_change_password:
        call.authorize(user.arn, context=resource_tag_context(user.tags))
    passwords.change_password(
        user=user,
        old_password=call.params["OldPassword"],
        new_password=call.params["NewPassword"],
        actor=call.actor,
    )
    return {}


# --- account password policy ------------------------------------------------------------------


def _users_may_read_policy(call: Call) -> bool:
    """ "When you allow your IAM users to change their own passwords, IAM automatically allows
    them to view the password policy" (IAM User Guide, "Set an account password policy")."""
    user = call.actor.user
    if user is None or user.is_root or call.actor.kind == "role_session":
        return False
    return passwords.effective_policy(call.account).allow_users_to_change_password


@operation(IAM, "GetAccountPasswordPolicy", write=False)
def get_account_password_policy(call: Call) -> dict[str, Any]:
    if _users_may_read_policy(call):
        call.resource_arn = "*"
    else:
        call.authorize("*")
    policy = passwords.get_account_password_policy(account=call.account)
    return {"PasswordPolicy": passwords.policy_snapshot(policy)}


@operation(IAM, "UpdateAccountPasswordPolicy", write=True)
def update_account_password_policy(call: Call) -> dict[str, Any]:
    call.authorize("*")
    p = call.params
    passwords.update_account_password_policy(
        account=call.account,
        actor=call.actor,
        minimum_password_length=p.get("MinimumPasswordLength"),
        require_symbols=p.get("RequireSymbols", False),
        require_numbers=p.get("RequireNumbers", False),
        require_uppercase_characters=p.get("RequireUppercaseCharacters", False),
        require_lowercase_characters=p.get("RequireLowercaseCharacters", False),
        allow_users_to_change_password=p.get("AllowUsersToChangePassword", False),
        max_password_age=p.get("MaxPasswordAge"),
        password_reuse_prevention=p.get("PasswordReusePrevention"),
        hard_expiry=p.get("HardExpiry", False),
    )
    return {}


@operation(IAM, "DeleteAccountPasswordPolicy", write=True)
def delete_account_password_policy(call: Call) -> dict[str, Any]:
    call.authorize("*")
    passwords.delete_account_password_policy(account=call.account, actor=call.actor)
    return {}


# --- virtual MFA devices ----------------------------------------------------------------------


def _mfa_device_out(device: MFADevice) -> dict[str, Any]:
    return {
        "UserName": device.user.name if device.user_id else None,
        "SerialNumber": device.serial_number,
        "EnableDate": device.enabled_at,
    }


def _virtual_device_out(device: MFADevice) -> dict[str, Any]:
    user = device.user if device.user_id else None
    return {
        "SerialNumber": device.serial_number,
        "User": _user_summary(user) if user is not None else None,
        "EnableDate": device.enabled_at,
        "Tags": device.tags or None,
    }


def _user_summary(user: User) -> dict[str, Any]:
    if user.is_root:
        # ListVirtualMFADevices names the root user by its account ARN only.
        return {
            "Path": "/",
            "UserName": "",
            "UserId": user.account_id,
            "Arn": user.arn,
            "CreateDate": user.created_at,
        }
    return {
        "Path": user.path,
        "UserName": user.name,
        "UserId": user.unique_id,
        "Arn": user.arn,
        "CreateDate": user.created_at,
    }


def _serial_resource(
    call: Call, serial_number: str
) -> tuple[MFADevice | None, str, dict[str, Any]]:
    """The device (or None) and the ARN to authorize on: the serial number itself (an
    ``mfa/`` ARN), so a missing device is denied or reported exactly as AWS names it."""
    try:
        device = mfa.get_device(account=call.account, serial_number=serial_number)
    except NoSuchEntity:
        return None, serial_number, {}
    return device, device.serial_number, resource_tag_context(device.tags)


@operation(IAM, "CreateVirtualMFADevice", write=True)
def create_virtual_mfa_device(call: Call) -> dict[str, Any]:
    p = call.params
    path = p.get("Path", "/")
    arn = naming.mfa_arn(call.account.id, path, p["VirtualMFADeviceName"])
    call.authorize(arn, context=tag_context(p.get("Tags")))
    if p.get("Tags"):
        call.authorize(arn, action="iam:TagMFADevice", context=tag_context(p.get("Tags")))
    created = mfa.create_virtual_mfa_device(
        account=call.account,
        virtual_mfa_device_name=p["VirtualMFADeviceName"],
        path=path,
        tags=p.get("Tags") or (),
        actor=call.actor,
    )
    # Both are blobs in IAM's model: the XML carries them base64-encoded, as AWS sends them,
    # and boto3 hands back the Base32 text and the PNG bytes.
    return {
        "VirtualMFADevice": {
            "SerialNumber": created.serial_number,
            "Base32StringSeed": created.base32_string_seed,
            "QRCodePNG": created.qr_code_png,
            "Tags": created.device.tags or None,
        }
    }


@operation(IAM, "EnableMFADevice", write=True)
def enable_mfa_device(call: Call) -> dict[str, Any]:
    p = call.params
    _, arn, ctx = _named(call, User, "user", p["UserName"])
    call.authorize(arn, context=ctx)
    mfa.enable_mfa_device(
        account=call.account,
        user_name=p["UserName"],
        serial_number=p["SerialNumber"],
        authentication_code1=p["AuthenticationCode1"],
        authentication_code2=p["AuthenticationCode2"],
        actor=call.actor,
    )
    return {}


@operation(IAM, "DeactivateMFADevice", write=True)
def deactivate_mfa_device(call: Call) -> dict[str, Any]:
    user, arn, ctx, name = _user_target(call)
    call.authorize(arn, context=ctx)
    # Without UserName the caller's own device: for the root user, whose devices have no IAM
    # user name, the service takes the user itself.
    mfa.deactivate_mfa_device(
        account=call.account,
        user_name=name or "",
        serial_number=call.params["SerialNumber"],
        actor=call.actor,
        user=user if name is None else None,
    )
    return {}


@operation(IAM, "ResyncMFADevice", write=True)
def resync_mfa_device(call: Call) -> dict[str, Any]:
    p = call.params
    _, arn, ctx = _named(call, User, "user", p["UserName"])
    call.authorize(arn, context=ctx)
    mfa.resync_mfa_device(
        account=call.account,
        user_name=p["UserName"],
        serial_number=p["SerialNumber"],
        authentication_code1=p["AuthenticationCode1"],
        authentication_code2=p["AuthenticationCode2"],
        actor=call.actor,
    )
    return {}


@operation(IAM, "DeleteVirtualMFADevice", write=True)
def delete_virtual_mfa_device(call: Call) -> dict[str, Any]:
    _, arn, ctx = _serial_resource(call, call.params["SerialNumber"])
    call.authorize(arn, context=ctx)
    mfa.delete_virtual_mfa_device(
        account=call.account, serial_number=call.params["SerialNumber"], actor=call.actor
    )
    return {}


@operation(IAM, "ListMFADevices", write=False)
def list_mfa_devices(call: Call) -> dict[str, Any]:
    user, arn, ctx, name = _user_target(call)
    call.authorize(arn, context=ctx)
    if user is None:
        raise NoSuchEntity(f"The user with name {name} cannot be found.")
    page = selectors.paginate_list(mfa.list_mfa_devices(user=user), **_list_paging(call))
    return page_out(page, "MFADevices", [_mfa_device_out(d) for d in page.items])


@operation(IAM, "ListVirtualMFADevices", write=False)
def list_virtual_mfa_devices(call: Call) -> dict[str, Any]:
    call.authorize("*")
    devices = mfa.list_virtual_mfa_devices(
        account=call.account, assignment_status=call.params.get("AssignmentStatus", "Any")
    )
    page = selectors.paginate_list(devices, **_list_paging(call))
    return page_out(page, "VirtualMFADevices", [_virtual_device_out(d) for d in page.items])


@operation(IAM, "ListMFADeviceTags", write=False)
def list_mfa_device_tags(call: Call) -> dict[str, Any]:
    serial = call.params["SerialNumber"]
    device, arn, ctx = _serial_resource(call, serial)
    call.authorize(arn, context=ctx)
    if device is None:
        raise NoSuchEntity(f"VirtualMFADevice with serial number {serial} doesn't exist.")
    page = selectors.list_tags(device, **paging(call))
    return page_out(page, "Tags", page.items)


@operation(IAM, "TagMFADevice", write=True)
def tag_mfa_device(call: Call) -> dict[str, Any]:
    serial = call.params["SerialNumber"]
    _, arn, ctx = _serial_resource(call, serial)
    call.authorize(arn, context={**ctx, **tag_context(call.params["Tags"])})
    services.tag_mfa_device(
        account=call.account, serial_number=serial, tags=call.params["Tags"], actor=call.actor
    )
    return {}


@operation(IAM, "UntagMFADevice", write=True)
def untag_mfa_device(call: Call) -> dict[str, Any]:
    serial = call.params["SerialNumber"]
    _, arn, ctx = _serial_resource(call, serial)
    call.authorize(arn, context={**ctx, "aws:TagKeys": call.params["TagKeys"]})
    services.untag_mfa_device(
        account=call.account,
        serial_number=serial,
        tag_keys=call.params["TagKeys"],
        actor=call.actor,
    )
    return {}


def _list_paging(call: Call) -> dict[str, Any]:
    return {
        "marker": call.params.get("Marker"),
        "max_items": call.params.get("MaxItems", selectors.DEFAULT_MAX_ITEMS),
    }


# --- credential report ------------------------------------------------------------------------


@operation(IAM, "GenerateCredentialReport", write=True)
def generate_credential_report(call: Call) -> dict[str, Any]:
    """``State`` is ``STARTED`` when this call began a generation, ``INPROGRESS`` while one
    runs and ``COMPLETE`` when a report younger than four hours exists (IAM API Reference,
    GenerateCredentialReport)."""
    call.authorize("*")
    answer = reports.generate_credential_report(call.account, actor=call.actor)
    if answer["State"] != "STARTED":
        # No generation began, so the service wrote no event: the call is still audited.
        call.audit_read = True
    return {"State": answer["State"], "Description": answer.get("Description") or None}


@operation(IAM, "GetCredentialReport", write=False)
def get_credential_report(call: Call) -> dict[str, Any]:
    call.authorize("*")
    report = reports.get_credential_report(call.account)
    return {
        "Content": report.content,
        "ReportFormat": report.report_format,
        "GeneratedTime": report.generated_time,
    }

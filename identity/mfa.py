"""Virtual MFA devices (RFC 6238 TOTP) and one-time recovery codes.

AWS references: IAM API Reference ``CreateVirtualMFADevice``, ``EnableMFADevice``,
``DeactivateMFADevice``, ``ResyncMFADevice``, ``DeleteVirtualMFADevice``, ``ListMFADevices``,
``ListVirtualMFADevices``; IAM User Guide "Assign a virtual MFA device in the AWS Management
Console" (two consecutive codes) and "Resynchronize virtual and hardware MFA devices".

Seeds are encrypted at rest with ``identity.crypto`` (django-otp's own ``TOTPDevice`` keeps
them in clear). A code is accepted once: ``last_t`` is the last accepted time step and moves
forward only through a conditional UPDATE, so two requests racing with the same code cannot
both win. Failures are throttled with django-otp's ``ThrottlingMixin`` (1, 2, 4, 8 ... seconds).
Recovery codes are stored as Django password hashes and spent on use.
"""

from __future__ import annotations

import base64
import enum
import io
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import quote

import segno
from django.contrib.auth.hashers import check_password, make_password
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone
from django_otp.oath import TOTP

from audit.context import Actor
from audit.services import record_event
from identity import crypto, naming, quotas
from identity.errors import (
    DeleteConflict,
    EntityAlreadyExists,
    InvalidAuthenticationCode,
    LimitExceeded,
    NoSuchEntity,
)
from identity.models import Account, MFADevice, RecoveryCode, User
from identity.passwords import clock

ISSUER = "Portcullis"
SEED_BYTES = 20  # 160 bits, RFC 4226's recommended HMAC-SHA1 key length
RECOVERY_CODE_COUNT = 10
# How far (in 30-second steps) EnableMFADevice and ResyncMFADevice look for the two codes.
ENABLE_WINDOW_STEPS = 2
RESYNC_WINDOW_STEPS = 10

INVALID_CODE_MESSAGE = "Authentication code for device is not valid."


class Verification(enum.Enum):
    ACCEPTED = "accepted"
    INVALID = "invalid"
    REPLAYED = "replayed"
    THROTTLED = "throttled"


@dataclass(frozen=True)
class VirtualMFADevice:
    """``CreateVirtualMFADevice``'s answer: shown once, then only the serial number remains."""

    device: MFADevice
    serial_number: str
    base32_string_seed: str
    otpauth_uri: str
    qr_code_png: bytes
    qr_code_png_data_uri: str
    qr_code_svg: str


def _seed(device: MFADevice) -> bytes:
    return base64.b32decode(crypto.decrypt_text(device.seed_encrypted))


def _totp(device: MFADevice, *, drift: int = 0) -> TOTP:
    totp = TOTP(_seed(device), step=device.step, digits=device.digits, drift=drift)
    totp.time = clock.timestamp()
    return totp


def _token_at(totp: TOTP, t: int) -> int:
    totp.drift = 0
    totp.drift = t - totp.t()
    return totp.token()


def _parse_code(code: str | int) -> int | None:
    text = str(code).strip().replace(" ", "")
    if not text.isdigit() or len(text) != 6:
        return None
    return int(text)


def _serial_parts(serial_number: str) -> tuple[str, str] | None:
    parts = naming.parse_arn(serial_number)
    if not parts or parts["service"] != "iam" or not parts["resource"].startswith("mfa/"):
        return None
    rest = parts["resource"][len("mfa") :]
    _path, _, name = rest.rpartition("/")
    return parts["account"], name


def get_device(*, account: Account, serial_number: str) -> MFADevice:
    """The account's virtual device with this serial number, or ``NoSuchEntity``."""
    parts = _serial_parts(serial_number)
    device = None
    if parts and parts[0] == account.id:
        device = (
            MFADevice.objects.filter(account=account, name__iexact=parts[1])
            .select_related("user")
            .first()
        )
    if device is None or device.serial_number != serial_number:
        raise NoSuchEntity(f"VirtualMFADevice with serial number {serial_number} doesn't exist.")
    return device


def device_snapshot(device: MFADevice) -> dict[str, object]:
    return {
        "SerialNumber": device.serial_number,
        "UserName": device.user.name if device.user_id else None,
        "EnableDate": device.enabled_at,
    }


# --- Services -------------------------------------------------------------------------------


def create_virtual_mfa_device(
    *,
    account: Account,
    virtual_mfa_device_name: str,
    path: str = "/",
    tags: Sequence[Mapping[str, str]] = (),
    actor: Actor,
) -> VirtualMFADevice:
    """``iam:CreateVirtualMFADevice``: an unassigned device and its seed, shown once."""
    naming.validate_name(virtual_mfa_device_name, field="virtualMFADeviceName", max_length=226)
    naming.validate_path(path)
    clean_tags = naming.validate_tags(tags)
    seed = secrets.token_bytes(SEED_BYTES)
    seed_b32 = base64.b32encode(seed).decode("ascii")
    with transaction.atomic():
        if MFADevice.objects.filter(account=account, name__iexact=virtual_mfa_device_name).exists():
            raise EntityAlreadyExists("MFADevice entity at the same path and name already exists.")
        device = MFADevice(
            account=account,
            user=None,
            name=virtual_mfa_device_name,
            path=path,
            seed_encrypted=crypto.encrypt(seed_b32),
            confirmed=False,
            tags=clean_tags,
        )
        try:
            with transaction.atomic():
                device.save(force_insert=True)
        except IntegrityError as exc:
            raise EntityAlreadyExists(
                "MFADevice entity at the same path and name already exists."
            ) from exc
        record_event(
            actor=actor,
            action="iam:CreateVirtualMFADevice",
            resource_arn=device.serial_number,
            parameters={"VirtualMFADeviceName": virtual_mfa_device_name, "Path": path},
            after={"SerialNumber": device.serial_number},
        )
    label = quote(f"{ISSUER}:{virtual_mfa_device_name}@{account.alias or account.id}")
    uri = f"otpauth://totp/{label}?secret={seed_b32.rstrip('=')}&issuer={ISSUER}"
    qr = segno.make(uri, error="m")
    png = io.BytesIO()
    qr.save(png, kind="png", scale=5, border=4)
    return VirtualMFADevice(
        device=device,
        serial_number=device.serial_number,
        base32_string_seed=seed_b32,
        otpauth_uri=uri,
        qr_code_png=png.getvalue(),
        qr_code_png_data_uri=qr.png_data_uri(scale=5, border=4),
        qr_code_svg=qr.svg_inline(scale=5, border=4),
    )


def _find_consecutive(device: MFADevice, code1: int, code2: int, window: int) -> int | None:
    """The time step of ``code2`` if ``code1``/``code2`` are the codes of two consecutive steps
    within ``window`` steps of now (either side), else None."""
    totp = _totp(device)
    now_t = totp.t()
    for t2 in range(now_t - window, now_t + window + 1):
        if _token_at(totp, t2 - 1) == code1 and _token_at(totp, t2) == code2:
            return t2
    return None


def enable_mfa_device(
    *,
    account: Account,
    user_name: str,
    serial_number: str,
    authentication_code1: str,
    authentication_code2: str,
    actor: Actor,
    user: User | None = None,
) -> MFADevice:
    """``iam:EnableMFADevice``: assign a device to a user after two consecutive codes."""
    code1 = _parse_code(authentication_code1)
    code2 = _parse_code(authentication_code2)
    with transaction.atomic():
        user = _resolve_user(account, user_name, user)
        user = User.objects.select_for_update().get(pk=user.pk)
        device = get_device(account=account, serial_number=serial_number)
        device = MFADevice.objects.select_for_update().get(pk=device.pk)
        if device.user_id is not None:
            raise EntityAlreadyExists("MFA Device is already in use.")
        if user.mfa_devices.count() >= quotas.MFA_DEVICES_PER_USER:
            raise LimitExceeded(
                f"Cannot exceed quota for MFADevicesPerUser: {quotas.MFA_DEVICES_PER_USER}"
            )
        t2 = None
        if code1 is not None and code2 is not None:
            t2 = _find_consecutive(device, code1, code2, ENABLE_WINDOW_STEPS)
        if t2 is None:
            raise InvalidAuthenticationCode(INVALID_CODE_MESSAGE)
        now_t = _totp(device).t()
        device.user = user
        device.confirmed = True
        device.enabled_at = clock.now()
        device.last_t = t2
        device.drift = t2 - now_t if abs(t2 - now_t) > 1 else 0
        device.throttling_failure_count = 0
        device.throttling_failure_timestamp = None
        device.save(
            update_fields=[
                "user",
                "confirmed",
                "enabled_at",
                "last_t",
                "drift",
                "throttling_failure_count",
                "throttling_failure_timestamp",
            ]
        )
        record_event(
            actor=actor,
            action="iam:EnableMFADevice",
            resource_arn=user.arn,
            parameters={
                "UserName": user.name,
                "SerialNumber": serial_number,
                "AuthenticationCode1": authentication_code1,
                "AuthenticationCode2": authentication_code2,
            },
            after=device_snapshot(device),
        )
    return device


def _resolve_user(account: Account, user_name: str, user: User | None) -> User:
    """The IAM user named ``user_name``; the console passes ``user`` itself for the root user,
    who has no user name in IAM's API but may enrol devices."""
    if user is not None:
        if user.account_id != account.id:
            raise NoSuchEntity(f"The user with name {user_name} cannot be found.")
        return user
    found = User.objects.filter(account=account, is_root=False, name__iexact=user_name).first()
    if found is None:
        raise NoSuchEntity(f"The user with name {user_name} cannot be found.")
    return found


def _assigned_device(
    account: Account, user_name: str, serial_number: str, user: User | None = None
) -> tuple[User, MFADevice]:
    user = _resolve_user(account, user_name, user)
    device = get_device(account=account, serial_number=serial_number)
    if device.user_id != user.pk:
        raise NoSuchEntity(
            f"MFA Device with serial number {serial_number} does not exist for user {user.name}."
        )
    return user, MFADevice.objects.select_for_update().get(pk=device.pk)


def deactivate_mfa_device(
    *,
    account: Account,
    user_name: str,
    serial_number: str,
    actor: Actor,
    user: User | None = None,
) -> MFADevice:
    """``iam:DeactivateMFADevice``: the device is detached from the user (it is not deleted)."""
    with transaction.atomic():
        user, device = _assigned_device(account, user_name, serial_number, user)
        before = device_snapshot(device)
        device.user = None
        device.confirmed = False
        device.enabled_at = None
        device.save(update_fields=["user", "confirmed", "enabled_at"])
        record_event(
            actor=actor,
            action="iam:DeactivateMFADevice",
            resource_arn=user.arn,
            parameters={"UserName": user.name, "SerialNumber": serial_number},
            before=before,
            after=device_snapshot(device),
        )
    return device


def resync_mfa_device(
    *,
    account: Account,
    user_name: str,
    serial_number: str,
    authentication_code1: str,
    authentication_code2: str,
    actor: Actor,
) -> MFADevice:
    """``iam:ResyncMFADevice``: two sequential codes within a wider window set the drift."""
    code1 = _parse_code(authentication_code1)
    code2 = _parse_code(authentication_code2)
    with transaction.atomic():
        user, device = _assigned_device(account, user_name, serial_number)
        t2 = None
        if code1 is not None and code2 is not None:
            t2 = _find_consecutive(device, code1, code2, RESYNC_WINDOW_STEPS)
        if t2 is None or t2 <= device.last_t:
            raise InvalidAuthenticationCode(INVALID_CODE_MESSAGE)
        device.drift = t2 - _totp(device).t()
        device.last_t = t2
        device.throttling_failure_count = 0
        device.throttling_failure_timestamp = None
        device.save(
            update_fields=[
                "drift",
                "last_t",
                "throttling_failure_count",
                "throttling_failure_timestamp",
            ]
        )
        record_event(
            actor=actor,
            action="iam:ResyncMFADevice",
            resource_arn=user.arn,
            parameters={
                "UserName": user.name,
                "SerialNumber": serial_number,
                "AuthenticationCode1": authentication_code1,
                "AuthenticationCode2": authentication_code2,
            },
        )
    return device


def delete_virtual_mfa_device(*, account: Account, serial_number: str, actor: Actor) -> None:
    """``iam:DeleteVirtualMFADevice``: only an unassigned device (``DeleteConflict`` else)."""
    with transaction.atomic():
        device = get_device(account=account, serial_number=serial_number)
        device = MFADevice.objects.select_for_update().get(pk=device.pk)
        if device.user_id is not None:
            raise DeleteConflict("MFA Device is still in use.")
        device.delete()
        record_event(
            actor=actor,
            action="iam:DeleteVirtualMFADevice",
            resource_arn=serial_number,
            parameters={"SerialNumber": serial_number},
        )


# --- Selectors ------------------------------------------------------------------------------


def list_mfa_devices(*, user: User) -> list[MFADevice]:
    """``iam:ListMFADevices`` for one user: the devices enabled for them, oldest first."""
    return list(MFADevice.objects.filter(user=user).order_by("enabled_at", "id"))


def list_virtual_mfa_devices(
    *, account: Account, assignment_status: str = "Any"
) -> list[MFADevice]:
    """``iam:ListVirtualMFADevices``: ``Assigned``, ``Unassigned`` or ``Any``."""
    devices = MFADevice.objects.filter(account=account).select_related("user")
    if assignment_status == "Assigned":
        devices = devices.filter(user__isnull=False)
    elif assignment_status == "Unassigned":
        devices = devices.filter(user__isnull=True)
    return list(devices.order_by("name"))


def has_mfa(user: User) -> bool:
    return MFADevice.objects.filter(user=user, confirmed=True).exists()


# --- Verification ---------------------------------------------------------------------------


def verify_totp(device: MFADevice, code: str) -> Verification:
    """Check a code from an enabled device: once only, one step of drift, throttled.

    The accepted step is recorded with ``UPDATE … WHERE last_t < t``: if another request
    accepted the same (or a later) step first, no row changes and this one is a replay.
    """
    device.refresh_from_db()
    allowed, _ = device.verify_is_allowed()
    if not allowed:
        return Verification.THROTTLED
    token = _parse_code(code)
    matched_t = None
    if token is not None:
        totp = _totp(device)
        now_t = totp.t() + device.drift
        for t in range(now_t - device.tolerance, now_t + device.tolerance + 1):
            if _token_at(totp, t) == token:
                matched_t = t
                break
    if matched_t is None:
        _throttle_increment(device)
        return Verification.INVALID
    won = MFADevice.objects.filter(pk=device.pk, last_t__lt=matched_t).update(
        last_t=matched_t, throttling_failure_count=0, throttling_failure_timestamp=None
    )
    if not won:
        _throttle_increment(device)
        return Verification.REPLAYED
    device.refresh_from_db()
    return Verification.ACCEPTED


def _throttle_increment(device: MFADevice) -> None:
    MFADevice.objects.filter(pk=device.pk).update(
        throttling_failure_count=F("throttling_failure_count") + 1,
        throttling_failure_timestamp=timezone.now(),
    )


def verify_user_totp(user: User, code: str) -> tuple[Verification, MFADevice | None]:
    """Try the code against each of the user's devices. ``ACCEPTED`` wins; a replay on one
    device is reported as such so the audit trail can tell replays from typos."""
    result = Verification.INVALID
    for device in MFADevice.objects.filter(user=user, confirmed=True).order_by("id"):
        outcome = verify_totp(device, code)
        if outcome is Verification.ACCEPTED:
            return outcome, device
        if outcome in (Verification.REPLAYED, Verification.THROTTLED):
            result = outcome
    return result, None


# --- Recovery codes -------------------------------------------------------------------------

_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"


def _new_recovery_code() -> str:
    raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(10))
    return f"{raw[:5]}-{raw[5:]}"


def _canonical_recovery(code: str) -> str:
    return code.strip().lower().replace("-", "").replace(" ", "")


def generate_recovery_codes(*, user: User, actor: Actor) -> list[str]:
    """Replace the user's recovery codes with ten new ones, returned once in clear."""
    codes = [_new_recovery_code() for _ in range(RECOVERY_CODE_COUNT)]
    with transaction.atomic():
        User.objects.select_for_update().filter(pk=user.pk).exists()
        RecoveryCode.objects.filter(user=user).delete()
        now = clock.now()
        RecoveryCode.objects.bulk_create(
            RecoveryCode(user=user, code_hash=make_password(_canonical_recovery(c)), created_at=now)
            for c in codes
        )
        record_event(
            actor=actor,
            action="portcullis:GenerateRecoveryCodes",
            resource_arn=user.arn,
            after={"Count": len(codes)},
        )
    return codes


def remaining_recovery_codes(user: User) -> int:
    return RecoveryCode.objects.filter(user=user, used_at__isnull=True).count()


def use_recovery_code(*, user: User, code: str) -> bool:
    """Spend one recovery code. Every unused hash is checked (the time taken says nothing
    about which matched) and the spend is a conditional UPDATE, so a code works once."""
    canonical = _canonical_recovery(code)
    if len(canonical) != 10:
        return False
    matched: RecoveryCode | None = None
    for row in RecoveryCode.objects.filter(user=user, used_at__isnull=True):
        if check_password(canonical, row.code_hash) and matched is None:
            matched = row
    if matched is None:
        return False
    return bool(
        RecoveryCode.objects.filter(pk=matched.pk, used_at__isnull=True).update(used_at=clock.now())
    )


def recovery_codes_generated_within(user: User, seconds: int) -> bool:
    since = clock.now() - timedelta(seconds=seconds)
    return RecoveryCode.objects.filter(Q(user=user) & Q(created_at__gte=since)).exists()

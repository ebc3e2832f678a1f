"""Virtual MFA devices: two consecutive codes, drift, replay, throttling, recovery codes."""

from __future__ import annotations

from datetime import timedelta

import pytest

from audit.models import AuditEvent
from identity import mfa, passwords
from identity.errors import DeleteConflict, InvalidAuthenticationCode, LimitExceeded
from identity.models import MFADevice
from tests.conftest import actor_for
from tests.signin.conftest import code_at, enrol


def test_it_creates_a_device_with_a_qr_code_and_an_encrypted_seed(account, alice):
    created = mfa.create_virtual_mfa_device(
        account=account, virtual_mfa_device_name="alice-phone", actor=actor_for(alice)
    )

    assert created.serial_number == "arn:aws:iam::111111111111:mfa/alice-phone"
    assert created.qr_code_png.startswith(b"\x89PNG")
    assert created.qr_code_png_data_uri.startswith("data:image/png;base64,")
    assert created.otpauth_uri.startswith("otpauth://totp/")
    row = MFADevice.objects.get(pk=created.device.pk)
    assert created.base32_string_seed not in row.seed_encrypted
    assert row.user is None


def test_it_enables_a_device_only_with_two_consecutive_codes(account, alice):
    actor = actor_for(alice)
    created = mfa.create_virtual_mfa_device(
        account=account, virtual_mfa_device_name="alice-phone", actor=actor
    )
    seed = created.base32_string_seed

    for code1, code2 in [
        (code_at(seed, 0), code_at(seed, -1)),  # the wrong order
        (code_at(seed, -2), code_at(seed, 0)),  # not consecutive
        ("000000", "000000"),
    ]:
        with pytest.raises(InvalidAuthenticationCode) as excinfo:
            mfa.enable_mfa_device(
                account=account,
                user_name="alice",
                serial_number=created.serial_number,
                authentication_code1=code1,
                authentication_code2=code2,
                actor=actor,
            )
        assert excinfo.value.message == "Authentication code for device is not valid."

    mfa.enable_mfa_device(
        account=account,
        user_name="alice",
        serial_number=created.serial_number,
        authentication_code1=code_at(seed, -1),
        authentication_code2=code_at(seed, 0),
        actor=actor,
    )
    assert [d.name for d in mfa.list_mfa_devices(user=alice)] == ["alice-phone"]
    event = AuditEvent.objects.get(action="iam:EnableMFADevice")
    assert event.request_parameters["AuthenticationCode1"] == "***"


def test_it_accepts_one_step_of_drift_but_not_two(alice):
    device, seed = enrol(alice)
    passwords.clock.offset = timedelta(minutes=5)

    assert mfa.verify_totp(device, code_at(seed, -2)) is mfa.Verification.INVALID
    device.throttle_reset()  # django-otp's back-off would refuse the next try for a second
    assert mfa.verify_totp(device, code_at(seed, 2)) is mfa.Verification.INVALID
    device.throttle_reset()
    assert mfa.verify_totp(device, code_at(seed, -1)) is mfa.Verification.ACCEPTED
    assert mfa.verify_totp(device, code_at(seed, 1)) is mfa.Verification.ACCEPTED


def test_it_accepts_a_code_only_once(alice):
    device, seed = enrol(alice)
    passwords.clock.offset = timedelta(minutes=1)
    code = code_at(seed)

    assert mfa.verify_totp(device, code) is mfa.Verification.ACCEPTED
    assert mfa.verify_totp(device, code) is mfa.Verification.REPLAYED
    # An older code than the last accepted one is a replay too.
    device.throttle_reset()
    assert mfa.verify_totp(device, code_at(seed, -1)) is mfa.Verification.REPLAYED


def test_it_throttles_after_a_failure(alice):
    device, seed = enrol(alice)
    passwords.clock.offset = timedelta(minutes=1)

    assert mfa.verify_totp(device, "123456") in (mfa.Verification.INVALID,)
    # django-otp's back-off: the next try within a second is refused, right code or not.
    assert mfa.verify_totp(device, code_at(seed)) is mfa.Verification.THROTTLED


def test_it_keeps_at_most_eight_devices_per_user(account, alice):
    actor = actor_for(alice)
    for n in range(8):
        created = mfa.create_virtual_mfa_device(
            account=account, virtual_mfa_device_name=f"d{n}", actor=actor
        )
        mfa.enable_mfa_device(
            account=account,
            user_name="alice",
            serial_number=created.serial_number,
            authentication_code1=code_at(created.base32_string_seed, -1),
            authentication_code2=code_at(created.base32_string_seed, 0),
            actor=actor,
        )
    ninth = mfa.create_virtual_mfa_device(
        account=account, virtual_mfa_device_name="d8", actor=actor
    )

    with pytest.raises(LimitExceeded) as excinfo:
        mfa.enable_mfa_device(
            account=account,
            user_name="alice",
            serial_number=ninth.serial_number,
            authentication_code1=code_at(ninth.base32_string_seed, -1),
            authentication_code2=code_at(ninth.base32_string_seed, 0),
            actor=actor,
        )
    assert excinfo.value.message == "Cannot exceed quota for MFADevicesPerUser: 8"


def test_it_deletes_only_a_deactivated_device(account, alice):
    device, _seed = enrol(alice)
    actor = actor_for(alice)

    with pytest.raises(DeleteConflict):
        mfa.delete_virtual_mfa_device(
            account=account, serial_number=device.serial_number, actor=actor
        )
    mfa.deactivate_mfa_device(
        account=account, user_name="alice", serial_number=device.serial_number, actor=actor
    )
    mfa.delete_virtual_mfa_device(account=account, serial_number=device.serial_number, actor=actor)

    assert not MFADevice.objects.exists()


def test_it_resyncs_a_drifted_device(account, alice):
    device, seed = enrol(alice)
    # The phone's clock runs five steps fast.
    mfa.resync_mfa_device(
        account=account,
        user_name="alice",
        serial_number=device.serial_number,
        authentication_code1=code_at(seed, 4),
        authentication_code2=code_at(seed, 5),
        actor=actor_for(alice),
    )
    device.refresh_from_db()
    passwords.clock.offset = timedelta(seconds=30)

    assert device.drift == 5
    assert mfa.verify_totp(device, code_at(seed, 5)) is mfa.Verification.ACCEPTED


def test_it_spends_each_recovery_code_once_and_stores_only_hashes(alice):
    codes = mfa.generate_recovery_codes(user=alice, actor=actor_for(alice))

    assert len(codes) == 10
    assert mfa.use_recovery_code(user=alice, code=codes[0].upper()) is True
    assert mfa.use_recovery_code(user=alice, code=codes[0]) is False
    assert mfa.remaining_recovery_codes(alice) == 9
    stored = "".join(alice.recovery_codes.values_list("code_hash", flat=True))
    assert not any(c.replace("-", "") in stored for c in codes)

    fresh = mfa.generate_recovery_codes(user=alice, actor=actor_for(alice))
    assert mfa.use_recovery_code(user=alice, code=codes[1]) is False
    assert mfa.use_recovery_code(user=alice, code=fresh[1]) is True

"""The account password policy, the always-on rules, login profiles and ChangePassword."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.hashers import check_password

from audit.models import AuditEvent
from identity import passwords
from identity.errors import (
    AccessDenied,
    EntityAlreadyExists,
    NoSuchEntity,
    PasswordPolicyViolation,
    ValidationError,
)
from identity.models import PasswordHistory, User
from tests.conftest import actor_for
from tests.signin.conftest import ALICE_PASSWORD


def violations(account, password, user=None):
    return passwords.password_rule_violations(password=password, account=account, user=user)


def set_policy(account, root_actor, **fields):
    return passwords.update_account_password_policy(account=account, actor=root_actor, **fields)


def test_it_applies_aws_default_rules_when_no_policy_is_set(account):
    assert violations(account, "Sh0rt!") == ["Password should have a minimum length of 8"]
    assert violations(account, "lowercaseonly-words") == [
        "Password should have at least three of: uppercase letters, lowercase letters, "
        "numbers, symbols"
    ]
    assert violations(account, "Quiet-River-Stone") == []


@pytest.mark.parametrize(
    ("field", "password", "message"),
    [
        (
            "require_uppercase_characters",
            "quiet-river-4",
            "Password should have at least one uppercase letter",
        ),
        (
            "require_lowercase_characters",
            "QUIET-RIVER-4",
            "Password should have at least one lowercase letter",
        ),
        ("require_numbers", "Quiet-River-Stone", "Password should have at least one number"),
        ("require_symbols", "QuietRiverStone4", "Password should have at least one symbol"),
    ],
)
def test_it_enforces_each_composition_rule(account, root_actor, field, password, message):
    set_policy(account, root_actor, minimum_password_length=8, **{field: True})

    assert violations(account, password) == [message]


def test_it_names_every_broken_rule_in_one_message(account, root_actor, alice):
    set_policy(
        account,
        root_actor,
        minimum_password_length=14,
        require_numbers=True,
        require_symbols=True,
    )

    with pytest.raises(PasswordPolicyViolation) as excinfo:
        passwords.update_login_profile(
            account=account, user_name="alice", password="alicealice", actor=root_actor
        )

    assert excinfo.value.message == (
        "Password should have a minimum length of 14; "
        "Password should have at least one number; "
        "Password should have at least one symbol; "
        "Password should not contain the user name or the account alias."
    )
    assert check_password(ALICE_PASSWORD, User.objects.get(pk=alice.pk).password)


def test_it_refuses_common_passwords_whatever_the_case(account):
    assert "Password is too common" in violations(account, "Password1!")
    assert "Password is too common" in violations(account, "QWERTYUIOP")


def test_it_refuses_the_user_name_and_account_alias_inside_a_password(account, alice):
    account.alias = "alicecorp"
    account.save(update_fields=["alias"])
    rule = "Password should not contain the user name or the account alias"

    assert rule in violations(account, "My-ALICE-pass-9", alice)
    assert rule in violations(account, "Alicecorp-rules-9", alice)
    assert rule not in violations(account, "Quiet-River-9", alice)


def test_it_counts_unicode_in_code_points_after_nfkc(account, root_actor, alice):
    set_policy(account, root_actor, minimum_password_length=8)
    # Eight code points; NFKC turns the full-width letters into ASCII ones.
    assert violations(account, "Ｐａｓｓ８日本語") == []
    passwords.update_login_profile(
        account=account, user_name="alice", password="Ｑｕｉｅｔ-川-石-9", actor=root_actor
    )
    stored = User.objects.get(pk=alice.pk).password
    assert check_password(passwords.normalize("Quiet-川-石-9"), stored)


def test_it_accepts_128_characters_and_refuses_129_without_truncating(account, root_actor, alice):
    long_password = "Aa1-" + "x7Yq" * 31  # 128 characters
    passwords.update_login_profile(
        account=account, user_name="alice", password=long_password, actor=root_actor
    )
    stored = User.objects.get(pk=alice.pk).password
    assert check_password(long_password, stored)
    assert not check_password(long_password[:-1], stored)
    assert not check_password(long_password.lower(), stored)

    assert "Password should have a maximum length of 128" in violations(
        account, long_password + "z"
    )


def test_it_stores_argon2id_hashes(alice):
    assert alice.password.startswith("argon2$argon2id$")


def test_it_prevents_reuse_of_the_last_n_passwords(account, root_actor, alice):
    set_policy(account, root_actor, minimum_password_length=8, password_reuse_prevention=2)
    actor = actor_for(alice)
    passwords.change_password(
        user=alice, old_password=ALICE_PASSWORD, new_password="Second-lantern-4", actor=actor
    )

    with pytest.raises(PasswordPolicyViolation) as excinfo:
        passwords.change_password(
            user=alice, old_password="Second-lantern-4", new_password=ALICE_PASSWORD, actor=actor
        )
    assert excinfo.value.message == "Password should not be one of the last 2 passwords used."

    passwords.change_password(
        user=alice, old_password="Second-lantern-4", new_password="Third-lantern-5", actor=actor
    )
    # Two changes later the first password has left the window of two.
    passwords.change_password(
        user=alice, old_password="Third-lantern-5", new_password=ALICE_PASSWORD, actor=actor
    )
    hashes = list(
        PasswordHistory.objects.filter(user=alice).values_list("password_hash", flat=True)
    )
    assert all(h.startswith("argon2$") for h in hashes)
    assert ALICE_PASSWORD not in "".join(hashes)


def test_it_replaces_the_whole_policy_on_update(account, root_actor):
    set_policy(
        account, root_actor, minimum_password_length=12, require_symbols=True, max_password_age=90
    )
    set_policy(account, root_actor, require_numbers=True)

    policy = passwords.get_account_password_policy(account=account)
    assert policy.minimum_password_length == 6
    assert policy.require_symbols is False
    assert policy.require_numbers is True
    assert policy.max_password_age is None
    assert AuditEvent.objects.filter(action="iam:UpdateAccountPasswordPolicy").count() == 2


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"minimum_password_length": 5},
            "1 validation error detected: Value '5' at 'minimumPasswordLength' failed to "
            "satisfy constraint: Member must have value greater than or equal to 6",
        ),
        (
            {"minimum_password_length": 129},
            "1 validation error detected: Value '129' at 'minimumPasswordLength' failed to "
            "satisfy constraint: Member must have value less than or equal to 128",
        ),
        (
            {"max_password_age": 1096, "password_reuse_prevention": 0},
            "2 validation errors detected: Value '1096' at 'maxPasswordAge' failed to satisfy "
            "constraint: Member must have value less than or equal to 1095; Value '0' at "
            "'passwordReusePrevention' failed to satisfy constraint: Member must have value "
            "greater than or equal to 1",
        ),
        (
            {"password_reuse_prevention": 25},
            "1 validation error detected: Value '25' at 'passwordReusePrevention' failed to "
            "satisfy constraint: Member must have value less than or equal to 24",
        ),
    ],
)
def test_it_rejects_out_of_range_policy_values_with_aws_messages(
    account, root_actor, fields, message
):
    with pytest.raises(ValidationError) as excinfo:
        set_policy(account, root_actor, **fields)

    assert excinfo.value.message == message
    with pytest.raises(NoSuchEntity):
        passwords.get_account_password_policy(account=account)


def test_it_reports_a_missing_policy_as_aws_does(account, root_actor):
    with pytest.raises(NoSuchEntity) as excinfo:
        passwords.get_account_password_policy(account=account)
    assert excinfo.value.message == (
        "The Password Policy with domain name 111111111111 cannot be found."
    )

    set_policy(account, root_actor)
    passwords.delete_account_password_policy(account=account, actor=root_actor)
    with pytest.raises(NoSuchEntity):
        passwords.get_account_password_policy(account=account)


def test_it_manages_login_profiles_with_aws_errors(account, root_actor, alice):
    with pytest.raises(EntityAlreadyExists) as excinfo:
        passwords.create_login_profile(
            account=account, user_name="alice", password="Another-lantern-8", actor=root_actor
        )
    assert excinfo.value.message == "Login Profile for user alice already exists."

    profile = passwords.update_login_profile(
        account=account, user_name="alice", password_reset_required=True, actor=root_actor
    )
    assert profile.password_reset_required is True

    passwords.delete_login_profile(account=account, user_name="alice", actor=root_actor)
    with pytest.raises(NoSuchEntity) as excinfo:
        passwords.get_login_profile(account=account, user_name="alice")
    assert excinfo.value.message == "Login Profile for User alice cannot be found."
    event = AuditEvent.objects.get(action="iam:CreateLoginProfile")
    assert event.request_parameters["Password"] == "***"


def test_it_requires_the_current_password_to_change_it(account, alice):
    with pytest.raises(AccessDenied) as excinfo:
        passwords.change_password(
            user=alice, old_password="wrong", new_password="Fresh-lantern-6", actor=actor_for(alice)
        )
    assert excinfo.value.message == "The old password is incorrect."


def test_it_lets_every_user_change_their_password_only_when_the_policy_allows(
    account, root_actor, alice
):
    assert passwords.may_change_own_password(actor_for(alice)) is False

    set_policy(account, root_actor, allow_users_to_change_password=True)

    assert passwords.may_change_own_password(actor_for(alice)) is True


def test_it_refuses_a_change_after_hard_expiry(account, root_actor, alice):
    set_policy(account, root_actor, max_password_age=30, hard_expiry=True)
    passwords.clock.offset = timedelta(days=31)

    assert passwords.password_expired(alice)
    with pytest.raises(AccessDenied):
        passwords.change_password(
            user=alice,
            old_password=ALICE_PASSWORD,
            new_password="Fresh-lantern-6",
            actor=actor_for(alice),
        )


def test_it_generates_policy_compliant_passwords(account, root_actor, alice):
    set_policy(
        account,
        root_actor,
        minimum_password_length=24,
        require_symbols=True,
        require_numbers=True,
        require_uppercase_characters=True,
        require_lowercase_characters=True,
    )

    generated = passwords.generate_password(account, alice)

    assert len(generated) >= 24
    assert violations(account, generated, alice) == []

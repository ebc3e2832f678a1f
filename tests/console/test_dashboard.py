"""The security dashboard: its figures, how long they may be cached, and propagation status."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from identity import services as identity_services
from identity.models import AccessKey, MFADevice, User
from policies.models import ChangeEvent

pytestmark = pytest.mark.django_db


def figure(body: str, heading_id: str) -> int:
    match = re.search(rf'id="{heading_id}">[^<]*</h2>\s*<p><strong>(\d+)</strong>', body)
    assert match, heading_id
    return int(match[1])


def enable_mfa(user: User) -> None:
    MFADevice.objects.create(
        account_id=user.account_id,
        user=user,
        name=f"{user.name or 'root'}-device",
        seed_encrypted="not-used-here",
        enabled_at=timezone.now(),
    )


def test_it_counts_users_without_mfa_and_old_keys(admin_client, account, admin, objects, root):
    enable_mfa(root)
    enable_mfa(objects["user"])  # alice
    old = timezone.now() - timedelta(days=200)
    AccessKey.objects.create(
        access_key_id="AKIAEXAMPLEOLD000001", user=admin, secret_encrypted="x", created_at=old
    )
    AccessKey.objects.create(
        access_key_id="AKIAEXAMPLENEW000001",
        user=objects["user"],
        secret_encrypted="x",
        last_used_at=timezone.now(),
    )

    body = admin_client.get(reverse("console:dashboard")).content.decode()

    assert "The root user has MFA." in body
    assert figure(body, "h-mfa") == 1  # admin; alice has a device and the root is not a user
    assert '<a href="/users/admin/">admin</a>' in body
    assert figure(body, "h-keys") == 1
    assert "AKIAEXAMPLEOLD000001 of <a" in body
    assert figure(body, "h-unused") == 1  # the old key was never used


def test_it_recomputes_the_figures_after_a_change(admin_client, account, root_actor):
    before = admin_client.get(reverse("console:dashboard")).content.decode()
    assert figure(before, "h-mfa") == 1  # admin

    identity_services.create_user(account=account, user_name="newcomer", actor=root_actor)

    after = admin_client.get(reverse("console:dashboard")).content.decode()
    assert figure(after, "h-mfa") == 2
    assert (
        "they are recomputed after any change in this account and are never more than "
        "60 seconds old"
    ) in after


def test_it_shows_propagation_status_with_only_this_accounts_parked_changes(
    admin_client, account, other_account
):
    now = timezone.now()
    own = ChangeEvent.objects.create(
        kind="user",
        account_id=account.id,
        entity_id="AIDAOWNPARKEDCHANGE1",
        attempts=8,
        parked_at=now,
        last_error="RuntimeError: compile failed here",
    )
    ChangeEvent.objects.create(
        kind="user",
        account_id=other_account.id,
        entity_id="AIDAOTHERACCOUNTXXXX",
        attempts=8,
        parked_at=now,
        last_error="RuntimeError: elsewhere",
    )

    body = admin_client.get(reverse("console:dashboard")).content.decode()
    section = body[body.index('id="propagation"') :]

    assert "<dt>Current change sequence</dt>" in section
    assert "<dt>Worker heartbeat</dt>" in section
    assert f"#{own.pk} user <code>AIDAOWNPARKEDCHANGE1</code> after 8 attempts" in section
    assert "AIDAOTHERACCOUNTXXXX" not in section
    assert "elsewhere" not in section  # the newest error is the other account's: not shown

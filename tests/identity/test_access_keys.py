"""Access keys: ids, secrets shown once and encrypted at rest, the two-key quota (also under
concurrent calls), status changes, last-used, and key rotation of the encryption at rest."""

from __future__ import annotations

import re
import threading
from datetime import timedelta

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection, connections
from django.utils import timezone

from audit.models import AuditEvent
from identity import crypto, services
from identity.errors import AccessDenied, LimitExceeded, NoSuchEntity, ValidationError
from identity.models import AccessKey, TemporaryCredential, User
from policies.models import ChangeEvent
from tests.conftest import actor_for


def dump_database_text() -> str:
    """Every row of every table as text: what a stolen database dump would show."""
    chunks = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608
            chunks.extend(repr(row) for row in cursor.fetchall())
    return "\n".join(chunks)


def test_it_creates_a_key_with_an_aws_shaped_id_and_secret(account, root_actor):
    services.create_user(account=account, user_name="alice", actor=root_actor)

    created = services.create_access_key(account=account, user_name="alice", actor=root_actor)

    assert re.fullmatch(r"AKIA[A-Z2-7]{16}", created.access_key.access_key_id)
    assert len(created.secret_access_key) == 40
    assert created.access_key.status == "Active"
    assert crypto.decrypt_text(created.access_key.secret_encrypted) == created.secret_access_key


def test_it_stores_the_secret_only_encrypted(account, root_actor):
    services.create_user(account=account, user_name="alice", actor=root_actor)

    created = services.create_access_key(account=account, user_name="alice", actor=root_actor)

    dump = dump_database_text()
    assert created.access_key.access_key_id in dump
    assert created.secret_access_key not in dump


def test_it_never_puts_the_secret_in_the_audit_trail(account, root_actor):
    services.create_user(account=account, user_name="alice", actor=root_actor)

    created = services.create_access_key(account=account, user_name="alice", actor=root_actor)

    event = AuditEvent.objects.get(action="iam:CreateAccessKey")
    assert event.after == {
        "AccessKeyId": created.access_key.access_key_id,
        "UserName": "alice",
        "UserArn": "arn:aws:iam::111111111111:user/alice",
        "Status": "Active",
    }
    assert created.secret_access_key not in str(event.request_parameters)
    assert created.access_key.secret_encrypted not in str(event.after)


def test_it_allows_two_keys_per_user_counting_inactive_ones(account, root_actor):
    services.create_user(account=account, user_name="alice", actor=root_actor)
    first = services.create_access_key(account=account, user_name="alice", actor=root_actor)
    services.update_access_key(
        account=account,
        user_name="alice",
        access_key_id=first.access_key.access_key_id,
        status="Inactive",
        actor=root_actor,
    )
    services.create_access_key(account=account, user_name="alice", actor=root_actor)

    with pytest.raises(LimitExceeded) as excinfo:
        services.create_access_key(account=account, user_name="alice", actor=root_actor)

    assert excinfo.value.message == "Cannot exceed quota for AccessKeysPerUser: 2"
    assert AccessKey.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_it_keeps_the_quota_under_two_concurrent_creates(builtin_policies):
    from identity.bootstrap import create_account

    account = create_account(root_email="root@race.example", account_id="333333333333").account
    actor = actor_for(User.objects.get(account=account, is_root=True))
    services.create_user(account=account, user_name="alice", actor=actor)
    services.create_access_key(account=account, user_name="alice", actor=actor)

    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def create() -> None:
        try:
            barrier.wait()
            services.create_access_key(account=account, user_name="alice", actor=actor)
            outcomes.append("created")
        except LimitExceeded:
            outcomes.append("LimitExceeded")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=create) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["LimitExceeded", "created"]
    assert AccessKey.objects.filter(user__name="alice").count() == 2


def test_it_changes_status_and_deletes_with_priority_propagation(account, root_actor):
    services.create_user(account=account, user_name="alice", actor=root_actor)
    key_id = services.create_access_key(
        account=account, user_name="alice", actor=root_actor
    ).access_key.access_key_id

    key = services.update_access_key(
        account=account,
        user_name="alice",
        access_key_id=key_id,
        status="Inactive",
        actor=root_actor,
    )
    assert key.status == "Inactive"
    change = ChangeEvent.objects.get(kind="access_key", entity_id=key_id)
    assert change.priority
    event = AuditEvent.objects.get(action="iam:UpdateAccessKey")
    assert (event.before["Status"], event.after["Status"]) == ("Active", "Inactive")

    services.delete_access_key(
        account=account, user_name="alice", access_key_id=key_id, actor=root_actor
    )
    assert not AccessKey.objects.exists()
    assert (
        ChangeEvent.objects.filter(kind="access_key", entity_id=key_id, priority=True).count() == 2
    )
    with pytest.raises(NoSuchEntity) as excinfo:
        services.delete_access_key(
            account=account, user_name="alice", access_key_id=key_id, actor=root_actor
        )
    assert excinfo.value.message == f"The Access Key with id {key_id} cannot be found"


def test_it_rejects_an_unknown_status(account, root_actor):
    services.create_user(account=account, user_name="alice", actor=root_actor)
    key_id = services.create_access_key(
        account=account, user_name="alice", actor=root_actor
    ).access_key.access_key_id

    with pytest.raises(ValidationError) as excinfo:
        services.update_access_key(
            account=account,
            user_name="alice",
            access_key_id=key_id,
            status="Disabled",
            actor=root_actor,
        )

    assert excinfo.value.message == (
        "1 validation error detected: Value 'Disabled' at 'status' failed to satisfy "
        "constraint: Member must satisfy enum value set: [Active, Inactive]"
    )


def test_it_does_not_let_a_key_be_managed_through_another_user(account, root_actor):
    services.create_user(account=account, user_name="alice", actor=root_actor)
    services.create_user(account=account, user_name="bob", actor=root_actor)
    key_id = services.create_access_key(
        account=account, user_name="alice", actor=root_actor
    ).access_key.access_key_id

    with pytest.raises(NoSuchEntity):
        services.delete_access_key(
            account=account, user_name="bob", access_key_id=key_id, actor=root_actor
        )


def test_it_creates_a_key_for_the_calling_user_without_a_user_name(account, root_actor):
    alice = services.create_user(account=account, user_name="alice", actor=root_actor)

    created = services.create_access_key(account=account, actor=actor_for(alice))

    assert created.access_key.user == alice


def test_it_refuses_root_access_keys_unless_allowed(account, root_actor, settings):
    settings.ALLOW_ROOT_ACCESS_KEYS = False
    with pytest.raises(AccessDenied):
        services.create_access_key(account=account, actor=root_actor)
    assert not AccessKey.objects.exists()

    settings.ALLOW_ROOT_ACCESS_KEYS = True
    created = services.create_access_key(account=account, actor=root_actor)
    assert created.access_key.user.is_root


def test_it_records_last_use_only_moving_forward(account, root_actor):
    services.create_user(account=account, user_name="alice", actor=root_actor)
    key_id = services.create_access_key(
        account=account, user_name="alice", actor=root_actor
    ).access_key.access_key_id
    events_before = AuditEvent.objects.count()
    now = timezone.now()

    assert services.record_access_key_use(
        access_key_id=key_id, service="iam", region="us-east-1", when=now
    )
    assert not services.record_access_key_use(
        access_key_id=key_id, service="sts", region="eu-west-1", when=now - timedelta(seconds=5)
    )

    key = AccessKey.objects.get(pk=key_id)
    assert (key.last_used_at, key.last_used_service, key.last_used_region) == (
        now,
        "iam",
        "us-east-1",
    )
    assert AuditEvent.objects.count() == events_before


def test_it_re_encrypts_secrets_under_the_newest_key(account, root_actor, settings):
    services.create_user(account=account, user_name="alice", actor=root_actor)
    created = services.create_access_key(account=account, user_name="alice", actor=root_actor)
    session = TemporaryCredential.objects.create(
        access_key_id="ASIAEXAMPLEEXAMPLE01",
        account=account,
        secret_encrypted=crypto.encrypt("temporary-secret"),
        session_token_hash="0" * 64,
        expires_at=timezone.now() + timedelta(hours=1),
    )
    old_keys = list(settings.ENCRYPTION_KEYS)
    new_key = Fernet.generate_key().decode("ascii")
    settings.ENCRYPTION_KEYS = [new_key, *old_keys]

    call_command("rotate_encryption_keys", stdout=open("/dev/null", "w"))  # noqa: SIM115

    stored = AccessKey.objects.get(pk=created.access_key.access_key_id).secret_encrypted
    assert stored != created.access_key.secret_encrypted
    assert Fernet(new_key.encode()).decrypt(stored.encode()).decode() == created.secret_access_key
    settings.ENCRYPTION_KEYS = [new_key]
    assert crypto.decrypt_text(stored) == created.secret_access_key
    session.refresh_from_db()
    assert crypto.decrypt_text(session.secret_encrypted) == "temporary-secret"
    assert AuditEvent.objects.filter(action="portcullis:RotateEncryptionKeys").exists()

"""Seed a realistic data set for the console benchmark (bulk inserts, no audit events).

    manage.py seed_demo --users 100000 --groups 5000 --policies 2000 --roles 1000

Creates (or reuses) account 999999999999 with root ``root@demo.example``. Intended for a
benchmark database only: it writes models directly with ``bulk_create``, bypassing the
services' quotas and audit trail on purpose (IAM's default quotas are far below this scale).
"""

from __future__ import annotations

import json
import random
import secrets
import time
from datetime import timedelta
from typing import Any

from django.contrib.auth.hashers import make_password
from django.core.management.base import BaseCommand
from django.db import connection, transaction
from django.utils import timezone

from identity import naming
from identity.bootstrap import create_account
from identity.models import AccessKey, Account, Group, GroupMembership, MFADevice, Role, User
from policies.builtin import install_builtin_policies
from policies.models import (
    GroupPolicyAttachment,
    ManagedPolicy,
    PolicyVersion,
    RolePolicyAttachment,
    UserPolicyAttachment,
)

DEMO_ACCOUNT = "999999999999"
BATCH = 5000
TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{DEMO_ACCOUNT}:root"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
)


def _doc(i: int) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": f"S{i}",
                    "Effect": "Allow",
                    "Action": [f"iam:List{['Users', 'Groups', 'Roles'][i % 3]}", "iam:Get*"],
                    "Resource": f"arn:aws:iam::{DEMO_ACCOUNT}:user/team{i % 50}/*",
                }
            ],
        }
    )


class Command(BaseCommand):
    help = "Seed the demo account with users, groups, policies, roles and their links."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--users", type=int, default=100_000)
        parser.add_argument("--groups", type=int, default=5_000)
        parser.add_argument("--policies", type=int, default=2_000)
        parser.add_argument("--roles", type=int, default=1_000)
        parser.add_argument("--seed", type=int, default=7)

    def handle(self, *args: Any, **opts: Any) -> None:
        rng = random.Random(opts["seed"])
        started = time.perf_counter()
        install_builtin_policies()
        account = Account.objects.filter(pk=DEMO_ACCOUNT).first()
        if account is None:
            account = create_account(
                root_email="root@demo.example", account_id=DEMO_ACCOUNT
            ).account
        if User.objects.filter(account=account, is_root=False).exists():
            self.stdout.write("demo account already seeded; nothing to do")
            return
        now = timezone.now()
        password = make_password(secrets.token_urlsafe(24))
        with transaction.atomic():
            policies = ManagedPolicy.objects.bulk_create(
                [
                    ManagedPolicy(
                        account=account,
                        name=f"policy-{i:05}",
                        unique_id=naming.new_unique_id(naming.POLICY_ID_PREFIX),
                    )
                    for i in range(opts["policies"])
                ],
                batch_size=BATCH,
            )
            PolicyVersion.objects.bulk_create(
                [
                    PolicyVersion(policy=p, version_id="v1", document=_doc(i), is_default=True)
                    for i, p in enumerate(policies)
                ],
                batch_size=BATCH,
            )
            groups = Group.objects.bulk_create(
                [
                    Group(
                        account=account,
                        name=f"group-{i:05}",
                        unique_id=naming.new_unique_id(naming.GROUP_ID_PREFIX),
                    )
                    for i in range(opts["groups"])
                ],
                batch_size=BATCH,
            )
            users: list[User] = []
            for start in range(0, opts["users"], BATCH):
                chunk = []
                for i in range(start, min(start + BATCH, opts["users"])):
                    has_pw = i % 3 != 0
                    chunk.append(
                        User(
                            account=account,
                            name=f"user-{i:06}",
                            path=f"/team{i % 50}/",
                            unique_id=naming.new_unique_id(naming.USER_ID_PREFIX),
                            password=password if has_pw else "!unusable",
                            password_created_at=now - timedelta(days=rng.randint(1, 400))
                            if has_pw
                            else None,
                            password_last_used=now - timedelta(days=rng.randint(0, 200))
                            if has_pw and i % 5
                            else None,
                            created_at=now - timedelta(days=rng.randint(1, 800)),
                        )
                    )
                users.extend(User.objects.bulk_create(chunk))
            memberships = []
            user_attachments = []
            keys = []
            for i, user in enumerate(users):
                for g in rng.sample(groups, k=min(len(groups), 1 + i % 3)):
                    memberships.append(GroupMembership(group=g, user=user))
                if i % 10 == 0 and policies:
                    user_attachments.append(
                        UserPolicyAttachment(user=user, policy=rng.choice(policies))
                    )
                if i % 4 == 0:
                    keys.append(
                        AccessKey(
                            access_key_id=naming.new_access_key_id(),
                            user=user,
                            secret_encrypted="",
                            created_at=now - timedelta(days=rng.randint(1, 400)),
                            last_used_at=now - timedelta(days=rng.randint(0, 200))
                            if i % 8
                            else None,
                        )
                    )
            GroupMembership.objects.bulk_create(memberships, batch_size=BATCH)
            UserPolicyAttachment.objects.bulk_create(user_attachments, batch_size=BATCH)
            AccessKey.objects.bulk_create(keys, batch_size=BATCH)
            MFADevice.objects.bulk_create(
                [
                    MFADevice(
                        account=account,
                        user=u,
                        name=u.name,
                        seed_encrypted="seeded-no-seed",
                        enabled_at=now,
                    )
                    for u in users[::2]
                ],
                batch_size=BATCH,
            )
            GroupPolicyAttachment.objects.bulk_create(
                [
                    GroupPolicyAttachment(group=g, policy=policies[i % len(policies)])
                    for i, g in enumerate(groups)
                    if policies
                ],
                batch_size=BATCH,
            )
            roles = Role.objects.bulk_create(
                [
                    Role(
                        account=account,
                        name=f"role-{i:05}",
                        unique_id=naming.new_unique_id(naming.ROLE_ID_PREFIX),
                        assume_role_policy_document=TRUST,
                    )
                    for i in range(opts["roles"])
                ],
                batch_size=BATCH,
            )
            RolePolicyAttachment.objects.bulk_create(
                [
                    RolePolicyAttachment(role=r, policy=policies[i % len(policies)])
                    for i, r in enumerate(roles)
                    if policies
                ],
                batch_size=BATCH,
            )
            counts: dict[int, int] = {}
            for a in [*user_attachments]:
                counts[a.policy_id] = counts.get(a.policy_id, 0) + 1
            for i in range(len(groups) + len(roles)):
                if policies:
                    pid = (
                        policies[i % len(policies)].pk
                        if i < len(groups)
                        else policies[(i - len(groups)) % len(policies)].pk
                    )
                    counts[pid] = counts.get(pid, 0) + 1
            for p in policies:
                p.attachment_count = counts.get(p.pk, 0)
            ManagedPolicy.objects.bulk_update(policies, ["attachment_count"], batch_size=BATCH)
        if connection.vendor == "postgresql":
            # What autovacuum would do a little later: fresh statistics for the planner and a
            # visibility map, so the benchmark measures the plans production would get.
            with connection.cursor() as cursor:
                for model in (User, Group, GroupMembership, AccessKey, MFADevice, PolicyVersion):
                    cursor.execute(f'VACUUM ANALYZE "{model._meta.db_table}"')
        self.stdout.write(
            f"seeded {len(users)} users, {len(groups)} groups, {len(policies)} policies, "
            f"{len(roles)} roles, {len(memberships)} memberships, {len(keys)} access keys "
            f"in {time.perf_counter() - started:.1f}s"
        )

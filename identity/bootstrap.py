"""Creating an account and its root user: the first thing a new installation needs."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from django.db import IntegrityError, transaction

from audit.context import Actor
from audit.services import record_event
from identity import naming
from identity.errors import EntityAlreadyExists, ValidationError
from identity.models import Account, User


@dataclass(frozen=True)
class BootstrapResult:
    account: Account
    root: User
    created: bool
    password: str | None  # only when it was generated now; shown once, never stored in clear


def generate_password(length: int = 24) -> str:
    """A random password that satisfies any IAM password policy's composition rules."""
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"
    symbols = "!@#$%^&*()_+-=[]{}|'"
    while True:
        body = [secrets.choice(alphabet) for _ in range(length - 2)]
        body += [secrets.choice(symbols), secrets.choice("23456789")]
        candidate = "".join(secrets.SystemRandom().sample(body, len(body)))
        if any(c.isupper() for c in candidate) and any(c.islower() for c in candidate):
            return candidate


def create_account(
    *,
    root_email: str,
    account_id: str | None = None,
    alias: str | None = None,
    password: str | None = None,
) -> BootstrapResult:
    """Create an account and its root user. ``account_id`` may be chosen (12 digits), which is
    what a test suite pointing at Portcullis as a local IAM wants (e.g. ``123456789012``)."""
    if account_id is not None and not naming.ACCOUNT_ID_PATTERN.fullmatch(account_id):
        raise ValidationError(f"Account id {account_id} must be 12 digits.")
    if alias is not None:
        naming.validate_account_alias(alias)
    generated = password is None
    password = password or generate_password()
    with transaction.atomic():
        if account_id is None:
            account_id = naming.new_account_id()
            while Account.objects.filter(pk=account_id).exists():
                account_id = naming.new_account_id()
        elif Account.objects.filter(pk=account_id).exists():
            raise EntityAlreadyExists(f"Account {account_id} already exists.")
        account = Account.objects.create(id=account_id, alias=alias)
        root = User(
            account=account,
            name="<root_account>",
            is_root=True,
            email=root_email.lower(),
            unique_id=account_id,
        )
        root.set_password(password)
        try:
            with transaction.atomic():
                root.save(force_insert=True)
        except IntegrityError as exc:
            raise EntityAlreadyExists(
                f"A root user with email {root_email} already exists."
            ) from exc
        actor = Actor.system("bootstrap", account_id=account.id)
        record_event(
            actor=actor,
            action="portcullis:CreateAccount",
            resource_arn=account.root_arn,
            parameters={"AccountId": account_id, "RootEmail": root.email, "AccountAlias": alias},
            after={"AccountId": account_id, "AccountAlias": alias, "RootEmail": root.email},
        )
    return BootstrapResult(
        account=account, root=root, created=True, password=password if generated else None
    )


def bootstrap(
    *, root_email: str, account_id: str | None = None, alias: str | None = None
) -> BootstrapResult:
    """Idempotent: the first account if one exists, else a new one with a generated password."""
    existing = Account.objects.exclude(pk=naming.AWS_MANAGED_ACCOUNT).order_by("created_at").first()
    if existing is not None:
        root = User.objects.get(account=existing, is_root=True)
        return BootstrapResult(account=existing, root=root, created=False, password=None)
    return create_account(root_email=root_email, account_id=account_id, alias=alias)

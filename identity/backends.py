"""Authentication backend: loads the signed-in user for each request.

Credential checks (password, lockout, MFA) happen in ``identity.signin``, which calls Django's
``login()`` only after every step has passed; this backend only resolves the session's user and
refuses deactivated ones.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import BaseBackend
from django.http import HttpRequest

from identity.models import User


class PortcullisBackend(BaseBackend):
    def authenticate(self, request: HttpRequest | None, **credentials: Any) -> User | None:
        # Sign-in never goes through django.contrib.auth.authenticate(): see identity.signin.
        return None

    def get_user(self, user_id: int) -> User | None:
        user = User.objects.select_related("account").filter(pk=user_id, is_active=True).first()
        return user

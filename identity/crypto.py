"""The one helper for secrets at rest: access-key secrets and TOTP seeds.

Fernet (AES-128-CBC + HMAC-SHA256, authenticated) through ``MultiFernet``: the first key in
``settings.ENCRYPTION_KEYS`` encrypts, every key decrypts, so adding a key in front and running
``manage.py rotate_encryption_keys`` rotates without downtime. Keys come from settings, never
from the database, so a database dump alone reveals no secret.
"""

from __future__ import annotations

from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


@lru_cache(maxsize=4)
def _keyring(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise ImproperlyConfigured("ENCRYPTION_KEYS is empty.")
    try:
        return MultiFernet([Fernet(key) for key in keys])
    except ValueError as exc:
        raise ImproperlyConfigured(
            "Each ENCRYPTION_KEYS entry must be a url-safe base64 32-byte Fernet key."
        ) from exc


def keyring() -> MultiFernet:
    return _keyring(tuple(settings.ENCRYPTION_KEYS))


def encrypt(plaintext: str | bytes) -> str:
    """Encrypt a secret for storage; the result is ASCII text safe for a TextField."""
    data = plaintext.encode("utf-8") if isinstance(plaintext, str) else plaintext
    return keyring().encrypt(data).decode("ascii")


def decrypt(token: str) -> bytes:
    """Decrypt a stored secret. Raises ``InvalidToken`` if it was tampered with or no key fits."""
    return keyring().decrypt(token.encode("ascii"))


def decrypt_text(token: str) -> str:
    return decrypt(token).decode("utf-8")


def rotate(token: str) -> str:
    """Re-encrypt a stored secret under the newest key."""
    return keyring().rotate(token.encode("ascii")).decode("ascii")


__all__ = ["InvalidToken", "decrypt", "decrypt_text", "encrypt", "keyring", "rotate"]

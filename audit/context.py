"""Who is acting, and from where: passed to every service so its audit event can say so."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

_RANDOM_CHUNK = 4096
_random_pool = bytearray()
_random_lock = threading.Lock()


def _forget_random_pool() -> None:
    # A forked child must not hand out the ids its parent (or a sibling) will.
    _random_pool.clear()


os.register_at_fork(after_in_child=_forget_random_pool)


def new_request_id() -> str:
    """A random (version 4) UUID, as ``uuid.uuid4()`` makes, from ``os.urandom`` read 4 KiB at
    a time: a system call per request costs the decision API measurably on virtual machines
    that flush caches on every kernel entry."""
    with _random_lock:
        if len(_random_pool) < 16:
            _random_pool[:] = os.urandom(_RANDOM_CHUNK)
        raw = _random_pool[-16:]
        del _random_pool[-16:]
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 9562 variant
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


@dataclass(frozen=True)
class RequestMeta:
    """Where a request came from. ``request_id`` is the id returned to the caller (AWS's
    ``RequestId``), so a support question can be matched to its audit event."""

    source_ip: str = ""
    user_agent: str = ""
    request_id: str = field(default_factory=new_request_id)
    secure_transport: bool = False


@dataclass(frozen=True)
class Actor:
    """The principal performing a change.

    ``kind`` is ``root``, ``user``, ``role_session``, ``federated_user`` or ``system`` (a
    management command or a task acting on the system's behalf). ``user`` is the signed-in
    ``identity.User`` when there is one; ``session`` the STS session when the caller used
    temporary credentials.
    """

    arn: str
    account_id: str
    kind: str
    meta: RequestMeta = field(default_factory=RequestMeta)
    user: Any = None
    session: Any = None
    access_key_id: str = ""
    # When this console session passed its MFA step (None: no MFA in this session). STS
    # sessions carry their own MFA facts on ``session``.
    mfa_authenticated_at: datetime | None = None

    @classmethod
    def system(cls, reason: str, *, account_id: str = "") -> Actor:
        return cls(arn=f"portcullis:system/{reason}", account_id=account_id, kind="system")

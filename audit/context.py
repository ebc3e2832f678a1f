"""Who is acting, and from where: passed to every service so its audit event can say so."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class RequestMeta:
    """Where a request came from. ``request_id`` is the id returned to the caller (AWS's
    ``RequestId``), so a support question can be matched to its audit event."""

    source_ip: str = ""
    user_agent: str = ""
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
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

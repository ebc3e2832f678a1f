"""The Query API's operations: one handler per IAM or STS action, and what a handler gets.

A handler parses nothing and renders nothing: it receives the validated input (``call.params``,
keyed by the model's member names), asks ``call.authorize`` for its action on the resource AWS's
Service Authorization Reference names, calls one service or selector, and returns the output
structure as a dict for ``api.protocol`` to serialize.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.http import HttpRequest

from api.sigv4 import AuthenticatedCaller
from audit.context import Actor
from identity.errors import AccessDenied
from identity.models import Account
from policies import access, engine

Handler = Callable[["Call"], dict[str, Any]]


@dataclass(frozen=True)
class Operation:
    service: str
    action: str
    handler: Handler
    # Writes are audited by their service; reads (and every failure) by the API layer.
    write: bool


OPERATIONS: dict[tuple[str, str], Operation] = {}


def operation(service: str, action: str, *, write: bool) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        OPERATIONS[(service, action)] = Operation(service, action, handler, write)
        return handler

    return register


@dataclass
class Call:
    """One API call in progress."""

    request: HttpRequest
    caller: AuthenticatedCaller
    service: str
    action: str
    params: dict[str, Any]
    account: Account
    # The resource the call was authorized on, for its audit event.
    resource_arn: str = ""
    decisions: list[engine.Decision] = field(default_factory=list)
    # A write operation that ended up changing nothing (its service wrote no event) sets this so
    # the API layer audits it like a read.
    audit_read: bool = False

    @property
    def actor(self) -> Actor:
        return self.caller.actor

    @property
    def iam_action(self) -> str:
        return f"{self.service}:{self.action}"

    def arn(self, resource: str) -> str:
        """An ARN in the caller's account: ``call.arn("user/alice")``."""
        return f"arn:aws:iam::{self.account.id}:{resource}"

    def authorize(
        self,
        resource: str,
        *,
        action: str | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> None:
        """Ask the engine; ``AccessDenied`` with AWS's message unless allowed."""
        action = action or self.iam_action
        if not self.resource_arn:
            self.resource_arn = resource
        _refuse_revoked_session(self.actor, action, resource)
        self.decisions.append(access.authorize(self.actor, action, resource, context=context))


def _refuse_revoked_session(actor: Actor, action: str, resource: str) -> None:
    """Role sessions issued before the role's "revoke active sessions" instant are denied, as
    AWS's ``AWSRevokeOlderSessions`` inline deny on ``aws:TokenIssueTime`` does (IAM User
    Guide, "Revoking IAM role temporary security credentials")."""
    session = actor.session
    if session is None or session.role_id is None:
        return
    revoked_before = session.role.sessions_revoked_before
    if revoked_before is not None and session.issued_at < revoked_before:
        raise AccessDenied(
            f"User: {actor.arn} is not authorized to perform: {action} on resource: "
            f"{resource} with an explicit deny in an identity-based policy"
        )


def tag_context(tags: list[dict[str, str]] | None) -> dict[str, Any]:
    """``aws:RequestTag/<key>`` and ``aws:TagKeys`` for a request that carries tags."""
    if not tags:
        return {}
    context: dict[str, Any] = {f"aws:RequestTag/{t['Key']}": t.get("Value", "") for t in tags}
    context["aws:TagKeys"] = [t["Key"] for t in tags]
    return context


def resource_tag_context(tags: list[dict[str, str]] | None) -> dict[str, Any]:
    """``aws:ResourceTag/<key>`` (and IAM's own ``iam:ResourceTag/<key>``) of an entity."""
    context: dict[str, Any] = {}
    for tag in tags or []:
        context[f"aws:ResourceTag/{tag['Key']}"] = tag.get("Value", "")
        context[f"iam:ResourceTag/{tag['Key']}"] = tag.get("Value", "")
    return context

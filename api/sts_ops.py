"""STS operations of the Query API."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from api.registry import Call, operation, tag_context
from identity import crypto, sts
from identity.errors import AccessDenied, ClientError, NoSuchEntity
from policies import access, engine

STS = "sts"


def credentials_out(issued: sts.IssuedCredentials) -> dict[str, Any]:
    return {
        "AccessKeyId": issued.credential.access_key_id,
        "SecretAccessKey": issued.secret_access_key,
        "SessionToken": issued.session_token,
        "Expiration": issued.credential.expires_at,
    }


@operation(STS, "GetCallerIdentity", write=False)
def get_caller_identity(call: Call) -> dict[str, Any]:
    """Needs no permission: "No permissions are required to perform this operation" (STS API
    Reference, GetCallerIdentity) — even an explicit deny does not stop it."""
    actor = call.actor
    call.resource_arn = actor.arn
    session = actor.session
    if session is not None and session.role_id is not None:
        user_id = f"{session.role.unique_id}:{session.session_name}"
    elif actor.kind == "root":
        user_id = actor.account_id
    else:
        user_id = actor.user.unique_id
    return {"UserId": user_id, "Account": actor.account_id, "Arn": actor.arn}


@operation(STS, "GetSessionToken", write=True)
def get_session_token(call: Call) -> dict[str, Any]:
    p = call.params
    issued = sts.get_session_token(
        actor=call.actor,
        duration_seconds=p.get("DurationSeconds"),
        serial_number=p.get("SerialNumber"),
        token_code=p.get("TokenCode"),
    )
    return {"Credentials": credentials_out(issued)}


def _trust_decision(call: Call, role: Any, action: str, context: dict[str, Any]) -> None:
    """The role's trust policy and the caller's identity policies, decided by the engine
    (``evaluate_trust``); AccessDenied with AWS's message otherwise."""
    actor = call.actor
    full_context = access.global_context(actor)
    full_context.update(context)
    principal = access.principal_for(actor)
    request = engine.Request(
        principal=principal, action=action, resource=role.arn, context=full_context
    )
    trust = engine.compile_trust_policy(
        engine.SourcedPolicy(
            policy_id=f"{role.arn}#trust", document=role.assume_role_policy_document
        ),
        role_arn=role.arn,
    )
    caller_set = (
        engine.compile_policy_set(identity=[])
        if actor.kind == "root"
        else access.compiled_policy_set(actor)
    )
    decision = engine.evaluate_trust(
        trust_policy=trust, role_arn=role.arn, caller_policy_set=caller_set, request=request
    )
    call.decisions.append(decision)
    if not decision.allowed:
        message = engine.access_denied_message(actor.arn, action, role.arn, decision)
        encoded = encode_authorization_failure(
            call, action=action, resource=role.arn, decision=decision, context=full_context
        )
        raise AccessDenied(f"{message}. Encoded authorization failure message: {encoded}")


@operation(STS, "AssumeRole", write=True)
def assume_role(call: Call) -> dict[str, Any]:
    p = call.params
    role_arn = p["RoleArn"]
    call.resource_arn = role_arn
    try:
        role = sts.role_by_arn(role_arn)
    except NoSuchEntity as exc:
        # AWS answers a role that does not exist exactly like one the caller may not assume.
        raise AccessDenied(
            f"User: {call.actor.arn} is not authorized to perform: sts:AssumeRole on "
            f"resource: {role_arn}"
        ) from exc
    tags = p.get("Tags") or []
    context: dict[str, Any] = {"sts:RoleSessionName": p["RoleSessionName"], **tag_context(tags)}
    if "ExternalId" in p:
        context["sts:ExternalId"] = p["ExternalId"]
    if p.get("TransitiveTagKeys"):
        context["sts:TransitiveTagKeys"] = p["TransitiveTagKeys"]
    if p.get("SourceIdentity"):
        context["sts:SourceIdentity"] = p["SourceIdentity"]
    mfa_ok = sts.check_assume_role_mfa(
        actor=call.actor, serial_number=p.get("SerialNumber"), token_code=p.get("TokenCode")
    )
    if mfa_ok:
        context["aws:MultiFactorAuthPresent"] = True
        context["aws:MultiFactorAuthAge"] = 0
    _trust_decision(call, role, "sts:AssumeRole", context)
    if tags:
        # Session tags need sts:TagSession in the trust policy (IAM User Guide, "Passing
        # session tags in AWS STS").
        _trust_decision(call, role, "sts:TagSession", context)
    if p.get("SourceIdentity"):
        _trust_decision(call, role, "sts:SetSourceIdentity", context)
    issued = sts.assume_role(
        actor=call.actor,
        role=role,
        role_session_name=p["RoleSessionName"],
        duration_seconds=p.get("DurationSeconds"),
        policy=p.get("Policy"),
        policy_arns=[entry["arn"] for entry in p.get("PolicyArns") or []],
        tags=tags,
        transitive_tag_keys=p.get("TransitiveTagKeys") or [],
        source_identity=p.get("SourceIdentity"),
        mfa_authenticated=mfa_ok,
    )
    credential = issued.credential
    out: dict[str, Any] = {
        "Credentials": credentials_out(issued),
        "AssumedRoleUser": {
            "AssumedRoleId": f"{role.unique_id}:{credential.session_name}",
            "Arn": f"arn:aws:sts::{role.account_id}:assumed-role/{role.name}/"
            f"{credential.session_name}",
        },
        "SourceIdentity": credential.source_identity or None,
    }
    if issued.packed_policy_size is not None and (p.get("Policy") or p.get("PolicyArns")):
        out["PackedPolicySize"] = issued.packed_policy_size
    return out


# --- encoded authorization failures -------------------------------------------------------------
#
# Some AWS services return "Encoded authorization failure message: <blob>" with an AccessDenied,
# and STS DecodeAuthorizationMessage turns the blob into a JSON document for callers allowed
# sts:DecodeAuthorizationMessage, because the details (which statements matched, the request's
# context) may be sensitive (STS API Reference, DecodeAuthorizationMessage). AWS's IAM and STS
# do not encode their own denials; Portcullis does so for AssumeRole's trust decisions, the
# denial that is hardest to debug, in AWS's decoded shape. The blob is encrypted with the
# installation's keys (``identity.crypto``, Fernet), so only Portcullis can read it.


class InvalidAuthorizationMessage(ClientError):
    code = "InvalidAuthorizationMessageException"


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def encode_authorization_failure(
    call: Call,
    *,
    action: str,
    resource: str,
    decision: engine.Decision,
    context: dict[str, Any],
) -> str:
    document = {
        "account": call.account.id,
        "allowed": False,
        "explicitDeny": decision.decision == "explicitDeny",
        "matchedStatements": {
            "items": [
                {
                    "statementId": m.sid or "",
                    "effect": m.effect.upper(),
                    "policyId": m.policy_id,
                    "policyKind": str(m.policy_kind),
                    "statementIndex": m.statement_index,
                }
                for m in decision.matched_statements
            ]
        },
        "failures": {"items": [{"reason": decision.deny_reason}]},
        "context": {
            "principal": {"arn": call.actor.arn},
            "action": action,
            "resource": resource,
            "conditions": {
                "items": [
                    {"key": key, "values": {"items": [{"value": json.dumps(_plain(value))}]}}
                    for key, value in sorted(context.items())
                ]
            },
            "missingContextValues": list(decision.missing_context_values),
        },
    }
    return crypto.encrypt(json.dumps(document, separators=(",", ":")))


@operation(STS, "DecodeAuthorizationMessage", write=False)
def decode_authorization_message(call: Call) -> dict[str, Any]:
    call.authorize("*")
    invalid = InvalidAuthorizationMessage(
        "The error message is invalid or was not encoded for this account."
    )
    try:
        document = json.loads(crypto.decrypt_text(call.params["EncodedMessage"]))
    except Exception as exc:
        raise invalid from exc
    if not isinstance(document, dict) or document.pop("account", None) != call.account.id:
        raise invalid
    return {"DecodedMessage": json.dumps(document, separators=(",", ":"))}

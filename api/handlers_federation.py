"""Query API operations for OpenID Connect federation.

IAM: the ``CreateOpenIDConnectProvider`` family, signed and authorized like every IAM call.
STS: ``AssumeRoleWithWebIdentity``, which AWS takes **unsigned** ("You do not need to use AWS
security credentials to call this API", STS API Reference): the ID token is the credential and
the role's trust policy decides. ``api.views.root`` hands such requests to ``unsigned_sts``.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.http import HttpRequest, HttpResponse

from api import protocol
from api.registry import Call, operation, tag_context
from audit.context import RequestMeta
from identity import federation, naming
from identity.errors import IAMError
from identity.models import OIDCProvider
from identity.request_context import request_meta

IAM = "iam"
STS = "sts"
# STS actions AWS accepts without a signature that Portcullis implements.
UNSIGNED_STS_ACTIONS = frozenset({"AssumeRoleWithWebIdentity"})


def _provider_arn(call: Call, url: str) -> str:
    probe = OIDCProvider(account_id=call.account.id, url=url)
    return probe.arn


def provider_out(provider: OIDCProvider) -> dict[str, Any]:
    # GetOpenIDConnectProvider returns the URL without its scheme, as IAM stores it.
    return {
        "Url": provider.host_and_path,
        "ClientIDList": list(provider.client_ids),
        "ThumbprintList": list(provider.thumbprints),
        "CreateDate": provider.created_at,
        "Tags": list(provider.tags),
    }


@operation(IAM, "CreateOpenIDConnectProvider", write=True)
def create_open_id_connect_provider(call: Call) -> dict[str, Any]:
    p = call.params
    federation.validate_provider_url(p["Url"])
    arn = _provider_arn(call, p["Url"])
    tags = p.get("Tags") or []
    call.authorize(arn, context=tag_context(tags))
    if tags:
        call.authorize(arn, action="iam:TagOpenIDConnectProvider", context=tag_context(tags))
    provider = federation.create_open_id_connect_provider(
        account=call.account,
        url=p["Url"],
        client_id_list=p.get("ClientIDList") or [],
        thumbprint_list=p.get("ThumbprintList") or [],
        tags=tags,
        actor=call.actor,
    )
    return {"OpenIDConnectProviderArn": provider.arn, "Tags": list(provider.tags)}


@operation(IAM, "GetOpenIDConnectProvider", write=False)
def get_open_id_connect_provider(call: Call) -> dict[str, Any]:
    arn = call.params["OpenIDConnectProviderArn"]
    call.authorize(arn)
    provider = federation.get_open_id_connect_provider(account=call.account, arn=arn)
    return provider_out(provider)


@operation(IAM, "ListOpenIDConnectProviders", write=False)
def list_open_id_connect_providers(call: Call) -> dict[str, Any]:
    call.authorize("*")
    providers = federation.list_open_id_connect_providers(account=call.account)
    return {"OpenIDConnectProviderList": [{"Arn": p.arn} for p in providers]}


@operation(IAM, "DeleteOpenIDConnectProvider", write=True)
def delete_open_id_connect_provider(call: Call) -> dict[str, Any]:
    arn = call.params["OpenIDConnectProviderArn"]
    call.authorize(arn)
    federation.delete_open_id_connect_provider(account=call.account, arn=arn, actor=call.actor)
    return {}


@operation(IAM, "AddClientIDToOpenIDConnectProvider", write=True)
def add_client_id(call: Call) -> dict[str, Any]:
    arn = call.params["OpenIDConnectProviderArn"]
    call.authorize(arn)
    federation.add_client_id_to_open_id_connect_provider(
        account=call.account, arn=arn, client_id=call.params["ClientID"], actor=call.actor
    )
    return {}


@operation(IAM, "RemoveClientIDFromOpenIDConnectProvider", write=True)
def remove_client_id(call: Call) -> dict[str, Any]:
    arn = call.params["OpenIDConnectProviderArn"]
    call.authorize(arn)
    federation.remove_client_id_from_open_id_connect_provider(
        account=call.account, arn=arn, client_id=call.params["ClientID"], actor=call.actor
    )
    return {}


@operation(IAM, "UpdateOpenIDConnectProviderThumbprint", write=True)
def update_thumbprint(call: Call) -> dict[str, Any]:
    arn = call.params["OpenIDConnectProviderArn"]
    call.authorize(arn)
    federation.update_open_id_connect_provider_thumbprint(
        account=call.account,
        arn=arn,
        thumbprint_list=call.params["ThumbprintList"],
        actor=call.actor,
    )
    return {}


@operation(IAM, "TagOpenIDConnectProvider", write=True)
def tag_provider(call: Call) -> dict[str, Any]:
    arn = call.params["OpenIDConnectProviderArn"]
    call.authorize(arn, context=tag_context(call.params["Tags"]))
    federation.tag_open_id_connect_provider(
        account=call.account, arn=arn, tags=call.params["Tags"], actor=call.actor
    )
    return {}


@operation(IAM, "UntagOpenIDConnectProvider", write=True)
def untag_provider(call: Call) -> dict[str, Any]:
    arn = call.params["OpenIDConnectProviderArn"]
    call.authorize(arn, context={"aws:TagKeys": call.params["TagKeys"]})
    federation.untag_open_id_connect_provider(
        account=call.account, arn=arn, tag_keys=call.params["TagKeys"], actor=call.actor
    )
    return {}


@operation(IAM, "ListOpenIDConnectProviderTags", write=False)
def list_provider_tags(call: Call) -> dict[str, Any]:
    arn = call.params["OpenIDConnectProviderArn"]
    call.authorize(arn)
    provider = federation.get_open_id_connect_provider(account=call.account, arn=arn)
    # At most 50 tags: one page, as IAM returns them.
    return {"Tags": list(provider.tags), "IsTruncated": False}


# --- Unsigned STS ---------------------------------------------------------------------------


def is_unsigned_sts_call(request: HttpRequest) -> bool:
    """Whether an unsigned request to ``/`` is an STS action AWS takes without a signature."""
    if request.method == "POST":
        content_type = request.META.get("CONTENT_TYPE", "").split(";")[0].strip().lower()
        if content_type != "application/x-www-form-urlencoded":
            return False
        action = request.POST.get("Action")
    else:
        action = request.GET.get("Action")
    return action in UNSIGNED_STS_ACTIONS


# What a refused request's audit event keeps of its parameters (the token is redacted by the
# audit trail; the others are cut short, since nothing validated them yet).
_AUDITED_INPUT = ("RoleArn", "RoleSessionName", "DurationSeconds", "WebIdentityToken")
_AUDITED_VALUE_LENGTH = 2048


def _record_input_error(error: IAMError, params: dict[str, str], meta: RequestMeta) -> None:
    role_arn = str(params.get("RoleArn", ""))[:_AUDITED_VALUE_LENGTH]
    account_id = (naming.parse_arn(role_arn) or {}).get("account", "")
    federation.record_rejection(
        account_id=account_id if naming.ACCOUNT_ID_PATTERN.fullmatch(account_id) else "",
        action=federation.ACTION_ASSUME,
        error=error,
        meta=meta,
        parameters={
            k: str(params[k])[:_AUDITED_VALUE_LENGTH] for k in _AUDITED_INPUT if k in params
        },
    )


def unsigned_sts(request: HttpRequest) -> HttpResponse:
    """``sts:AssumeRoleWithWebIdentity`` over the Query protocol. The service audits every
    outcome, success or refusal, with the web identity as the actor."""
    from api import views  # the endpoint's request parsing and XML helpers

    request_id = str(uuid.uuid4())
    request.portcullis_request_id = request_id  # type: ignore[attr-defined]
    meta = request_meta(request)
    params: dict[str, str] = {}
    try:
        length = request.META.get("CONTENT_LENGTH") or "0"
        if not length.isdigit() or int(length) > views.MAX_BODY_BYTES:
            raise protocol.RequestEntityTooLarge(
                f"Request body must be at most {views.MAX_BODY_BYTES} bytes."
            )
        params = dict(views._parameters(request))
        action = params.pop("Action", "")
        version = params.pop("Version", None)
        if version != protocol.API_VERSIONS[STS]:
            raise protocol.InvalidAction(
                f"Could not find operation {action} for version {version or 'NO_VERSION_SPECIFIED'}"
            )
        op_model = protocol.operation(STS, action)
        p = protocol.parse_input(op_model, params)
    except IAMError as error:
        # The service audits every outcome once it is called; a request refused before that
        # (a missing RoleArn, a malformed list, a wrong version) is audited here.
        _record_input_error(error, params, meta)
        return views._error(STS, error, request_id)
    try:
        issued = federation.assume_role_with_web_identity(
            role_arn=p["RoleArn"],
            role_session_name=p["RoleSessionName"],
            web_identity_token=p["WebIdentityToken"],
            duration_seconds=p.get("DurationSeconds"),
            policy=p.get("Policy") or "",
            policy_arns=[entry["arn"] for entry in p.get("PolicyArns") or []],
            meta=meta,
        )
    except IAMError as error:
        return views._error(STS, error, request_id)
    credential = issued.credential
    result = {
        "Credentials": {
            "AccessKeyId": credential.access_key_id,
            "SecretAccessKey": issued.secret_access_key,
            "SessionToken": issued.session_token,
            "Expiration": credential.expires_at,
        },
        "SubjectFromWebIdentityToken": issued.identity.subject,
        "AssumedRoleUser": {
            "Arn": issued.assumed_role_arn,
            "AssumedRoleId": issued.assumed_role_id,
        },
        # "For OpenID Connect ID tokens, this contains the value of the iss field."
        "Provider": issued.identity.provider.url,
        "Audience": issued.identity.audience,
    }
    body = protocol.serialize_response(STS, op_model, result, request_id)
    return views._xml(body, 200, request_id)

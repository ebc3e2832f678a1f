"""The AWS Query protocol, driven by botocore's own IAM and STS service models.

Parsing flattens the form parameters (``Tags.member.1.Key``) back into the operation's input
structure and checks the model's constraints (required, length, range, enum, pattern) with
AWS's ``ValidationError`` wording; serializing walks the output shape, so member names, list
wrappers (``<member>``), maps (``<entry><key/><value/></entry>``), booleans and ISO 8601
timestamps are exactly what boto3 parses. One generic walker instead of a template per
operation: a shape boto3 knows is a shape we emit.

Reference: AWS Query protocol (https://smithy.io/2.0/aws/protocols/aws-query-protocol.html).
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any
from urllib.parse import quote
from xml.sax.saxutils import escape

from botocore.loaders import Loader
from botocore.model import ListShape, MapShape, OperationModel, ServiceModel, Shape, StructureShape

from identity.errors import IAMError, ValidationError

API_VERSIONS = {"iam": "2010-05-08", "sts": "2011-06-15"}


class QueryProtocolError(IAMError):
    sender_fault = True
    http_status = 400


class InvalidAction(QueryProtocolError):
    code = "InvalidAction"


class MissingAction(QueryProtocolError):
    code = "MissingAction"


class MalformedQueryString(QueryProtocolError):
    code = "MalformedQueryString"


class RequestEntityTooLarge(QueryProtocolError):
    code = "RequestEntityTooLarge"
    http_status = 413


class InvalidParameterValue(QueryProtocolError):
    code = "InvalidParameterValue"


@lru_cache(maxsize=4)
def service_model(service: str) -> ServiceModel:
    loader = Loader()
    return ServiceModel(
        loader.load_service_model(service, "service-2", API_VERSIONS[service]), service
    )


def namespace(service: str) -> str:
    return service_model(service).metadata["xmlNamespace"]


def operation(service: str, action: str) -> OperationModel:
    model = service_model(service)
    if action not in model.operation_names:
        raise InvalidAction(
            f"Could not find operation {action} for version {API_VERSIONS[service]}"
        )
    return model.operation_model(action)


# --- parsing ----------------------------------------------------------------------------------


def _tree(params: dict[str, str]) -> dict[str, Any]:
    """``{"Tags.member.1.Key": "k"}`` → ``{"Tags": {"member": {"1": {"Key": "k"}}}}``."""
    root: dict[str, Any] = {}
    for name, value in params.items():
        node = root
        parts = name.split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise MalformedQueryString(f"Parameter {name} conflicts with another parameter.")
            node = child
        if isinstance(node.get(parts[-1]), dict):
            raise MalformedQueryString(f"Parameter {name} conflicts with another parameter.")
        node[parts[-1]] = value
    return root


def _field(path: str, name: str) -> str:
    # AWS names members in lower camel case in validation messages: 'userName', 'tags.1.member.key'.
    label = name[:1].lower() + name[1:]
    return f"{path}.{label}" if path else label


@lru_cache(maxsize=512)
def _compiled(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern, re.DOTALL)
    except re.error:
        # Java-only syntax (\p{L}, possessive quantifiers): the services check those values.
        return None


class _Errors:
    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, value: Any, field: str, constraint: str) -> None:
        shown = "null" if value is None else f"'{value}'"
        self.items.append(f"Value {shown} at '{field}' failed to satisfy constraint: {constraint}")

    def raise_if_any(self) -> None:
        if not self.items:
            return
        count = len(self.items)
        noun = "error" if count == 1 else "errors"
        raise ValidationError(f"{count} validation {noun} detected: " + "; ".join(self.items))


def _indexed(node: Any) -> list[Any]:
    if not isinstance(node, dict):
        raise MalformedQueryString("Expected a list of members.")
    try:
        indexed = sorted((int(k), v) for k, v in node.items())
    except ValueError as exc:
        raise MalformedQueryString("List member indexes must be numbers.") from exc
    return [v for _, v in indexed]


def _scalar(shape: Shape, raw: Any, field: str, errors: _Errors) -> Any:
    if isinstance(raw, dict):
        raise MalformedQueryString(f"Parameter {field} must be a single value.")
    kind = shape.type_name
    value: Any = raw
    if kind in ("integer", "long"):
        try:
            value = int(raw)
        except ValueError:
            errors.add(raw, field, "Member must be a number")
            return None
        low, high = shape.metadata.get("min"), shape.metadata.get("max")
        if low is not None and value < low:
            errors.add(value, field, f"Member must have value greater than or equal to {low}")
        if high is not None and value > high:
            errors.add(value, field, f"Member must have value less than or equal to {high}")
        return value
    if kind == "boolean":
        if raw.lower() not in ("true", "false"):
            errors.add(raw, field, "Member must be true or false")
            return None
        return raw.lower() == "true"
    if kind == "timestamp":
        try:
            return datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            errors.add(raw, field, "Member must be an ISO 8601 timestamp")
            return None
    if kind == "blob":
        try:
            return base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            errors.add(raw, field, "Member must be base64-encoded")
            return None
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if low is not None and len(value) < low:
        errors.add(value, field, f"Member must have length greater than or equal to {low}")
    elif high is not None and len(value) > high:
        errors.add(value, field, f"Member must have length less than or equal to {high}")
    elif shape.enum and value not in shape.enum:
        errors.add(value, field, f"Member must satisfy enum value set: [{', '.join(shape.enum)}]")
    elif shape.metadata.get("pattern"):
        compiled = _compiled(shape.metadata["pattern"])
        if compiled is not None and not compiled.fullmatch(value):
            errors.add(
                value,
                field,
                f"Member must satisfy regular expression pattern: {shape.metadata['pattern']}",
            )
    return value


def _parse(shape: Shape, node: Any, field: str, errors: _Errors) -> Any:
    if isinstance(shape, StructureShape):
        if not isinstance(node, dict):
            raise MalformedQueryString(f"Parameter {field} must be a structure.")
        result: dict[str, Any] = {}
        for name, member in shape.members.items():
            key = member.serialization.get("name", name)
            child_field = _field(field, name)
            if key in node:
                result[name] = _parse(member, node[key], child_field, errors)
            elif name in shape.required_members:
                errors.add(None, child_field, "Member must not be null")
        return result
    if isinstance(shape, ListShape):
        if node == "":
            # An empty list is sent as the bare name with no value.
            return []
        member_key = shape.member.serialization.get("name", "member")
        if shape.serialization.get("flattened"):
            items = _indexed(node)
        else:
            if not isinstance(node, dict) or set(node) - {member_key}:
                raise MalformedQueryString(f"Parameter {field} must be a list of {member_key}.")
            items = _indexed(node.get(member_key, {}))
        values = [
            _parse(shape.member, item, f"{field}.{i}.member", errors)
            for i, item in enumerate(items, start=1)
        ]
        low, high = shape.metadata.get("min"), shape.metadata.get("max")
        if high is not None and len(values) > high:
            errors.add("[...]", field, f"Member must have length less than or equal to {high}")
        if low is not None and len(values) < low:
            errors.add("[...]", field, f"Member must have length greater than or equal to {low}")
        return values
    if isinstance(shape, MapShape):
        entries = _indexed(node.get("entry", {}) if isinstance(node, dict) else node)
        out: dict[str, Any] = {}
        for entry in entries:
            if not isinstance(entry, dict) or "key" not in entry:
                raise MalformedQueryString(f"Parameter {field} has a map entry with no key.")
            out[entry["key"]] = _parse(shape.value, entry.get("value", ""), field, errors)
        return out
    return _scalar(shape, node, field, errors)


def parse_input(op: OperationModel, params: dict[str, str]) -> dict[str, Any]:
    """The operation's input as a dict keyed by member name, validated against the model."""
    if op.input_shape is None:
        return {}
    errors = _Errors()
    result = _parse(op.input_shape, _tree(params), "", errors)
    errors.raise_if_any()
    return result


# --- serializing ------------------------------------------------------------------------------


def _timestamp(value: datetime | date | str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.strftime("%Y-%m-%dT%H:%M:%SZ")
    return value.isoformat()


def _text(shape: Shape, value: Any) -> str:
    kind = shape.type_name
    if kind == "boolean":
        return "true" if value else "false"
    if kind == "timestamp":
        return _timestamp(value)
    if kind == "blob":
        data = value.encode("utf-8") if isinstance(value, str) else value
        return base64.b64encode(data).decode("ascii")
    if shape.name == "policyDocumentType":
        # IAM returns policy documents URL-encoded (RFC 3986); botocore decodes them.
        return quote(str(value), safe="-_.~")
    return str(value)


def _serialize(shape: Shape, value: Any, name: str, out: list[str]) -> None:
    if value is None:
        return
    if isinstance(shape, StructureShape):
        out.append(f"<{name}>")
        for member_name, member in shape.members.items():
            if isinstance(value, dict):
                child = value.get(member_name)
            else:
                child = getattr(value, member_name, None)
            _serialize(member, child, member.serialization.get("name", member_name), out)
        out.append(f"</{name}>")
    elif isinstance(shape, ListShape):
        member_name = shape.member.serialization.get("name", "member")
        if shape.serialization.get("flattened"):
            for item in value:
                _serialize(shape.member, item, name, out)
        else:
            out.append(f"<{name}>")
            for item in value:
                _serialize(shape.member, item, member_name, out)
            out.append(f"</{name}>")
    elif isinstance(shape, MapShape):
        out.append(f"<{name}>")
        for key, item in value.items():
            out.append("<entry>")
            _serialize(shape.key, key, "key", out)
            _serialize(shape.value, item, "value", out)
            out.append("</entry>")
        out.append(f"</{name}>")
    else:
        out.append(f"<{name}>{escape(_text(shape, value))}</{name}>")


def serialize_response(
    service: str, op: OperationModel, result: dict[str, Any], request_id: str
) -> str:
    out = [f'<{op.name}Response xmlns="{namespace(service)}">']
    wrapper = _result_wrapper(op)
    if op.output_shape is not None and wrapper:
        _serialize(op.output_shape, result, wrapper, out)
    out.append(f"<ResponseMetadata><RequestId>{escape(request_id)}</RequestId></ResponseMetadata>")
    out.append(f"</{op.name}Response>")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + "".join(out)


@lru_cache(maxsize=512)
def _result_wrapper_by_name(service: str, action: str) -> str | None:
    raw = service_model(service)._service_description["operations"][action]
    return raw.get("output", {}).get("resultWrapper")


def _result_wrapper(op: OperationModel) -> str | None:
    return _result_wrapper_by_name(op.service_model.service_name, op.name)


def serialize_error(service: str, error: IAMError, request_id: str) -> str:
    fault = "Sender" if error.sender_fault else "Receiver"
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<ErrorResponse xmlns="{namespace(service)}">'
        f"<Error><Type>{fault}</Type><Code>{escape(error.code)}</Code>"
        f"<Message>{escape(error.message)}</Message></Error>"
        f"<RequestId>{escape(request_id)}</RequestId></ErrorResponse>"
    )

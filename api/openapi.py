"""The OpenAPI 3.1 document of the decision API (served at ``/v1/openapi.json``)."""

from __future__ import annotations

from typing import Any

_ERROR = {
    "type": "object",
    "required": ["code", "message"],
    "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
}

_REQUEST = {
    "type": "object",
    "required": ["principal", "action"],
    "additionalProperties": False,
    "properties": {
        "principal": {
            "type": "string",
            "description": "ARN of an IAM user, role or root user, e.g. "
            "arn:aws:iam::111111111111:user/alice",
        },
        "action": {"type": "string", "examples": ["s3:GetObject"]},
        "resource": {"type": "string", "default": "*"},
        "context": {
            "type": "object",
            "description": "Condition keys and their values (aws:SourceIp, aws:RequestTag/..., "
            "your own keys). aws:CurrentTime and aws:EpochTime default to now; the principal's "
            "aws:username, aws:userid, aws:PrincipalArn and aws:PrincipalTag/* come from "
            "Portcullis.",
            "additionalProperties": {
                "oneOf": [
                    {"type": ["string", "number", "boolean"]},
                    {"type": "array", "items": {"type": ["string", "number", "boolean"]}},
                ]
            },
        },
    },
}

_STATEMENT = {
    "type": "object",
    "properties": {
        "policyId": {"type": "string"},
        "policyKind": {"type": "string", "enum": ["identity", "boundary", "session", "resource"]},
        "statementIndex": {"type": "integer"},
        "sid": {"type": ["string", "null"]},
        "effect": {"type": "string", "enum": ["Allow", "Deny"]},
    },
}

_DECISION = {
    "type": "object",
    "required": ["decision", "allowed"],
    "properties": {
        "decision": {"type": "string", "enum": ["allowed", "explicitDeny", "implicitDeny"]},
        "allowed": {"type": "boolean"},
        "matchedStatements": {"type": "array", "items": {"$ref": "#/components/schemas/Statement"}},
        "missingContextValues": {"type": "array", "items": {"type": "string"}},
        "denyReason": {"type": "string"},
        "changeSequence": {
            "type": "integer",
            "description": "The change sequence the decision reflects: every change up to it.",
        },
        "source": {"type": "string", "enum": ["store", "database", "error"]},
        "status": {"type": "integer", "description": "Batch only: this item's HTTP status."},
        "error": {"$ref": "#/components/schemas/Error"},
    },
}


def _responses(ok: dict[str, Any]) -> dict[str, Any]:
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}
    return {
        "200": {"description": "Decided", "content": {"application/json": {"schema": ok}}},
        "400": {"description": "Malformed request", "content": error},
        "403": {
            "description": "Bad signature, or the caller lacks portcullis:Authorize on the "
            "principal (audited)",
            "content": error,
        },
        "404": {"description": "No such principal (an implicit deny)", "content": error},
        "500": {"description": "Could not decide: an explicit deny", "content": error},
        "503": {
            "description": "Could not decide (e.g. the database is unreachable and no trusted "
            "compiled set exists): an explicit deny",
            "content": error,
        },
    }


def document(server_url: str) -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Portcullis decision API",
            "version": "1",
            "description": "Ask whether a principal may perform an action on a resource. "
            "Requests are signed with AWS Signature Version 4 (service 'portcullis', any "
            "region) using a Portcullis access key whose principal is allowed "
            "portcullis:Authorize on the principal asked about. Errors never allow.",
        },
        "servers": [{"url": server_url.rstrip("/")}],
        "security": [{"sigv4": []}],
        "paths": {
            "/v1/authorize": {
                "post": {
                    "operationId": "authorize",
                    "summary": "One decision",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/AuthorizeRequest"}
                            }
                        },
                    },
                    "responses": _responses({"$ref": "#/components/schemas/Decision"}),
                }
            },
            "/v1/authorize/batch": {
                "post": {
                    "operationId": "authorizeBatch",
                    "summary": "Up to 100 decisions, answered in order",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["requests"],
                                    "properties": {
                                        "requests": {
                                            "type": "array",
                                            "minItems": 1,
                                            "maxItems": 100,
                                            "items": {
                                                "$ref": "#/components/schemas/AuthorizeRequest"
                                            },
                                        }
                                    },
                                }
                            }
                        },
                    },
                    "responses": _responses(
                        {
                            "type": "object",
                            "properties": {
                                "results": {
                                    "type": "array",
                                    "items": {"$ref": "#/components/schemas/Decision"},
                                }
                            },
                        }
                    ),
                }
            },
            "/v1/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "summary": "This document",
                    "security": [],
                    "responses": {"200": {"description": "The OpenAPI document"}},
                }
            },
        },
        "components": {
            "securitySchemes": {
                "sigv4": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "AWS4-HMAC-SHA256 Credential=AKIA.../<date>/<region>/"
                    "portcullis/aws4_request, SignedHeaders=..., Signature=...",
                }
            },
            "schemas": {
                "AuthorizeRequest": _REQUEST,
                "Decision": _DECISION,
                "Statement": _STATEMENT,
                "Error": _ERROR,
                "ErrorResponse": {
                    "type": "object",
                    "properties": {
                        "error": {"$ref": "#/components/schemas/Error"},
                        "decision": {"type": "string"},
                        "allowed": {"type": "boolean", "const": False},
                    },
                },
            },
        },
    }

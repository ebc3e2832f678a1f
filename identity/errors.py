"""IAM's error vocabulary, shared by services, the Query API and the console.

A service raises one of these; the Query API renders it as AWS's ``ErrorResponse`` XML with the
same code and HTTP status, the console as a form or page error. Codes and statuses follow the
IAM API Reference's "Errors" section of each action.
"""

from __future__ import annotations


class IAMError(Exception):
    """An error IAM documents, with its code, HTTP status and fault side."""

    code = "ServiceFailure"
    http_status = 500
    sender_fault = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ClientError(IAMError):
    http_status = 400
    sender_fault = True


class ValidationError(ClientError):
    code = "ValidationError"


class InvalidInput(ClientError):
    code = "InvalidInput"


class MalformedPolicyDocument(ClientError):
    code = "MalformedPolicyDocument"


class NoSuchEntity(ClientError):
    code = "NoSuchEntity"
    http_status = 404


class EntityAlreadyExists(ClientError):
    code = "EntityAlreadyExists"
    http_status = 409


class LimitExceeded(ClientError):
    code = "LimitExceeded"
    http_status = 409


class DeleteConflict(ClientError):
    code = "DeleteConflict"
    http_status = 409


class InvalidAuthenticationCode(ClientError):
    code = "InvalidAuthenticationCode"
    http_status = 403


class PasswordPolicyViolation(ClientError):
    code = "PasswordPolicyViolation"


class EntityTemporarilyUnmodifiable(ClientError):
    code = "EntityTemporarilyUnmodifiable"
    http_status = 409


class ConcurrentModification(ClientError):
    code = "ConcurrentModification"
    http_status = 409


class UnmodifiableEntity(ClientError):
    code = "UnmodifiableEntity"


class AccessDenied(ClientError):
    code = "AccessDenied"
    http_status = 403

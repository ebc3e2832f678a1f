"""Built-in (AWS-managed) policies, under the special account ``aws``.

The documents are AWS's own (see ``policies/builtin_documents/``), so a policy ARN such as
``arn:aws:iam::aws:policy/IAMReadOnlyAccess`` means here what it means in AWS.
"""

from __future__ import annotations

import json
from pathlib import Path

from django.db import transaction

from identity import naming
from identity.models import Account
from policies.models import ManagedPolicy, PolicyVersion

DOCUMENTS_DIR = Path(__file__).resolve().parent / "builtin_documents"


def builtin_definitions() -> list[dict[str, str]]:
    """Each built-in: Name, Path, Description and Document (as AWS publishes it)."""
    definitions = []
    for path in sorted(DOCUMENTS_DIR.glob("*.json")):
        data = json.loads(path.read_text())
        definitions.append(data)
    return definitions


def install_builtin_policies() -> int:
    """Create or update the built-ins; idempotent. Returns how many were created."""
    created = 0
    with transaction.atomic():
        aws, _ = Account.objects.get_or_create(id=naming.AWS_MANAGED_ACCOUNT)
        for definition in builtin_definitions():
            document = json.dumps(definition["Document"], indent=4)
            policy, was_created = ManagedPolicy.objects.get_or_create(
                account=aws,
                name=definition["Name"],
                defaults={
                    "path": definition.get("Path", "/"),
                    "description": definition.get("Description", ""),
                    "unique_id": naming.new_unique_id(naming.POLICY_ID_PREFIX),
                },
            )
            if was_created:
                PolicyVersion.objects.create(
                    policy=policy, version_id="v1", document=document, is_default=True
                )
                created += 1
            else:
                PolicyVersion.objects.filter(policy=policy, is_default=True).exclude(
                    document=document
                ).update(document=document)
    return created

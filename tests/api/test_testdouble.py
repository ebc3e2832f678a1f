"""Portcullis as a local IAM: the AWS CLI unchanged, imported keys, and the reset endpoint."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.core.management import call_command

from identity.models import AccessKey, User
from tests.api.conftest import ADMIN_KEY_ID, ADMIN_SECRET


def test_it_works_with_the_aws_cli(live_server, admin, iam):
    iam.create_user(UserName="cli-user")
    aws = Path(sys.executable).parent / "aws"
    result = subprocess.run(
        [str(aws), "--endpoint-url", live_server.url, "iam", "list-users", "--output", "json"],
        env={
            **os.environ,
            "AWS_ACCESS_KEY_ID": ADMIN_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": ADMIN_SECRET,
            "AWS_DEFAULT_REGION": "eu-central-1",
            "AWS_CONFIG_FILE": "/dev/null",
            "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert [u["UserName"] for u in json.loads(result.stdout)["Users"]] == ["admin", "cli-user"]


def test_it_imports_a_key_and_creates_the_user(api_account, capsys):
    call_command(
        "import_access_key",
        "--account-id",
        api_account.id,
        "--user-name",
        "terraform",
        "--access-key-id",
        "AKIATERRAFORM000001",
        "--secret-access-key",
        "terraform-secret-0000000000000000000000",
    )
    key = AccessKey.objects.get(pk="AKIATERRAFORM000001")
    assert key.user.name == "terraform"
    assert "terraform-secret" not in key.secret_encrypted
    assert "terraform-secret" not in capsys.readouterr().out


def test_it_resets_everything_but_the_accounts_and_imported_keys(live_server, iam, settings):
    settings.ENABLE_RESET_ENDPOINT = True
    settings.DEBUG = True
    iam.create_user(UserName="temp")
    iam.create_access_key(UserName="temp")
    iam.create_group(GroupName="g")

    request = urllib.request.Request(live_server.url + "/_portcullis/reset", method="POST")
    with urllib.request.urlopen(request) as response:
        answer = json.loads(response.read())

    assert answer["reset"] is True
    assert answer["elapsed_ms"] < 1000
    assert list(User.objects.filter(is_root=False).values_list("name", flat=True)) == ["admin"]
    assert list(AccessKey.objects.values_list("pk", flat=True)) == [ADMIN_KEY_ID]
    # The administrator keeps working after the reset.
    assert [u["UserName"] for u in iam.list_users()["Users"]] == ["admin"]
    assert iam.list_groups()["Groups"] == []


def test_it_hides_the_reset_endpoint_unless_enabled(live_server, iam, settings):
    settings.ENABLE_RESET_ENDPOINT = False
    iam.create_user(UserName="keep")
    request = urllib.request.Request(live_server.url + "/_portcullis/reset", method="POST")
    with pytest.raises(urllib.error.HTTPError) as excinfo:
        urllib.request.urlopen(request)
    assert excinfo.value.code == 404
    assert User.objects.filter(name="keep").exists()


def test_it_never_makes_a_third_access_key_under_concurrency(live_server, admin, iam):
    from concurrent.futures import ThreadPoolExecutor

    from tests.api.conftest import client

    iam.create_user(UserName="racer")
    iam.create_access_key(UserName="racer")

    def create() -> str:
        try:
            client("iam", live_server, admin).create_access_key(UserName="racer")
            return "ok"
        except Exception as error:
            return type(error).__name__

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda _: create(), range(4)))
    assert AccessKey.objects.filter(user__name="racer").count() == 2

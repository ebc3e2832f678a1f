"""The federation cast: a real OpenID Connect provider on loopback, and a JWKS the test owns.

- ``idp``: panva's certified ``oidc-provider`` (Node.js), started once per test session on a
  free loopback port, with a confidential client for the console, a second client whose tokens
  Portcullis must not accept, and the users ``alice`` (with AWS session tags) and ``mallory``.
  ``idp.id_token(...)`` signs a user in through its real authorization endpoint, sign-in page
  and token endpoint (authorization code + PKCE), and returns the ID token it issued.
- ``rogue_issuer``: a loopback issuer whose keys the test holds, for the rejections a real
  provider will not produce on demand (expired, alg none, a signature by another key).
- ``provider``: Alice's company trusting ``idp`` in account 111111111111.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import http.cookiejar
import json
import re
import secrets
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from audit.context import RequestMeta
from identity import federation
from identity.models import Account, OIDCProvider

PROVIDER_DIR = Path(__file__).parent / "oidc_provider"
CALLBACK_PATH = "/signin/oidc/callback"
# A redirect URI no test follows: the code is taken from the Location header.
UNFOLLOWED_REDIRECT = "http://127.0.0.1:9/callback"


@pytest.fixture(autouse=True)
def _loopback_providers(settings: Any) -> None:
    # The test providers speak plain http on loopback; production requires https.
    settings.OIDC_ALLOW_LOOPBACK_HTTP = True


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    # Key-refresh rate limits and spent states live in the cache; each test starts clean.
    from django.core.cache import cache

    cache.clear()


def _npm_ci() -> None:
    """Install the provider's pinned packages once (npm ci from package-lock.json)."""
    with open(PROVIDER_DIR / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (PROVIDER_DIR / "node_modules" / "oidc-provider" / "package.json").exists():
            subprocess.run(
                ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                cwd=PROVIDER_DIR,
                check=True,
                timeout=300,
            )


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


@dataclass
class TestProvider:
    issuer: str
    client_id: str
    client_secret: str
    other_client_id: str
    test_otp: str
    kid: str
    callback_url: str
    process: subprocess.Popen[bytes] = field(repr=False)

    def discovery(self) -> dict[str, Any]:
        with urllib.request.urlopen(
            f"{self.issuer}/.well-known/openid-configuration", timeout=5
        ) as response:
            return json.loads(response.read())

    def id_token(
        self,
        user: str = "alice",
        *,
        password: str | None = None,
        otp: str = "",
        client_id: str | None = None,
        nonce: str | None = None,
    ) -> str:
        """Sign ``user`` in at the provider (authorization code flow with PKCE, driven over
        HTTP like a browser with cookies would) and return the ID token it issues."""
        client_id = client_id or self.client_id
        secret = (
            self.client_secret
            if client_id == self.client_id
            else f"{client_id}-secret-0123456789abcdef"
        )
        endpoints = self.discovery()
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), _NoRedirect)
        verifier = secrets.token_urlsafe(48)
        challenge = (
            base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
            .rstrip(b"=")
            .decode()
        )
        state = secrets.token_urlsafe(16)
        url = (
            endpoints["authorization_endpoint"]
            + "?"
            + urllib.parse.urlencode(
                {
                    "response_type": "code",
                    "client_id": client_id,
                    "redirect_uri": UNFOLLOWED_REDIRECT,
                    "scope": "openid email profile",
                    "state": state,
                    "nonce": nonce or secrets.token_urlsafe(16),
                    "code_challenge": challenge,
                    "code_challenge_method": "S256",
                }
            )
        )
        data: bytes | None = None
        for _ in range(12):
            try:
                response = opener.open(url, data=data, timeout=10)
                body = response.read().decode()
                status, location = response.status, None
            except urllib.error.HTTPError as exc:
                status, location, body = exc.code, exc.headers.get("Location"), exc.read().decode()
            if location is not None:
                if location.startswith(UNFOLLOWED_REDIRECT):
                    query = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)
                    if "code" not in query:
                        raise AssertionError(f"the provider refused the sign-in: {query}")
                    assert query["state"] == [state]
                    return self._redeem(endpoints, client_id, secret, query["code"][0], verifier)
                url, data = urllib.parse.urljoin(url, location), None
                continue
            form = re.search(r'<form method="post" action="([^"]+)"', body)
            if status != 200 or form is None:
                raise AssertionError(f"unexpected page from the provider ({status}): {body[:500]}")
            url = urllib.parse.urljoin(url, form.group(1))
            data = urllib.parse.urlencode(
                {"login": user, "password": password or f"{user}-password-1", "otp": otp}
            ).encode()
        raise AssertionError("the provider's sign-in did not finish")

    def _redeem(
        self, endpoints: dict[str, Any], client_id: str, secret: str, code: str, verifier: str
    ) -> str:
        basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
        request = urllib.request.Request(
            endpoints["token_endpoint"],
            data=urllib.parse.urlencode(
                {
                    "grant_type": "authorization_code",
                    "code": code,
                    "redirect_uri": UNFOLLOWED_REDIRECT,
                    "code_verifier": verifier,
                }
            ).encode(),
            headers={"Authorization": f"Basic {basic}"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())["id_token"]


@pytest.fixture(scope="session")
def idp(live_server: Any) -> Iterator[TestProvider]:
    _npm_ci()
    callback = f"{live_server.url}{CALLBACK_PATH}"
    process = subprocess.Popen(
        [
            "node",
            "provider.mjs",
            "--redirect-uri",
            callback,
            "--redirect-uri",
            UNFOLLOWED_REDIRECT,
        ],
        cwd=PROVIDER_DIR,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        process.kill()
        raise RuntimeError("the test OpenID Connect provider did not start")
    info = json.loads(line)
    provider = TestProvider(
        issuer=info["issuer"],
        client_id=info["client_id"],
        client_secret=info["client_secret"],
        other_client_id=info["other_client_id"],
        test_otp=info["test_otp"],
        kid=info["kid"],
        callback_url=callback,
        process=process,
    )
    yield provider
    process.terminate()
    process.wait(timeout=10)


# --- An issuer the test controls ------------------------------------------------------------


@dataclass
class RogueIssuer:
    """A loopback issuer serving a discovery document and a JWKS from keys the test holds."""

    issuer: str
    key: rsa.RSAPrivateKey
    kid: str
    published: list[dict[str, Any]]
    algorithms: list[str]
    fetches: list[str] = field(default_factory=list)
    # path -> Location: answered with a 302 instead of a document.
    redirects: dict[str, str] = field(default_factory=dict)
    # Overrides of the discovery document's members.
    discovery_overrides: dict[str, Any] = field(default_factory=dict)

    def sign(
        self, claims: dict[str, Any], *, key: Any = None, kid: str | None = None, alg: str = "RS256"
    ) -> str:
        now = int(time.time())
        body = {"iss": self.issuer, "iat": now, "exp": now + 600, **claims}
        return jwt.encode(
            body,
            key if key is not None else self.key,
            algorithm=alg,
            headers={"kid": kid or self.kid},
        )

    def publish(self, key: rsa.RSAPrivateKey, kid: str) -> None:
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
        self.published.append({**jwk, "kid": kid, "use": "sig", "alg": "RS256"})


def new_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def rogue_issuer() -> Iterator[RogueIssuer]:
    state: dict[str, RogueIssuer] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            rogue = state["rogue"]
            rogue.fetches.append(self.path)
            if self.path in rogue.redirects:
                self.send_response(302)
                self.send_header("Location", rogue.redirects[self.path])
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if self.path == "/.well-known/openid-configuration":
                body: dict[str, Any] = {
                    "issuer": rogue.issuer,
                    "jwks_uri": f"{rogue.issuer}/jwks",
                    "authorization_endpoint": f"{rogue.issuer}/auth",
                    "token_endpoint": f"{rogue.issuer}/token",
                    "id_token_signing_alg_values_supported": rogue.algorithms,
                    **rogue.discovery_overrides,
                }
            elif self.path == "/jwks":
                body = {"keys": rogue.published}
            else:
                self.send_error(404)
                return
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    key = new_rsa_key()
    rogue = RogueIssuer(
        issuer=f"http://127.0.0.1:{server.server_address[1]}",
        key=key,
        kid="rogue-1",
        published=[],
        algorithms=["RS256"],
    )
    rogue.publish(key, "rogue-1")
    state["rogue"] = rogue
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield rogue
    server.shutdown()
    server.server_close()


# --- Alice's company trusting the provider ---------------------------------------------------

META = RequestMeta(source_ip="198.51.100.7", user_agent="pytest-federation")


def trust_policy(provider_arn: str, host: str, *, sub: str = "alice", tags: bool = False) -> str:
    actions = ["sts:AssumeRoleWithWebIdentity"] + (["sts:TagSession"] if tags else [])
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Federated": provider_arn},
                    "Action": actions,
                    "Condition": {
                        "StringEquals": {f"{host}:aud": "portcullis-console", f"{host}:sub": sub}
                    },
                }
            ],
        }
    )


def create_provider(
    account: Account,
    url: str,
    actor: Any,
    *,
    client_ids: tuple[str, ...] = ("portcullis-console",),
    **kwargs: Any,
) -> OIDCProvider:
    return federation.create_open_id_connect_provider(
        account=account, url=url, client_id_list=client_ids, actor=actor, **kwargs
    )

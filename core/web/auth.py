"""Who may use the dashboard, and proof that an action came from its own page.

* **Bind rule** — on a loopback address (127.0.0.1, ::1, localhost) the dashboard needs no login:
  whoever can reach it already has the machine. Any other address refuses to start without a
  configured credential (``check_bind``).
* **Credentials** — a token, or a user name and password (basic). Only a salted scrypt hash is
  kept in memory (or configured: ``scrypt$<salt>$<hash>``); a presented secret is hashed the same
  way and compared with ``hmac.compare_digest``. Scrypt makes a stolen hash expensive to reverse.
* **Sessions** — a cookie holding ``{user, csrf, exp}`` signed with HMAC-SHA256 (a per-process
  random key unless ``SYNCHUB_SESSION_SECRET`` is set, which several API processes behind one
  address must share). HttpOnly, SameSite=Lax. Scripts (Prometheus) may send the credential in an
  ``Authorization`` header instead (``Bearer <token>`` or ``Basic``) for reading pages.
* **CSRF** — every POST form carries the session's random token; an action whose token does not
  match its session cookie, or that has no session, is refused with 403. Webhook routes are not
  sessions' business: their connector checks the system's signature.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from core.errors import ConfigError

LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost", "[::1]"})
COOKIE = "synchub_session"
SESSION_SECONDS = 12 * 3600
_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}


def hash_secret(secret: str, salt: bytes | None = None) -> str:
    """``scrypt$<salt hex>$<hash hex>`` of ``secret``: what config may hold instead of the secret."""
    salt = salt if salt is not None else os.urandom(16)
    digest = hashlib.scrypt(secret.encode(), salt=salt, **_SCRYPT)
    return f"scrypt${salt.hex()}${digest.hex()}"


def verify_secret(secret: str, hashed: str) -> bool:
    """Does ``secret`` hash to ``hashed``? Constant time in the comparison."""
    try:
        scheme, salt_hex, digest_hex = hashed.split("$")
        salt, expected = bytes.fromhex(salt_hex), bytes.fromhex(digest_hex)
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    got = hashlib.scrypt(secret.encode(), salt=salt, **_SCRYPT)
    return hmac.compare_digest(got, expected)


@dataclass(frozen=True)
class Credentials:
    """The one credential of a deployment's dashboard: a token, or basic auth (user + password)."""

    kind: Literal["token", "basic"]
    secret_hash: str = field(repr=False)
    username: str | None = None

    @classmethod
    def token(cls, token: str) -> Credentials:
        if len(token) < 16:
            raise ConfigError("the dashboard token must be at least 16 characters")
        return cls("token", hash_secret(token))

    @classmethod
    def basic(cls, username: str, password: str) -> Credentials:
        if not username or len(password) < 12:
            raise ConfigError("basic auth needs a user name and a password of at least 12 characters")
        return cls("basic", hash_secret(password), username)

    def verify(self, username: str | None, secret: str) -> bool:
        if self.kind == "basic":
            # hash even for a wrong user name, so timing does not tell which part was wrong
            ok_user = hmac.compare_digest((username or "").encode(), (self.username or "").encode())
            return verify_secret(secret, self.secret_hash) and ok_user
        return verify_secret(secret, self.secret_hash)

    @property
    def actor(self) -> str:
        return self.username or "token"

    def check_header(self, header: str | None) -> str | None:
        """The actor an ``Authorization`` header proves, or None."""
        if not header:
            return None
        scheme, _, value = header.partition(" ")
        scheme = scheme.lower()
        if scheme == "bearer" and self.kind == "token":
            return self.actor if self.verify(None, value.strip()) else None
        if scheme == "basic" and self.kind == "basic":
            try:
                user, _, password = base64.b64decode(value.strip()).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return None
            return self.actor if self.verify(user, password) else None
        return None


def credentials_from_env(env: dict[str, str] | None = None) -> Credentials | None:
    """Until config loading lands: ``SYNCHUB_API_TOKEN`` (or ``SYNCHUB_API_TOKEN_HASH``), or
    ``SYNCHUB_API_USER`` with ``SYNCHUB_API_PASSWORD`` (or ``SYNCHUB_API_PASSWORD_HASH``)."""
    e = dict(os.environ) if env is None else env
    if e.get("SYNCHUB_API_TOKEN_HASH"):
        return Credentials("token", e["SYNCHUB_API_TOKEN_HASH"])
    if e.get("SYNCHUB_API_TOKEN"):
        return Credentials.token(e["SYNCHUB_API_TOKEN"])
    user = e.get("SYNCHUB_API_USER")
    if user and e.get("SYNCHUB_API_PASSWORD_HASH"):
        return Credentials("basic", e["SYNCHUB_API_PASSWORD_HASH"], user)
    if user and e.get("SYNCHUB_API_PASSWORD"):
        return Credentials.basic(user, e["SYNCHUB_API_PASSWORD"])
    return None


def check_bind(host: str, credentials: Credentials | None) -> None:
    """Refuse to serve beyond this machine without a credential."""
    if host not in LOOPBACK and credentials is None:
        raise ConfigError(
            f"refusing to serve the dashboard on {host!r} without a credential: set SYNCHUB_API_TOKEN "
            "(or SYNCHUB_API_USER and SYNCHUB_API_PASSWORD), or bind to 127.0.0.1"
        )


@dataclass
class Session:
    user: str | None
    csrf: str
    exp: float
    fresh: bool = False
    """Made for this request (no valid cookie came with it): must be set on the response."""


class Sessions:
    """Signed session cookies (HMAC-SHA256 over the JSON payload)."""

    def __init__(self, key: bytes | None = None) -> None:
        env_key = os.environ.get("SYNCHUB_SESSION_SECRET")
        self.key = key or (env_key.encode() if env_key else secrets.token_bytes(32))

    def new(self, user: str | None = None) -> Session:
        return Session(user, secrets.token_urlsafe(24), time.time() + SESSION_SECONDS, fresh=True)

    def dump(self, session: Session) -> str:
        payload = json.dumps({"u": session.user, "c": session.csrf, "e": int(session.exp)}, separators=(",", ":"))
        body = base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")
        return f"{body}.{self._sign(body)}"

    def load(self, cookie: str | None) -> Session | None:
        """The session a cookie carries, or None when it is missing, forged or expired."""
        if not cookie or "." not in cookie:
            return None
        body, _, signature = cookie.rpartition(".")
        if not hmac.compare_digest(signature, self._sign(body)):
            return None
        try:
            data: dict[str, Any] = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        except (ValueError, binascii.Error):
            return None
        if not isinstance(data, dict) or float(data.get("e", 0)) < time.time():
            return None
        user = data.get("u")
        return Session(user if isinstance(user, str) else None, str(data.get("c", "")), float(data["e"]))

    def _sign(self, body: str) -> str:
        mac = hmac.new(self.key, body.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).decode().rstrip("=")

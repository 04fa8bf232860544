"""Getting an access token from Salesforce's OAuth 2.0 token endpoint, ourselves.

simple-salesforce's login helpers only post to ``https://{login|test|mydomain}.salesforce.com``
(shared notes), so a My Domain URL of another shape — or a test org — needs the token fetched here
against the configured ``login_url``. Three grant types, as the Salesforce Help describes them:
- JWT bearer (``private_key``): https://help.salesforce.com/s/articleView?id=sf.remoteaccess_oauth_jwt_flow.htm
- client credentials (``client_secret``): https://help.salesforce.com/s/articleView?id=sf.remoteaccess_oauth_client_credentials_flow.htm
- username-password with security token: https://help.salesforce.com/s/articleView?id=sf.remoteaccess_oauth_username_password_flow.htm
Secrets are read through ``core.connector.secret`` and never appear in messages.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jwt
import requests

from core.connector import secret
from core.errors import ConfigError, TransientError

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


@dataclass(frozen=True)
class Token:
    access_token: str
    instance_url: str


def grant_type(settings: Mapping[str, Any]) -> str:
    """``auth`` if set, else inferred: a private key means JWT, a password means username-password."""
    explicit = settings.get("auth")
    if explicit:
        if explicit not in ("jwt", "client_credentials", "password"):
            raise ConfigError(f"salesforce auth must be jwt, client_credentials or password, not {explicit!r}")
        return str(explicit)
    if settings.get("private_key") is not None:
        return "jwt"
    if settings.get("password") is not None:
        return "password"
    return "client_credentials"


def fetch_token(settings: Mapping[str, Any], session: requests.Session) -> Token:
    login_url = str(settings.get("login_url") or "").rstrip("/")
    if not login_url.startswith("https://"):
        raise ConfigError("salesforce login_url must be an https:// URL (your My Domain login URL)")
    client_id = str(settings.get("client_id") or "")
    if not client_id:
        raise ConfigError("salesforce client_id (the connected app's consumer key) is not set")
    kind = grant_type(settings)
    form: dict[str, str] = {"client_id": client_id}
    if kind == "jwt":
        key = secret(settings, "private_key")
        username = settings.get("username")
        if not key or not username:
            raise ConfigError("salesforce JWT bearer auth needs private_key and username")
        claims = {
            "iss": client_id,
            "sub": str(username),
            "aud": str(settings.get("jwt_audience") or login_url),
            "exp": int(time.time()) + 180,  # Salesforce accepts at most 3 minutes ahead
        }
        try:
            assertion = jwt.encode(claims, key, algorithm="RS256")
        except (ValueError, TypeError) as exc:
            raise ConfigError("salesforce private_key is not a usable RSA private key (PEM)") from exc
        form = {"grant_type": JWT_GRANT, "assertion": assertion}
    elif kind == "client_credentials":
        form.update(grant_type="client_credentials", client_secret=_need(settings, "client_secret"))
    else:
        form.update(
            grant_type="password",
            client_secret=_need(settings, "client_secret"),
            username=str(settings.get("username") or ""),
            password=_need(settings, "password") + (secret(settings, "security_token") or ""),
        )
    try:
        response = session.post(f"{login_url}/services/oauth2/token", data=form)
    except requests.RequestException as exc:
        raise TransientError(f"salesforce login: {type(exc).__name__}") from exc
    if response.status_code >= 500:
        raise TransientError(f"salesforce login: HTTP {response.status_code}")
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.status_code != 200 or "access_token" not in body:
        error = body.get("error", "unknown") if isinstance(body, dict) else "unknown"
        detail = body.get("error_description", "") if isinstance(body, dict) else ""
        raise ConfigError(f"salesforce login ({kind}) refused: {error}: {detail}")
    return Token(body["access_token"], str(settings.get("instance_url") or body["instance_url"]).rstrip("/"))


def _need(settings: Mapping[str, Any], key: str) -> str:
    value = secret(settings, key)
    if not value:
        raise ConfigError(f"salesforce setting {key} is not set")
    return value

"""Who is signed in to the UI: a stateless session cookie, signed, checked on every request.

The cookie holds what the session is (the master key, or a virtual key's id and a
fingerprint of the secret it signed in with: `KeyIndex.session`), an expiry and a nonce,
signed with HMAC-SHA256 under a key derived from the master key. No secret is in it, and
no session table: every request re-checks it, so

- changing the master key ends every session (the signing key changes with it);
- revoking, blocking, expiring or rotating out a key ends its sessions at its next request
  (the key index says so within its refresh bound, on every instance).

The CSRF token is derived from the session's nonce under the same key; every state-changing
request must carry it (a form field, or the `x-csrf-token` header for scripts) and must not
come from another site (`Origin` / `Sec-Fetch-Site`). The cookie is `HttpOnly`,
`SameSite=Strict`, scoped to `/ui`, and `Secure` when the UI is served over TLS.

Without a master key (the embedded default) there is nothing to sign in with: the UI is
read-only, to loopback clients only, and says how to set one.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import orjson
from starlette.requests import Request

from llm_gateway.core.context import MASTER, OPEN, Principal
from llm_gateway.core.errors import AuthenticationFailed
from llm_gateway.runtime import Runtime

COOKIE = "gw_session"
COOKIE_PATH = "/ui"
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"

Kind = Literal["master", "key", "open"]


@dataclass(frozen=True, slots=True)
class Viewer:
    """The signed-in user of one UI request."""

    kind: Kind
    principal: Principal
    csrf: str
    """What this session's state-changing requests must carry ('' read-only, without a session)."""
    key_id: str | None = None
    name: str | None = None

    @property
    def admin(self) -> bool:
        """The master key: every page, every key and team, every change."""
        return self.kind == "master"

    @property
    def read_only(self) -> bool:
        return self.kind == "open"


class SessionEnded(Exception):
    """No valid session: sign in (again). `reason` says why, for the sign-in page."""

    def __init__(self, reason: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Sessions:
    """Signs and checks session cookies under a key derived from `master_key`."""

    def __init__(self, master_key: str, minutes: int, clock: Callable[[], float] = time.time) -> None:
        self._key = hmac.new(master_key.encode(), b"llm-gateway ui session v1", hashlib.sha256).digest()
        self.seconds = minutes * 60
        self._clock = clock

    def _now(self) -> float:
        return self._clock()

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode(), hashlib.sha256).digest())

    def issue(self, kind: Kind, key_id: str | None = None, fingerprint: str | None = None) -> str:
        """A new cookie value for a session of `kind`."""
        body = {"k": kind, "id": key_id, "f": fingerprint, "exp": int(self._now()) + self.seconds}
        body["n"] = secrets.token_urlsafe(12)
        payload = _b64(orjson.dumps(body))
        return f"{payload}.{self._sign(payload)}"

    def read(self, cookie: str | None) -> dict[str, object]:
        """The session a cookie stands for; `SessionEnded` if it is missing, forged or expired."""
        if not cookie or cookie.count(".") != 1 or len(cookie) > 1024:
            raise SessionEnded()
        payload, signature = cookie.split(".")
        if not hmac.compare_digest(self._sign(payload), signature):
            raise SessionEnded("your session is no longer valid: sign in again")
        try:
            body = orjson.loads(_unb64(payload))
        except (ValueError, binascii.Error):
            raise SessionEnded() from None
        if not isinstance(body, dict) or not isinstance(body.get("exp"), int) or body["exp"] < self._now():
            raise SessionEnded("your session expired: sign in again")
        return body

    def csrf(self, nonce: str) -> str:
        return _b64(hmac.new(self._key, b"csrf." + nonce.encode(), hashlib.sha256).digest())[:32]


def sessions_of(runtime: Runtime) -> Sessions | None:
    """The runtime's session signer; None without a master key (nothing to sign in with).
    Made per request (one HMAC), so a reload that changes the master key or the session
    length applies at once."""
    if runtime.master_key is None:
        return None
    return Sessions(runtime.master_key, runtime.config.ui.session_minutes)


def viewer_of(request: Request, runtime: Runtime, sessions: Sessions | None) -> Viewer:
    """Who is signed in, re-checked now; `SessionEnded` when no one (or no longer)."""
    if sessions is None:
        return Viewer("open", OPEN, csrf="")
    body = sessions.read(request.cookies.get(COOKIE))
    csrf = sessions.csrf(str(body.get("n", "")))
    if body.get("k") == "master":
        return Viewer("master", MASTER, csrf=csrf, name="master key")
    key_id, fingerprint = body.get("id"), body.get("f")
    if body.get("k") != "key" or not isinstance(key_id, str) or not isinstance(fingerprint, str):
        raise SessionEnded()
    if runtime.keys is None:
        raise SessionEnded()
    try:
        principal = runtime.keys.session(key_id, fingerprint)
    except AuthenticationFailed as failure:
        raise SessionEnded(f"your session ended: {failure.message}") from None
    return Viewer("key", principal, csrf=csrf, key_id=key_id, name=principal.name)


def same_site(request: Request) -> bool:
    """A state-changing request must come from a UI page: not from another site."""
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    if origin is None:
        return fetch_site is not None  # a browser that sends neither is too old to trust
    host = request.headers.get("host", "")
    return origin in (f"http://{host}", f"https://{host}")


def cookie_flags(request: Request, max_age: int) -> dict[str, object]:
    return {
        "key": COOKIE,
        "max_age": max_age,
        "path": COOKIE_PATH,
        "httponly": True,
        "samesite": "strict",
        "secure": request.url.scheme == "https",
    }

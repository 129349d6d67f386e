"""The session cookie: the signed-in API key, encrypted and authenticated (Fernet), with a lifetime.

The console calls every service with the user's own key, so each service enforces that key's scopes itself; the
cookie keeps it out of reach of page scripts (HttpOnly) and of other sites' requests (SameSite=Strict).
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from cryptography.fernet import Fernet, InvalidToken

COOKIE = "retain_console"


class SessionKeys:
    def __init__(self, secret: str) -> None:
        if not secret:
            raise ValueError("session secret must not be empty")
        digest = hashlib.sha256(b"retain-console-session\x00" + secret.encode()).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(digest))
        self._csrf_key = hashlib.sha256(b"retain-console-csrf\x00" + secret.encode()).digest()

    def seal(self, api_key: str) -> str:
        return self._fernet.encrypt(api_key.encode()).decode("ascii")

    def open(self, cookie: str | None, max_age_s: int) -> str | None:
        """The API key of a genuine cookie younger than `max_age_s`; None for anything else."""
        if not cookie:
            return None
        try:
            return self._fernet.decrypt(cookie.encode("ascii"), ttl=max_age_s).decode()
        except (InvalidToken, UnicodeError, ValueError):
            return None

    def csrf_token(self, cookie: str) -> str:
        """Tied to the session: a form posted from another session (or site) does not carry it."""
        return hmac.new(self._csrf_key, cookie.encode("ascii"), hashlib.sha256).hexdigest()[:32]

    def csrf_ok(self, cookie: str, presented: str | None) -> bool:
        return presented is not None and hmac.compare_digest(self.csrf_token(cookie), presented)

"""Optional authentication: an API key (``Authorization: Bearer KEY``, as OpenAI's clients send it) and
A1111's ``--api-auth user:pass`` (HTTP Basic). Secrets are compared in constant time."""

from __future__ import annotations

import base64
import binascii
import hmac
import os
from dataclasses import dataclass

from .fields import RequestError

API_KEY_ENV = "SDRT_API_KEY"
API_AUTH_ENV = "SDRT_API_AUTH"  # "user:pass[,user:pass]", as --api-auth


@dataclass(frozen=True)
class Auth:
    api_key: str | None = None
    basic: tuple[str, ...] = ()  # "user:pass" entries

    @classmethod
    def from_options(cls, api_key: str | None = None, api_auth: str | None = None) -> Auth:
        """From the options, or $SDRT_API_KEY and $SDRT_API_AUTH (how a Serve config file passes them: the
        file never holds a secret)."""
        key = api_key or os.environ.get(API_KEY_ENV) or None
        api_auth = api_auth or os.environ.get(API_AUTH_ENV) or ""
        basic = tuple(p for p in api_auth.split(",") if p)
        return cls(key, basic)

    @property
    def required(self) -> bool:
        return bool(self.api_key or self.basic)

    def check(self, header: str | None) -> None:
        if not self.required:
            return
        scheme, _, secret = (header or "").partition(" ")
        scheme = scheme.lower()
        if scheme == "bearer" and self.api_key and _equal(secret.strip(), self.api_key):
            return
        if scheme == "basic" and self.basic:
            try:
                given = base64.b64decode(secret.strip(), validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                given = ""
            if any([_equal(given, pair) for pair in self.basic]):  # a list: every entry is compared
                return
        raise RequestError(
            "missing or wrong credentials (Authorization: Bearer KEY, or Basic user:pass)", status=401
        )


def _equal(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())

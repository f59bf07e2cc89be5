"""Secret site settings (the SMTP password) sealed before they are recorded.

A site setting is an event, and the log is kept for good: a secret in it would stay readable by
anyone who can read the database, for ever. The command seals a secret field's value with this
installation's key (ChaCha20-Poly1305, `settings.key` beside the PIN and session keys in the data
directory) before it is recorded; the mailer opens it when it sends. The event, the event history
and every reader hold only the sealed text (shown as "set"). A value recorded before sealing
existed reads as it was.
"""
from __future__ import annotations

import base64
import os

from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from domain.site_settings import SEALED_PREFIX

_CONTEXT = b"pageledger site setting"


class SettingSealer:
    def __init__(self, key: bytes) -> None:
        self._aead = ChaCha20Poly1305(key[:32])

    def seal(self, value: str) -> str:
        """The sealed text of `value` ("" stays "": a cleared secret is no secret)."""
        if not value:
            return ""
        nonce = os.urandom(12)
        sealed = nonce + self._aead.encrypt(nonce, value.encode(), _CONTEXT)
        return SEALED_PREFIX + base64.urlsafe_b64encode(sealed).decode("ascii")

    def open(self, value: str) -> str:
        """The secret of a sealed value (a value recorded before sealing, as it is)."""
        if not value.startswith(SEALED_PREFIX):
            return value
        raw = base64.urlsafe_b64decode(value[len(SEALED_PREFIX):])
        return self._aead.decrypt(raw[:12], raw[12:], _CONTEXT).decode()

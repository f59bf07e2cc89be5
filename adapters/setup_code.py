"""The setup code: proof that whoever runs the setup wizard can read the server's console or disk.

A fresh server answers on the network before anyone has set it up, and the wizard makes its
first caller the administrator. So the wizard asks for a one-time code (as Jenkins asks for its
initial admin password): made at the first start, printed on the console, kept in
`<data dir>/setup-code` (mode 0600), and removed once setup is complete.
"""
from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

from adapters.private_files import PRIVATE_FILE


class SetupCode:
    def __init__(self, path: Path) -> None:
        self.path = path

    def ensure(self) -> str:
        """The code, made now if there is none yet (a restart before setup keeps the same one)."""
        current = self._read()
        if current:
            return current
        code = secrets.token_hex(16)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
        with os.fdopen(fd, "w") as f:
            os.fchmod(f.fileno(), PRIVATE_FILE)
            f.write(code + "\n")
        return code

    def matches(self, offered: object) -> bool:
        """Constant-time comparison; no code on file (setup done, or never made) matches nothing."""
        expected = self._read()
        if not expected or not isinstance(offered, str):
            return False
        return hmac.compare_digest(offered.strip().lower().encode(), expected.encode())

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)

    def _read(self) -> str:
        try:
            return self.path.read_text().strip().lower()
        except (FileNotFoundError, UnicodeDecodeError):
            return ""

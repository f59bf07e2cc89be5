"""Where background report runs keep their state and their file: one directory per run under
the data directory (`report-runs/<id>/`), a `state.json` replaced atomically at each step and
the rendered file beside it. Any web worker on the host can then answer a poll or a download,
whichever process ran the report. Runs older than `keep_seconds` are removed when a new one
starts."""
from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Any, BinaryIO, Iterator

from adapters.private_files import make_private_directory

_ID_CHARS = frozenset("0123456789abcdef")


class ReportRunStore:
    def __init__(self, root: Path, keep_seconds: float = 86_400.0) -> None:
        self.root = root
        self.keep_seconds = keep_seconds

    def new(self, state: dict[str, Any]) -> str:
        make_private_directory(self.root)
        self._prune()
        run_id = uuid.uuid4().hex
        make_private_directory(self.root / run_id)
        self.save(run_id, {**state, "id": run_id})
        return run_id

    def _dir(self, run_id: str) -> Path | None:
        if len(run_id) != 32 or not set(run_id) <= _ID_CHARS:
            return None  # only our own ids: never a path from a client
        return self.root / run_id

    def save(self, run_id: str, state: dict[str, Any]) -> None:
        d = self._dir(run_id)
        assert d is not None
        tmp = d / "state.json.tmp"
        tmp.write_text(json.dumps(state))
        os.replace(tmp, d / "state.json")

    def load(self, run_id: str) -> dict[str, Any] | None:
        d = self._dir(run_id)
        if d is None:
            return None
        try:
            return json.loads((d / "state.json").read_text())
        except (OSError, ValueError):
            return None

    def writer(self, run_id: str) -> BinaryIO:
        d = self._dir(run_id)
        assert d is not None
        return open(d / "result", "wb")

    def read(self, run_id: str, chunk: int = 64 * 1024) -> Iterator[bytes]:
        d = self._dir(run_id)
        assert d is not None
        with open(d / "result", "rb") as f:
            while block := f.read(chunk):
                yield block

    def _prune(self) -> None:
        cutoff = time.time() - self.keep_seconds
        for d in self.root.iterdir():
            try:
                if d.is_dir() and d.stat().st_mtime < cutoff:
                    shutil.rmtree(d, ignore_errors=True)
            except OSError:
                continue

"""Build the agent-only distribution: a ``pageledger-agent`` wheel of the ``agent`` package alone.

    python tools/build_agent_wheel.py [--out dist]

The project's own distribution (``pageledger``) carries the server and all its dependencies;
a print server needs only the agent, which imports nothing of the server
(tests/unit/test_agent_boundary.py) and requires only pypdf. This writes a standard wheel
(PEP 427: the package, ``METADATA``, ``WHEEL``, ``entry_points.txt``, ``RECORD``) with the
``pageledger-agent`` command, so that ``pip install pageledger_agent-*.whl`` pulls in pypdf
and nothing else. Stdlib only: no build backend is needed on the machine that builds it.
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import re
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NAME = "pageledger_agent"
REQUIRES = ["pypdf>=4.0"]  # pyproject.toml's `agent` extra: the agent's one dependency


def agent_version() -> str:
    text = (ROOT / "agent" / "__init__.py").read_text()
    match = re.search(r'^__version__ = "([^"]+)"', text, re.M)
    if not match:
        raise SystemExit("agent/__init__.py has no __version__")
    return match.group(1)


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def build(out_dir: Path) -> Path:
    version = agent_version()
    info = f"{NAME}-{version}.dist-info"
    files: dict[str, bytes] = {}
    for path in sorted((ROOT / "agent").rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            files[path.relative_to(ROOT).as_posix()] = path.read_bytes()
    metadata = [f"Metadata-Version: 2.1", f"Name: pageledger-agent", f"Version: {version}",
                "Summary: PageLedger print accounting agent for CUPS (backend wrapper, page counting)",
                "License: Apache-2.0", "Requires-Python: >=3.11", *(f"Requires-Dist: {r}" for r in REQUIRES)]
    files[f"{info}/METADATA"] = ("\n".join(metadata) + "\n").encode()
    files[f"{info}/WHEEL"] = b"Wheel-Version: 1.0\nGenerator: pageledger tools/build_agent_wheel.py\n" \
                             b"Root-Is-Purelib: true\nTag: py3-none-any\n"
    files[f"{info}/entry_points.txt"] = b"[console_scripts]\npageledger-agent = agent.cli:main\n"
    record = [_record_line(name, data) for name, data in files.items()] + [f"{info}/RECORD,,"]
    files[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    out_dir.mkdir(parents=True, exist_ok=True)
    wheel = out_dir / f"{NAME}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0)), data,
                             compress_type=zipfile.ZIP_DEFLATED)
    return wheel


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "dist")
    args = parser.parse_args(argv)
    print(build(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())

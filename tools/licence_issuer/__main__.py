"""Issuer CLI: ``python -m tools.licence_issuer make-keys|issue-key|issue-file ...``.

Examples::

    python -m tools.licence_issuer make-keys --out /secure/issuer
    python -m tools.licence_issuer issue-key --private-key /secure/issuer/issuer.key \
        --type suite --seats 50 --expires 2027-12-31 --company "Acme Ltd"
    python -m tools.licence_issuer issue-file --private-key /secure/issuer/issuer.key \
        --key PL1-... --company "Acme Ltd" --host printsrv1 --mac 00:11:22:33:44:55 --out acme.licence
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from domain.licence import LICENCE_TYPES
from adapters.licence_keys import (
    LicenceRefused, decode_key, load_private_key, private_key_pem, public_key_pem, same_company,
)
from tools.licence_issuer import issue_key, issue_licence, make_key_pair


def _expiry(text: str) -> int:
    if text in ("", "never"):
        return 0
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return int(dt.timestamp()) * 1_000_000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.licence_issuer", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    keys = sub.add_parser("make-keys", help="write issuer.key (private, mode 0600) and issuer.pub")
    keys.add_argument("--out", required=True, type=Path)
    key = sub.add_parser("issue-key", help="print a signed licence key")
    key.add_argument("--private-key", required=True, type=Path)
    key.add_argument("--type", required=True, choices=LICENCE_TYPES)
    key.add_argument("--seats", required=True, type=int)
    key.add_argument("--expires", default="never", help="YYYY-MM-DD or 'never'")
    key.add_argument("--company", required=True)
    key.add_argument("--key-id")
    lic = sub.add_parser("issue-file", help="write a licence file for one server (Activate via File)")
    lic.add_argument("--private-key", required=True, type=Path)
    lic.add_argument("--key", required=True)
    lic.add_argument("--company", required=True)
    lic.add_argument("--host", required=True)
    lic.add_argument("--mac", required=True)
    lic.add_argument("--out", required=True, type=Path)
    args = parser.parse_args(argv)

    if args.command == "make-keys":
        args.out.mkdir(parents=True, exist_ok=True)
        private = make_key_pair()
        key_path = args.out / "issuer.key"
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(private_key_pem(private))
        (args.out / "issuer.pub").write_bytes(public_key_pem(private.public_key()))
        print(f"wrote {key_path} (keep it secret) and {args.out / 'issuer.pub'} (ship it to servers)")
        return 0

    private = load_private_key(args.private_key.read_bytes())
    if args.command == "issue-key":
        if args.seats < 0:
            parser.error("--seats must be 0 or more")
        print(issue_key(private, type=args.type, seats=args.seats, expires_at=_expiry(args.expires),
                        company=args.company, key_id=args.key_id))
        return 0

    try:
        terms = decode_key(args.key, private.public_key())
    except LicenceRefused as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not same_company(terms.company, args.company):
        print(f"error: the key was sold to {terms.company!r}, not {args.company!r}", file=sys.stderr)
        return 2
    args.out.write_text(issue_licence(private, terms, host=args.host, mac=args.mac, method="file",
                                      issued_at=int(time.time()) * 1_000_000))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Run the reference activation service: ``python -m tools.activation_service --private-key F``."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, make_server

from adapters.licence_keys import load_private_key
from tools.activation_service import create_app


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        # Request lines carry no secrets (keys travel in the body), but keep the log to errors.
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.activation_service")
    parser.add_argument("--private-key", required=True, type=Path)
    parser.add_argument("--registry", type=Path, help="JSON file remembering activations")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=6330)
    args = parser.parse_args(argv)
    app = create_app(load_private_key(args.private_key.read_bytes()), args.registry)
    with make_server(args.host, args.port, app, handler_class=_QuietHandler) as server:
        print(f"activation service on http://{args.host}:{server.server_port}/activate", flush=True)
        server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Runs the WSGI app under gunicorn (gthread workers), building the runtime in each worker."""
from __future__ import annotations

import errno
import logging
import socket
from typing import Any

from gunicorn.app.base import BaseApplication

from pageledger.settings import Settings

log = logging.getLogger("pageledger")

FALLBACK_PORT = 6320


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EACCES, errno.EADDRINUSE, errno.EPERM):
                return False
            raise
    return True


def choose_port(settings: Settings, explicit: int | None) -> int:
    """--port wins; else 80 when free and permitted; else 6320; else the configured port."""
    if explicit:
        return explicit
    for candidate in (80, FALLBACK_PORT):
        if port_is_free(settings.host, candidate):
            return candidate
    if settings.port:
        return settings.port
    raise SystemExit("neither port 80 nor 6320 is free: set PAGELEDGER_PORT or pass --port")


class PageLedgerServer(BaseApplication):
    def __init__(self, settings: Settings, port: int, *, workers: int, threads: int,
                 role: str = "all", projections: bool = True) -> None:
        self.settings = settings
        self.options = {
            "bind": f"{settings.host}:{port}",
            "workers": workers,
            "threads": threads,
            "worker_class": "gthread",
            "keepalive": 30,
            "timeout": 120,
            "graceful_timeout": 10,
            "accesslog": None,
            "control_socket_disable": True,
            "loglevel": settings.log_level.lower(),
        }
        self.role = role
        self.projections = projections
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        # Called in each worker after the fork: connections are never shared across processes.
        from api.app import create_app
        from pageledger.bootstrap import build_runtime

        runtime = build_runtime(self.settings, migrate=False)
        if self.projections:
            runtime.start_projections()
        return create_app(runtime, role=self.role)

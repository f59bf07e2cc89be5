"""Runs the WSGI app under gunicorn (gthread workers), building the runtime in each worker."""
from __future__ import annotations

import errno
import os
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
    """--port; else the configured port (PAGELEDGER_PORT or the config file's), taken even if
    busy so that the bind says so; else 80 when free and permitted; else 6320."""
    if explicit:
        return explicit
    if settings.port:
        return settings.port
    for candidate in (80, FALLBACK_PORT):
        if port_is_free(settings.host, candidate):
            return candidate
    raise SystemExit("neither port 80 nor 6320 is free: set PAGELEDGER_PORT or pass --port")


def _projection_process(settings: Settings) -> None:
    import signal
    import threading
    import time

    from pageledger import logs
    from pageledger.bootstrap import run_projections

    logs.configure(settings.log_level)

    def leave(*_: object) -> None:
        # Unwind the main thread (the runtime closes in run_projections' finally). A handler
        # must not touch threading objects: the main thread may hold their locks right now.
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, leave)
    signal.signal(signal.SIGINT, leave)
    parent = os.getppid()

    def orphaned() -> None:
        # If the server was killed outright (SIGKILL), nobody tells us: stop with it.
        while os.getppid() == parent:
            time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=orphaned, name="orphan-watch", daemon=True).start()
    pid_file = settings.data_dir / "projections.pid"
    pid_file.write_text(f"{os.getpid()}\n")
    try:
        run_projections(settings, threading.Event())
    finally:
        pid_file.unlink(missing_ok=True)


class PageLedgerServer(BaseApplication):
    """gunicorn with PageLedger's app. `projections`: "process" (a child process next to the
    workers, what `up` uses), "thread" (inside each worker, one of them wins the runner lock)
    or "none" (another node runs them)."""

    def __init__(self, settings: Settings, port: int, *, workers: int, threads: int,
                 role: str = "all", projections: str = "process") -> None:
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
        if self.projections == "process":
            self.cfg.set("on_starting", self._start_projection_process)
            self.cfg.set("on_exit", self._stop_projection_process)

    def _start_projection_process(self, server: Any) -> None:
        import multiprocessing

        self._runner = multiprocessing.get_context("fork").Process(
            target=_projection_process, args=(self.settings,), name="pageledger-projections", daemon=True)
        self._runner.start()

    def _stop_projection_process(self, server: Any) -> None:
        runner = getattr(self, "_runner", None)
        if runner is not None and runner.is_alive():
            runner.terminate()
            runner.join(timeout=10)

    def load(self) -> Any:
        # Called in each worker after the fork: connections are never shared across processes.
        from api.app import create_app
        from pageledger.bootstrap import build_runtime

        runtime = build_runtime(self.settings, migrate=False)
        if self.projections == "thread":
            runtime.start_projections()
        return create_app(runtime, role=self.role)

"""Runs the WSGI app under gunicorn (gthread workers), building the runtime in each worker."""
from __future__ import annotations

import errno
import logging
import os
import pickle
import socket
import subprocess
import sys
import threading
import time
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


def projection_process_main() -> None:
    """Entry point of the projection subprocess: its settings arrive pickled on stdin."""
    settings = pickle.load(sys.stdin.buffer)
    sys.stdin.close()
    _projection_process(settings)


class ProjectionProcess:
    """The projection runner as a subprocess of the gunicorn master, restarted when it dies.

    Not a multiprocessing child: gunicorn forks its workers from the master after this starts,
    and each worker would inherit multiprocessing's registry of children. A worker that exits
    (timeout, crash, SIGTERM) then terminates the runner in its atexit clean-up and fails to
    join it ("can only join a child process"), and nothing starts it again. A subprocess is
    known to no one but the master, which watches it from a thread and starts a new one, after
    a pause that grows while it keeps dying young. It runs in a process group of its own, so a
    Ctrl-C at the terminal reaches the master only, which then stops it (and the orphan watch
    stops it if the master is killed outright).
    """

    poll_seconds = 0.5
    healthy_after = 60.0  # a runner that lived this long is restarted after the shortest pause

    def __init__(self, settings: Settings, restart_delay: float = 1.0, max_restart_delay: float = 30.0) -> None:
        self.settings = settings
        self.restart_delay = restart_delay
        self.max_restart_delay = max_restart_delay
        self._proc: subprocess.Popen | None = None
        self._started_at = 0.0
        self._stopping = threading.Event()
        self._mutex = threading.Lock()  # spawning and stopping never interleave
        self._watch: threading.Thread | None = None

    def start(self) -> None:
        self._spawn()
        self._watch = threading.Thread(target=self._supervise, name="projection-supervisor", daemon=True)
        self._watch.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        with self._mutex:
            proc = self._proc
        if self._watch is not None:
            self._watch.join(timeout=self.poll_seconds * 4)
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            log.warning("projection runner (pid %d) did not stop within %.0fs; killing it", proc.pid, timeout)
            proc.kill()
            proc.wait()

    def _spawn(self) -> None:
        with self._mutex:
            if self._stopping.is_set():
                return
            proc = subprocess.Popen(
                [sys.executable, "-c", "from pageledger.server import projection_process_main as m; m()"],
                stdin=subprocess.PIPE, process_group=0)
            proc.stdin.write(pickle.dumps(self.settings))
            proc.stdin.close()
            self._proc, self._started_at = proc, time.monotonic()

    def _supervise(self) -> None:
        delay = self.restart_delay
        while not self._stopping.wait(self.poll_seconds):
            proc = self._proc
            # gunicorn's master reaps every child it sees exit (waitpid(-1)), so the exit
            # status is often lost to us: poll() then reports 0. That it exited is what counts.
            if proc is None or proc.poll() is None:
                continue
            lived = time.monotonic() - self._started_at
            if lived >= self.healthy_after:
                delay = self.restart_delay
            log.warning("projection runner (pid %d) exited after %.0fs (status %s); restarting it in %.0fs",
                        proc.pid, lived, proc.returncode, delay)
            if self._stopping.wait(delay):
                return
            self._spawn()
            delay = min(delay * 2, self.max_restart_delay)


class PageLedgerServer(BaseApplication):
    """gunicorn with PageLedger's app. `projections`: "process" (a subprocess of the master
    next to the workers, restarted when it dies; what `up` uses), "thread" (inside each worker, one of them wins the runner lock)
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
        self._runner = ProjectionProcess(self.settings)
        self._runner.start()

    def _stop_projection_process(self, server: Any) -> None:
        runner = getattr(self, "_runner", None)
        if runner is not None:
            runner.stop()

    def load(self) -> Any:
        # Called in each worker after the fork: connections are never shared across processes.
        from api.app import create_app
        from pageledger.bootstrap import build_runtime

        runtime = build_runtime(self.settings, migrate=False)
        if self.projections == "thread":
            runtime.start_projections()
        return create_app(runtime, role=self.role)

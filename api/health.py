"""/healthz: is the database reachable, does a projection runner run, is any read model
falling behind the log or stopped at an event it cannot apply; /metrics: the same figures for
Prometheus.

Polled by load balancers and monitors, so it stays cheap: a few small indexed queries, no
history kept. It needs no local runner (`serve --no-projections` nodes answer it too): whether
a runner runs anywhere and how old the oldest waiting event is both come from the database.
"""
from __future__ import annotations

import time
from typing import Any, Callable

import falcon

from api.openapi import Operation
from domain.units import iso

# A projection is unhealthy when it is more than this many events behind the log ...
MAX_EVENTS_BEHIND = 10_000
# ... or when an event it has to apply was recorded more than this many seconds ago.
MAX_WAIT_SECONDS = 30.0


class HealthResource:
    """200 with "status": "ok" when the read models are moving; 503 naming each problem when
    no runner runs or a projection is too far behind (or the database is unreachable).

    `head()`: the log's last notification id. `positions()`: each projection's position.
    `first_waiting(name, position)`: (notification id, recorded-at in epoch seconds) of the
    oldest event after `position` that projection reads, or None. `runner_running()`: whether
    a projection runner runs on any node. `failures()`: the projections that cannot apply an
    event (name -> position, error, attempts, first_failed_at), as the runner recorded them.
    """

    public = True
    openapi = {"get": Operation("Health: the log's head, each projection's position, whether a runner runs",
                                responses={200: "ok", 503: "No runner runs, a projection is behind or cannot "
                                                          "apply an event, or the database cannot be reached "
                                                          "(each problem named)"})}

    def __init__(self, head: Callable[[], int], positions: Callable[[], dict[str, int]],
                 first_waiting: Callable[[str, int], tuple[int, float] | None],
                 runner_running: Callable[[], bool], failures: Callable[[], dict[str, dict[str, Any]]] = dict,
                 *, max_events_behind: int = MAX_EVENTS_BEHIND,
                 max_wait_seconds: float = MAX_WAIT_SECONDS, clock: Callable[[], float] = time.time) -> None:
        self.head = head
        self.positions = positions
        self.first_waiting = first_waiting
        self.runner_running = runner_running
        self.failures = failures
        self.max_events_behind = max_events_behind
        self.max_wait_seconds = max_wait_seconds
        self.clock = clock

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        try:
            head = self.head()
            positions = self.positions()
            running = self.runner_running()
            behind = self._behind(head, positions)
            failures = self.failures()
        except Exception as exc:  # noqa: BLE001 - report, don't crash the probe
            resp.status = falcon.HTTP_503
            resp.media = {"status": "unavailable", "error": type(exc).__name__}
            return
        problems: list[dict] = []
        if not running:
            problems.append({"problem": "no projection runner is running (on any node): "
                                        "the read models are not being updated"})
        for name, failure in sorted(failures.items()):
            problems.append({"problem": f"projection {name} cannot apply the event at position {failure['position']}"
                                        f" ({failure['error']}); it has stopped there (`pageledger projections "
                                        f"repair`)",
                             "projection": name, "position": failure["position"], "error": failure["error"],
                             "attempts": failure["attempts"], "failing_since": iso(failure["first_failed_at"])})
        for name, lag in behind.items():
            if name in failures:
                continue
            if lag["events_behind"] > self.max_events_behind:
                problems.append({"problem": f"projection {name} is {lag['events_behind']} events behind the log "
                                            f"(more than {self.max_events_behind})", "projection": name, **lag})
            elif lag["waiting_seconds"] > self.max_wait_seconds:
                problems.append({"problem": f"projection {name} has had an event waiting for "
                                            f"{lag['waiting_seconds']:.0f} s (more than {self.max_wait_seconds:.0f} s)",
                                 "projection": name, **lag})
        if problems:
            resp.status = falcon.HTTP_503
        resp.media = {"status": "unhealthy" if problems else "ok", "events": head, "projections": positions,
                      "runner": "running" if running else "not running", "behind": behind, "failed": sorted(failures), "problems": problems}

    def _behind(self, head: int, positions: dict[str, int]) -> dict[str, dict]:
        """The projections with events still to apply: how many notifications after their
        position, and how long the oldest of their events has waited."""
        now = self.clock()
        behind = {}
        for name, position in positions.items():
            if position >= head:
                continue
            waiting = self.first_waiting(name, position)
            if waiting is None:  # only events it does not read follow its position
                continue
            _, recorded_at = waiting
            behind[name] = {"events_behind": head - position,
                            "waiting_seconds": round(max(0.0, now - recorded_at), 1)}
        return behind


class MetricsResource:
    """/metrics in Prometheus' text format: the log's head, and per projection its position,
    how many events it is behind, and whether it has stopped at an event it cannot apply.

    Public like /healthz (no bearer token for a scraper to hold): it shows counts and
    positions only, no names of people, printers or documents, and costs the same few
    indexed queries.
    """

    public = True
    openapi = {"get": Operation("Metrics (Prometheus text format): each projection's position, events behind, "
                                "whether it failed; whether a runner runs",
                                responses={200: "Prometheus text exposition format 0.0.4"})}

    def __init__(self, head: Callable[[], int], positions: Callable[[], dict[str, int]],
                 first_waiting: Callable[[str, int], tuple[int, float] | None],
                 runner_running: Callable[[], bool], failures: Callable[[], dict[str, dict[str, Any]]]) -> None:
        self.head = head
        self.positions = positions
        self.first_waiting = first_waiting
        self.runner_running = runner_running
        self.failures = failures

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        head = self.head()
        positions = self.positions()
        failures = self.failures()
        lines = [
            "# HELP pageledger_event_log_head Notification id of the last event in the log.",
            "# TYPE pageledger_event_log_head gauge",
            f"pageledger_event_log_head {head}",
            "# HELP pageledger_projection_runner_running 1 when a projection runner runs on some node.",
            "# TYPE pageledger_projection_runner_running gauge",
            f"pageledger_projection_runner_running {int(bool(self.runner_running()))}",
        ]
        series = (
            ("position", "Notification id up to which the projection has applied the log.",
             lambda name, pos: pos),
            ("events_behind", "Notifications after the projection's position (0 when none of them is "
                              "an event it reads).",
             lambda name, pos: head - pos if pos < head and self.first_waiting(name, pos) else 0),
            ("failed", "1 when the projection has stopped at an event it cannot apply.",
             lambda name, pos: int(name in failures)),
            ("failed_position", "Notification id of the event it cannot apply (0 when none).",
             lambda name, pos: failures.get(name, {}).get("position", 0)),
        )
        for metric, help_text, value in series:
            lines += [f"# HELP pageledger_projection_{metric} {help_text}",
                      f"# TYPE pageledger_projection_{metric} gauge"]
            lines += [f'pageledger_projection_{metric}{{projection="{name}"}} {value(name, pos)}'
                      for name, pos in sorted(positions.items())]
        resp.content_type = "text/plain; version=0.0.4; charset=utf-8"
        resp.text = "\n".join(lines) + "\n"

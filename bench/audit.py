"""Audit and privacy figures: what the seals cost, and how fast as-of and verify replay.

    .venv/bin/python -m bench.audit [--jobs 100000] [--stores sqlite,postgresql] [--repeat 3]

Figures per store (medians of --repeat runs where it says so):
  ingest_commands   jobs/s through commands.jobs.TrackJobs, batches of 500, seals included, with
                    the personal fields in clear and encrypted; for the seals' own cost compare
                    `bench.run --only commands` on a checkout without them
  seal_bytes        bytes per job of the seals table (after VACUUM)
  event_bytes       bytes per job of the events table, personal fields encrypted and in clear
  rebuild           every projection rebuilt in one pass (events/s), the reference
  as_of             usage as of the last instant, replayed into scratch tables (events/s)
  verify_seals      the seal chain checked over the whole log (events/s)
  verify_models     every read model rebuilt into scratch tables and compared (events/s)
It asserts nothing; it prints what it measured.
"""
from __future__ import annotations

import argparse
import os
import platform
import sqlite3
import statistics
import sys
import time
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from adapters.event_seals import RawLog, check_seals, seals_table_name  # noqa: E402
from bench.run import Database, bodies, line  # noqa: E402
from commands.job_reports import parse_batch  # noqa: E402
from commands.jobs import TrackJobs  # noqa: E402
from pageledger.bootstrap import build_runtime  # noqa: E402
from pageledger.settings import Settings  # noqa: E402


def _rate(n: int, started: float) -> float:
    return n / (time.perf_counter() - started)


def table_bytes(db: Database, tables: list[str]) -> dict[str, int]:
    if db.store == "sqlite":
        raw = sqlite3.connect(db.url.removeprefix("sqlite:///"), isolation_level=None)
        raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        raw.execute("VACUUM")
        owners = dict(raw.execute("SELECT name, tbl_name FROM sqlite_master").fetchall())
        sizes: dict[str, int] = {}
        for name, size in raw.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name").fetchall():
            sizes[owners.get(name, name)] = sizes.get(owners.get(name, name), 0) + size
        raw.close()
        return {t: sizes.get(t, 0) for t in tables}
    eng = db.engine()
    try:
        with eng.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.execute(sa.text("VACUUM FULL"))
            return {t: int(c.execute(sa.text(f"SELECT pg_total_relation_size('\"{t}\"')")).scalar()) for t in tables}
    finally:
        eng.dispose()


def ingest(store: str, n: int, personal: bool) -> tuple[Database, float]:
    """A fresh database with `n` jobs tracked in batches of 500; returns it and the rate."""
    db = Database(store)
    rt = build_runtime(Settings.load(environ={}, database_url=db.url, data_dir=db.tmp / "var"))
    try:
        # No seat gate: the store's cost alone (as bench.run's ingest_commands).
        track = TrackJobs(rt.app, rt.printers, personal=rt.personal_keys if personal else None)
        batches = [parse_batch(b) for b in bodies(n, seed=2, prefix="aud")]
        started = time.perf_counter()
        for reports in batches:
            track(reports)
        return db, _rate(n, started)
    finally:
        rt.close()


def run_store(store: str, n: int, repeat: int) -> None:
    sizes: dict[bool, dict[str, int]] = {}
    kept: Database | None = None
    try:
        for personal in (False, True):
            rates = []
            for i in range(repeat):
                db, rate = ingest(store, n, personal)
                rates.append(rate)
                if i < repeat - 1:
                    db.drop()
            events_table = "stored_events" if store == "sqlite" else "pageledger_events"
            sizes[personal] = table_bytes(db, [events_table, seals_table_name(events_table)])
            sizes[personal]["events"] = sizes[personal].pop(events_table)
            sizes[personal]["seals"] = sizes[personal].pop(seals_table_name(events_table))
            line("ingest_commands", store, f"{statistics.median(rates):,.0f} jobs/s "
                 f"({'personal fields encrypted' if personal else 'in clear'}, seals included)",
                 "runs: " + ", ".join(f"{r:,.0f}" for r in rates))
            if personal:
                kept = db
            else:
                db.drop()
        line("seal_bytes", store, f"{sizes[True]['seals'] / n:.1f} B/job", f"(in clear: {sizes[False]['seals'] / n:.1f})")
        line("event_bytes", store, f"{sizes[True]['events'] / n:.1f} B/job encrypted",
             f"in clear {sizes[False]['events'] / n:.1f} B/job")
        assert kept is not None
        rt = build_runtime(Settings.load(environ={}, database_url=kept.url, data_dir=kept.tmp / "var"))
        try:
            rt.catch_up()
            head = rt.followers["jobs"].head()
            rebuild, as_of, seals, models = [], [], [], []
            for _ in range(repeat):
                started = time.perf_counter()
                rt.all_together(batch_size=5000).rebuild()
                rebuild.append(_rate(head, started))
                started = time.perf_counter()
                rt.audit.usage_as_of(2 ** 62, "user")
                as_of.append(_rate(head, started))
                started = time.perf_counter()
                report = check_seals(RawLog(rt.app.recorder))
                seals.append(_rate(head, started))
                assert report.ok, report.findings[:3]
                started = time.perf_counter()
                result = rt.audit.verify()
                models.append(_rate(head, started))
                assert result.ok
            for name, rates in (("rebuild", rebuild), ("as_of", as_of), ("verify_seals", seals),
                                ("verify_all", models)):
                line(name, store, f"{statistics.median(rates):,.0f} events/s",
                     "runs: " + ", ".join(f"{r:,.0f}" for r in rates))
        finally:
            rt.close()
    finally:
        if kept is not None:
            kept.drop()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--jobs", type=int, default=100_000)
    p.add_argument("--stores", default="sqlite,postgresql")
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    print(f"# bench.audit on {platform.node()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}, "
          f"jobs={args.jobs}, median of {args.repeat}", flush=True)
    for store in args.stores.split(","):
        run_store(store, args.jobs, args.repeat)
    print(f"# load at the end {os.getloadavg()[0]:.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Creating the database itself (`pageledger db create`)."""
from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from adapters.stores import StoreConfigError, parse_database_url


def create_database(url: str, *, name: str | None = None, overwrite: bool = False) -> str:
    """Create (or with `overwrite`, re-create) the database; returns the URL to use."""
    parsed = parse_database_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = Path(parsed.database)
        if name:
            path = path.with_name(f"{name}.db")
        if path.exists():
            if not overwrite:
                raise StoreConfigError(f"{path} exists; pass --overwrite to replace it (its events are lost)")
            for suffix in ("", "-wal", "-shm"):
                Path(str(path) + suffix).unlink(missing_ok=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        return str(parsed.set(database=str(path)))
    target = name or parsed.database
    if not target or not target.replace("_", "").isalnum():
        raise StoreConfigError(f"database name {target!r}: use letters, digits and underscores")
    admin = sa.create_engine(parsed.set(drivername="postgresql+psycopg", database="postgres"),
                             isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": target}).first()
            if exists and not overwrite:
                raise StoreConfigError(f"database {target} exists; pass --overwrite to replace it (its events are lost)")
            if exists:
                conn.execute(sa.text(f'DROP DATABASE "{target}" WITH (FORCE)'))
            conn.execute(sa.text(f'CREATE DATABASE "{target}"'))
    finally:
        admin.dispose()
    return parsed.set(database=target).render_as_string(hide_password=False)

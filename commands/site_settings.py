"""Site settings: change one field (one event), and read the values in force.

`SiteSettingsReader` holds the values for at most `ttl` seconds, as `PrinterCache` does for
printers: a change is seen at once in the process that made it and within `ttl` elsewhere.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable

from adapters.event_store import PageLedger
from commands.conflicts import retry_on_conflict
from domain.site_settings import (FIELDS, SECRET_SETTINGS, SiteSettings, Value, check_value, shown_value,
                                  site_settings_id)

log = logging.getLogger("pageledger.settings")

_UNSET = object()


@dataclass(frozen=True)
class SettingChanged:
    field: str
    old: Value
    new: Value
    changed: bool  # False when the field already held the value (nothing was recorded)


class SiteSettingsReader:
    def __init__(self, app: PageLedger, ttl: float = 2.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.app = app
        self.ttl = ttl
        self.clock = clock
        self._lock = threading.Lock()
        self._cached: tuple[float, dict[str, Value]] | None = None

    def load(self) -> SiteSettings | None:
        sid = site_settings_id(self.app.server_id)
        return self.app.repository.get(sid) if sid in self.app.repository else None

    def values(self) -> dict[str, Value]:
        """Every field's value in force (defaults for those never changed)."""
        now = self.clock()
        with self._lock:
            if self._cached and self._cached[0] > now:
                return dict(self._cached[1])
        aggregate = self.load()
        values = {name: (aggregate.value(name) if aggregate else spec.default) for name, spec in FIELDS.items()}
        with self._lock:
            self._cached = (now + self.ttl, values)
        return dict(values)

    def __getitem__(self, field: str) -> Value:
        return self.values()[field]

    def invalidate(self) -> None:
        with self._lock:
            self._cached = None


class ChangeSetting:
    """Set one field. With `expected`, refuse (StaleSetting) when the field no longer holds it;
    SettingError names a field that does not exist or a value it does not take."""

    def __init__(self, app: PageLedger, reader: SiteSettingsReader,
                 seal: Callable[[str], str] | None = None) -> None:
        """`seal`: what a secret field's value is recorded as (adapters.setting_secrets)."""
        self.app = app
        self.reader = reader
        self.seal = seal

    def __call__(self, field: str, value: object, *, by: str, expected: object = _UNSET) -> SettingChanged:
        value = check_value(field, value)  # refuse a bad value before loading anything
        if field in SECRET_SETTINGS and self.seal is not None:
            value = self.seal(str(value))

        def attempt() -> SettingChanged:
            settings = self.reader.load() or SiteSettings.create(site_settings_id(self.app.server_id))
            old = settings.value(field)
            changed = settings.change(field, value, expected, by, check_expected=expected is not _UNSET)
            if changed or settings.version == 1:
                self.app.save(settings)
            return SettingChanged(field, old, settings.value(field), changed)

        result = retry_on_conflict(attempt, what=f"change the setting {field}")
        self.reader.invalidate()
        if result.changed:
            log.info("setting %s changed from %r to %r by %s", field, shown_value(field, result.old),
                     shown_value(field, result.new), by)
        return result

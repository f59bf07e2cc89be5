"""A small reference online activation service: licence key + company -> signed licence.

It is what a PageLedger server calls when an admin activates online, run by the licence
issuer. It checks the key's signature, that the company is the one the key was sold to, and
that the key is not already activating another server (one key, one server; the same server
may re-activate), then answers with a licence signed for the server's host and MAC.
Activations are remembered in a small JSON file so a restart does not forget them.
"""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Callable

import falcon
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from adapters.licence_keys import LicenceRefused, decode_key, normalise_mac, same_company
from tools.licence_issuer import issue_licence

_FIELDS = ("key", "company", "host", "mac")


class ActivationRegistry:
    """Which server each key id activated, kept in a JSON file (or in memory with no path)."""

    def __init__(self, path: Path | None) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._hosts: dict[str, list[str]] = {}
        if path and path.exists():
            self._hosts = json.loads(path.read_text())

    def claim(self, key_id: str, host: str, mac: str) -> list[str] | None:
        """Bind the key to this server; returns the other server it is bound to, if any."""
        with self._lock:
            bound = self._hosts.get(key_id)
            if bound and bound != [host.lower(), mac]:
                return bound
            self._hosts[key_id] = [host.lower(), mac]
            if self._path:
                tmp = self._path.with_suffix(".tmp")
                tmp.write_text(json.dumps(self._hosts))
                tmp.replace(self._path)
            return None


class ActivateResource:
    def __init__(self, private_key: Ed25519PrivateKey, registry: ActivationRegistry,
                 clock: Callable[[], int]) -> None:
        self._private_key = private_key
        self._public_key = private_key.public_key()
        self._registry = registry
        self._clock = clock

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        try:
            body = json.loads(req.bounded_stream.read() or b"null")
        except ValueError:
            raise falcon.HTTPBadRequest(title="the body is not JSON") from None
        if not isinstance(body, dict):
            raise falcon.HTTPBadRequest(title="the body must be a JSON object")
        errors = {f: ["required: a non-empty string"] for f in _FIELDS
                  if not isinstance(body.get(f), str) or not body[f].strip()}
        if errors:
            raise falcon.HTTPBadRequest(title="invalid activation request", description=errors)
        try:
            key = decode_key(body["key"], self._public_key)
        except LicenceRefused as exc:
            raise falcon.HTTPBadRequest(title=str(exc), description={"key": [str(exc)]}) from None
        if not same_company(key.company, body["company"]):
            message = "the company name does not match the one this key was sold to"
            raise falcon.HTTPForbidden(title=message, description={"company": [message]})
        if key.expires_at and key.expires_at <= self._clock():
            raise falcon.HTTPForbidden(title="this licence key has expired")
        mac = normalise_mac(body["mac"])
        other = self._registry.claim(key.key_id, body["host"].strip(), mac)
        if other:
            raise falcon.HTTPConflict(title=f"this key is already activated on another server ({other[0]})")
        resp.media = {"licence": issue_licence(self._private_key, key, host=body["host"].strip(), mac=mac,
                                               method="online", issued_at=self._clock())}


def _error_serializer(req: falcon.Request, resp: falcon.Response, exc: falcon.HTTPError) -> None:
    resp.content_type = falcon.MEDIA_JSON
    body = {"title": exc.title}
    if isinstance(exc.description, dict):
        body["errors"] = exc.description
    resp.text = json.dumps(body)


def create_app(private_key: Ed25519PrivateKey, registry_path: Path | None = None,
               clock: Callable[[], int] | None = None) -> falcon.App:
    app = falcon.App()
    app.set_error_serializer(_error_serializer)
    app.add_route("/activate", ActivateResource(private_key, ActivationRegistry(registry_path),
                                                clock or (lambda: int(time.time() * 1_000_000))))
    return app

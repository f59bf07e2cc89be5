"""/static/{name}: the console's one stylesheet and one script, vendored in the package
(sites may have no internet; no build step). Served from memory with an ETag."""
from __future__ import annotations

import hashlib
from importlib import resources

import falcon

from api.openapi import Operation

TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}


class StaticResource:
    public = True
    openapi = {"get": Operation("The console's stylesheet and script", responses={304: "Not modified",
                                                                                 404: "No such file"},
                                path_patterns={"name": r"^(console\.(css|js)|progress\.js)$"})}

    def __init__(self) -> None:
        self.files: dict[str, tuple[bytes, str, str]] = {}
        for entry in resources.files("api").joinpath("static").iterdir():
            suffix = "." + entry.name.rpartition(".")[2]
            if suffix in TYPES:
                data = entry.read_bytes()
                self.files[entry.name] = (data, TYPES[suffix], '"' + hashlib.sha256(data).hexdigest()[:20] + '"')

    def on_get(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        found = self.files.get(name)
        if found is None:
            raise falcon.HTTPNotFound(title="No such file")
        data, content_type, etag = found
        resp.set_header("ETag", etag)
        resp.cache_control = ["private", "max-age=3600"]
        if req.get_header("If-None-Match") == etag:
            resp.status = falcon.HTTP_304
            return
        resp.content_type = content_type
        resp.data = data

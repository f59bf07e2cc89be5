"""The OpenAPI document lists the identity and licensing endpoints."""
from __future__ import annotations


def test_the_openapi_document_describes_login_setup_licence_and_users():
    from api.openapi import build_spec

    paths = build_spec()["paths"]
    for path in ("/Authentication/Login", "/Setup/NetworkSetup", "/api/v1/licence", "/api/v1/licence/activation",
                 "/api/v1/users/sync", "/api/v1/users/{user_id}/active"):
        assert path in paths
    assert "429" in paths["/Authentication/Login"]["post"]["responses"]

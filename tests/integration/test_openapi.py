"""/openapi.json cannot drift from the routes: every route and method of the app is in it."""
from __future__ import annotations

import falcon.inspect
import falcon.testing
import pytest

from api.app import create_app


def served_operations(app) -> set[tuple[str, str]]:
    """(path, method) of every responder the router really has (falcon's own view of it)."""
    return {(route.path, m.method.lower()) for route in falcon.inspect.inspect_routes(app)
            for m in route.methods if not m.internal}


@pytest.mark.parametrize("role", ["all", "services"])
def test_every_route_and_method_of_the_app_is_in_the_openapi_document(runtime, role):
    app = create_app(runtime, role=role)
    document = falcon.testing.TestClient(app).simulate_get("/openapi.json").json
    documented = {(path, method) for path, ops in document["paths"].items() for method in ops}
    served = served_operations(app)
    assert served and served - documented == set()
    assert documented - served == set()  # nothing documented that is not served
    if role == "all":
        assert ("/Services/jobs/{job_id}/spool", "put") in documented
        assert ("/Authentication/Logout", "post") in documented


def test_operations_say_who_may_call_them_and_what_they_take(runtime):
    document = falcon.testing.TestClient(create_app(runtime)).simulate_get("/openapi.json").json
    paths = document["paths"]
    assert "security" not in paths["/healthz"]["get"]  # public
    assert "security" in paths["/api/v1/users/sync"]["post"] and "admin" in paths["/api/v1/users/sync"]["post"][
        "description"]
    assert "429" in paths["/Authentication/Login"]["post"]["responses"]
    assert "pages" in document["components"]["schemas"]["JobReport"]["properties"]
    job_params = {p["name"] for p in paths["/api/v1/jobs"]["get"]["parameters"]}
    assert {"user", "printer", "from", "to", "cursor", "limit"} <= job_params
    assert paths["/api/v1/users/{user_id}/active"]["put"]["parameters"][0]["name"] == "user_id"


def test_local_account_endpoints_are_documented_admin_only_with_their_bodies(runtime):
    document = falcon.testing.TestClient(create_app(runtime)).simulate_get("/openapi.json").json
    paths = document["paths"]
    assert paths["/api/v1/users"]["get"]["description"] == "Roles: admin, auditor."
    assert paths["/api/v1/users"]["post"]["description"] == "Roles: admin."  # narrower than the path's GET
    for path, method in (("/api/v1/users/{user_id}", "delete"), ("/api/v1/users/{user_id}/password", "put"),
                         ("/api/v1/users/{user_id}/role", "put")):
        assert paths[path][method]["description"] == "Roles: admin.", path
        assert "409" in paths[path][method]["responses"] and "404" in paths[path][method]["responses"], path
    schemas = document["components"]["schemas"]
    assert {"login", "password", "role", "full_name", "email"} <= set(schemas["LocalUser"]["properties"])
    assert schemas["Role"]["properties"]["role"]["enum"] == ["admin", "auditor", "user", "agent"]


def test_answers_are_described_error_bodies_everywhere_and_the_main_200_bodies(runtime):
    document = falcon.testing.TestClient(create_app(runtime)).simulate_get("/openapi.json").json
    paths, schemas = document["paths"], document["components"]["schemas"]
    for path, operations in paths.items():
        for method, op in operations.items():
            for code, response in op["responses"].items():
                if code.startswith("4"):
                    assert response["content"]["application/json"]["schema"] == {
                        "$ref": "#/components/schemas/Error"}, (method, path, code)
    assert schemas["Error"]["required"] == ["title"]
    for path, name in (("/api/v1/jobs", "JobPage"), ("/api/v1/usage", "UsageReply"), ("/healthz", "Health")):
        assert paths[path]["get"]["responses"]["200"]["content"]["application/json"]["schema"] == {
            "$ref": f"#/components/schemas/{name}"}, path
    assert "503" in paths["/healthz"]["get"]["responses"]
    assert schemas["JobPage"]["properties"]["next_cursor"]["nullable"] is True

"""The fuzz tier: schemathesis sends every operation of /openapi.json generated requests, valid
and invalid, and every answer must be a non-5xx answer that the document describes (a status
code it lists, a body that matches its schema).

Every operation of the document is fuzzed but GET /openapi.json itself (schemathesis leaves
the schema's own URL out; loading it is the first request). In-process (falcon's WSGI app, as
tests/integration/test_openapi.py builds it) on both stores, with a projection runner running
as `pageledger up` has one. Each operation is called with the
token of each role of ours (admin, agent, user) that may call it, public ones with none.
Bounded: MAX_EXAMPLES per operation, role and generation mode, derandomised (fixed seed), and
a time budget for the whole run.

The setup wizard is fuzzed without the setup code: every POST is refused (403) before it
contacts anything, so no generated LDAP host is ever dialled (only loopback may be a network
target here). The state behind the wizard is fuzzed instead by running everything twice: on a
fresh server (nothing set up: no licence, no users) and on one set up beforehand as local
accounts with a trial licence.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from api.app import create_app
from commands.setup import SetupRequest

pytestmark = pytest.mark.fuzz

MAX_EXAMPLES = 15  # 25 took 80-95 s a run here (4 runs); 15 keeps every operation, role and mode
SEED = 14
BUDGET_SECONDS = 120.0  # the whole run on one store and state; a run took 15-20 s here (2 cores)
ROLES = ("admin", "agent", "user")
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]
ADMIN_PASSWORD = "fuzz-admin-password-1"


@dataclass
class Findings:
    """Each distinct failure once (schemathesis' text, numbers blanked), with the first case."""

    seen: dict[str, str] = field(default_factory=dict)
    cases: int = 0

    def add(self, label: str, exc: BaseException) -> None:
        text = str(exc)
        key = label + ": " + re.sub(r"\d+", "N", text.split("Reproduce with")[0])[:300]
        self.seen.setdefault(key, f"{label}\n{text}")


def _allowed(operation) -> tuple[str | None, ...]:
    description = operation.definition.raw.get("description", "")
    if not description.startswith("Roles:"):
        return (None,)  # public: no token
    allowed = set(re.findall(r"\w+", description.removeprefix("Roles:")))
    return tuple(r for r in ROLES if r in allowed)


def _has_input(operation) -> bool:
    raw = operation.definition.raw
    return bool(raw.get("parameters") or raw.get("requestBody"))


def _set_up(runtime) -> None:
    runtime.complete_setup(SetupRequest(network_type="local", ldap=None, licence_mode="trial", key="",
                                        company="", licence_file="", admin_login="fuzzadmin",
                                        admin_password=ADMIN_PASSWORD))


def _fuzz(operation, mode: GenerationMode, headers: dict[str, str], deadline: float, findings: Findings) -> None:
    @seed(SEED)
    @settings(max_examples=MAX_EXAMPLES, derandomize=True, deadline=None, database=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case) -> None:
        if time.monotonic() > deadline:
            return
        findings.cases += 1
        try:
            case.call_and_validate(headers=headers, checks=CHECKS)
        except (Failure, FailureGroup) as exc:
            findings.add(f"{operation.label} [{mode.value}, {headers and 'token' or 'no token'}]", exc)

    run()


@pytest.mark.parametrize("state", ["fresh", "set up"])
def test_no_operation_answers_a_server_error_or_an_undocumented_answer(runtime, state):
    tokens = {role: runtime.issue_token(name=f"fuzz-{role}", role=role)[1] for role in ROLES}
    if state == "set up":
        _set_up(runtime)
    runtime.catch_up()
    runtime.start_projections()  # /healthz answers 503 without a runner, as it should
    app = create_app(runtime)
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    findings, operations = Findings(), []
    started = time.monotonic()
    deadline = started + BUDGET_SECONDS
    for result in schema.get_all_operations():
        operation = result.ok()
        operations.append(operation.label)
        modes = [GenerationMode.POSITIVE] + ([GenerationMode.NEGATIVE] if _has_input(operation) else [])
        for role in _allowed(operation):
            headers = {"Authorization": f"Bearer {tokens[role]}"} if role else {}
            for mode in modes:
                _fuzz(operation, mode, headers, deadline, findings)
    elapsed = time.monotonic() - started
    documented = {f"{method.upper()} {path}" for path, item in schema.raw_schema["paths"].items() for method in item}
    # Every operation but the document itself (schemathesis leaves out the schema's own URL; it
    # was fetched above, and from_wsgi refuses anything but a 200).
    assert set(operations) == documented - {"GET /openapi.json"}
    assert {"PUT /Services/jobs/{job_id}/spool", "POST /Authentication/Logout", "GET /Authentication/Login",
            "GET /Setup/NetworkSetup", "POST /Setup/NetworkSetup"} <= set(operations)
    assert not findings.seen, f"{len(findings.seen)} distinct failures:\n\n" + "\n\n".join(findings.seen.values())
    assert elapsed <= BUDGET_SECONDS, f"the fuzz ran out of its {BUDGET_SECONDS:.0f} s budget"
    print(f"fuzz {state}: {len(operations)} operations, {findings.cases} cases in {elapsed:.1f} s")

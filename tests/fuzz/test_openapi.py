"""Schemathesis against a served ontime: the OpenAPI document describes the API
that answers. Every operation, with each role's key, through every phase the
pytest integration runs (examples, coverage, fuzzing) and the stateful phase,
with every check on (schemathesis.toml). A failure is a real disagreement
between the document and the server, or a 500.

`make fuzz` runs the same against a served ontime with the CLI, for longer."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import hypothesis
import msgspec
import pytest
import schemathesis
from schemathesis.generation import GenerationMode

from api.app import create_app
from api.shell.settings import Settings
from tests.conftest import execute_on, with_database
from tests.e2e.conftest import ADMIN_SECRET, ROOT, Server, ontime_environment
from tests.fuzz.hooks import put_right

ROLES = ("customer", "carrier", "support", "admin")
# examples per operation and role in `make test`; `make fuzz` runs thousands
EXAMPLES = int(os.environ.get("ONTIME_FUZZ_EXAMPLES", "15"))


class Deployment:
    """A served ontime on a database of its own, with one account, a key of each
    role, and a few shipments with events and a revised promise to find."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.keys: dict[str, str] = {}
        self.account_id = ""

    def auth(self, case: schemathesis.Case, role: str) -> dict[str, str]:
        """The role's key (schemathesis generates no credentials of its own:
        `with-security-parameters = false`; its ignored_auth check sends none)."""
        return {"Authorization": f"Bearer {self.keys[role]}"}

    def requests_by_status(self) -> str:
        """What the server answered, from its own /metrics: the fuzzer's requests by status."""
        metrics = httpx.get(f"{self.server.url}/metrics").text
        counts: dict[str, int] = {}
        for line in metrics.splitlines():
            if line.startswith("ontime_http_requests_total{"):
                status = line.split('status="')[1].split('"')[0]
                counts[status] = int(float(line.rsplit(" ", 1)[1]))
        total = sum(counts.values())
        by_status = ", ".join(f"{status}: {count}" for status, count in sorted(counts.items()))
        return f"\nontime answered {total} requests ({by_status})"

    def seed(self) -> None:
        with httpx.Client(base_url=self.server.url, headers={"Authorization": f"Bearer {ADMIN_SECRET}"}) as admin:
            account = admin.post("/v1/accounts", json={"name": "Fuzz Parts", "timezone": "Europe/Madrid"})
            account.raise_for_status()
            self.account_id = account.json()["id"]
            for role in ROLES[:-1]:
                body: dict[str, Any] = {"role": role}
                if role == "customer":
                    body["account_id"] = self.account_id
                key = admin.post("/v1/keys", json=body)
                key.raise_for_status()
                self.keys[role] = key.json()["secret"]
            self.keys["admin"] = ADMIN_SECRET
            for n in range(3):
                shipment = admin.post(
                    "/v1/shipments",
                    json={
                        "account_id": self.account_id,
                        "carrier": "dhl",
                        "tracking_number": f"FUZZ{n}",
                        "promised_by": "2026-11-22T18:00:00+01:00",
                    },
                )
                shipment.raise_for_status()
                shipment_id = shipment.json()["id"]
                admin.post(
                    f"/v1/shipments/{shipment_id}/events",
                    json={"status": "in_transit", "occurred_at": "2026-11-20T09:00:00Z", "event_id": f"e{n}"},
                ).raise_for_status()
            # an integration and a kept inbound payload (one event matched, on FUZZ0) to list and replay
            admin.post(
                "/v1/integrations", json={"source": "easypost", "account_id": self.account_id}
            ).raise_for_status()
            payload = (ROOT / "tests/fixtures/inbound/easypost/in_transit.json").read_bytes()
            admin.post(
                "/v1/inbound/easypost",
                content=payload.replace(b"9400110898825022579493", b"FUZZ0"),
                headers={"Authorization": f"Bearer {self.keys['customer']}"},
            ).raise_for_status()


@pytest.fixture(scope="module")
def deployment(server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    # one name per run, so two runs against the same server (two checkouts) do not drop each other's
    name = f"ontime_fuzz_{os.getpid()}"
    asyncio.run(execute_on(server_url, f'CREATE DATABASE "{name}"'))
    env = ontime_environment(with_database(server_url, name))
    server = Server(env, Path(tmp_path_factory.mktemp("fuzz")), "fuzz")
    try:
        asyncio.run(server.until_ready())
        deployment = Deployment(server)
        deployment.seed()
        yield deployment
        print(deployment.requests_by_status())
    finally:
        server.stop()
        asyncio.run(execute_on(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def realistic(case: schemathesis.Case, role: str, deployment: Deployment) -> None:
    """The rules JSON Schema cannot state (tests/fuzz/hooks.py), on the cases meant
    to be valid; an admin creating a shipment names the deployment's account."""
    positive = case.meta is None or case.meta.generation.mode == GenerationMode.POSITIVE
    creating = case.method == "POST" and case.path == "/v1/shipments"
    if positive and creating and role == "admin" and isinstance(case.body, dict):
        case.body["account_id"] = deployment.account_id
    put_right(case)
    if positive and case.method == "POST" and case.path == "/v1/integrations" and isinstance(case.body, dict):
        case.body["account_id"] = deployment.account_id


def the_document() -> dict[str, Any]:
    """The OpenAPI document as the app builds it (the served one is checked to be the same)."""
    app = create_app(Settings(), database_url="postgresql://unused")
    document: dict[str, Any] = msgspec.json.decode(msgspec.json.encode(app.openapi_schema.to_schema()))
    return document


schema = schemathesis.openapi.from_dict(the_document())
schema.config.generation.update(max_examples=EXAMPLES)


def difference(served: Any, built: Any, path: str = "") -> str:
    """Where two JSON documents first differ."""
    if isinstance(served, dict) and isinstance(built, dict):
        for key in sorted(set(served) | set(built)):
            if key not in served or key not in built:
                return f"{path}/{key}: only in {'built' if key in built else 'served'}"
            if found := difference(served[key], built[key], f"{path}/{key}"):
                return found
        return ""
    if isinstance(served, list) and isinstance(built, list) and len(served) == len(built):
        return next(
            (d for i, (a, b) in enumerate(zip(served, built, strict=True)) if (d := difference(a, b, f"{path}[{i}]"))),
            "",
        )
    return "" if served == built else f"{path}: served {served!r:.100}, built {built!r:.100}"


def test_the_served_document_is_the_one_fuzzed(deployment: Deployment) -> None:
    served = httpx.get(f"{deployment.server.url}/docs/openapi.json")
    assert served.status_code == 200
    built = the_document()
    assert served.json() == built, difference(served.json(), built)


def operations_with_the_key_of(role: str) -> Any:
    """One test per role, each over every operation (the lazy schema's tests take no pytest parameters)."""

    @schema.parametrize()
    @hypothesis.settings(deadline=None, suppress_health_check=list(hypothesis.HealthCheck))
    def test(case: schemathesis.Case, deployment: Deployment) -> None:
        realistic(case, role, deployment)
        case.call_and_validate(base_url=deployment.server.url, headers=deployment.auth(case, role))

    return test


test_every_operation_answers_as_documented_to_a_customer = operations_with_the_key_of("customer")
test_every_operation_answers_as_documented_to_a_carrier = operations_with_the_key_of("carrier")
test_every_operation_answers_as_documented_to_support = operations_with_the_key_of("support")
test_every_operation_answers_as_documented_to_an_admin = operations_with_the_key_of("admin")


@pytest.mark.parametrize("role", ROLES)
def test_sequences_of_calls_answer_as_the_document_says(role: str, deployment: Deployment) -> None:
    """The stateful phase: schemathesis chains calls through the document's links
    (a created shipment is read, given events, its promise revised). Its own engine
    runs it: a server's data moves on between steps, which hypothesis's state
    machines, replaying a scenario, take for a flaky strategy. Every check is on
    (schemathesis.toml); the run fails on any failure, and says which."""
    command = [
        str(Path(sys.executable).with_name("st")),
        "run",
        f"{deployment.server.url}/docs/openapi.json",
        "--phases",
        "stateful",
        "--max-examples",
        str(EXAMPLES),
        "--header",
        f"Authorization: Bearer {deployment.keys[role]}",
        "--seed",
        "1",
        "--no-color",
    ]
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": "tests.fuzz.hooks",
        "PYTHONPATH": str(ROOT),
        "ONTIME_FUZZ_ACCOUNT_ID": deployment.account_id,
    }
    run = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env, timeout=600, check=False)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert "Stateful" in run.stdout, run.stdout[-2000:]

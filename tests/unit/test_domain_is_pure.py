"""The domain holds the rules and does no I/O: it imports only the stdlib,
msgspec and itself. Dependencies point inwards, so `api` may import `domain`
but never the other way round."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

DOMAIN = Path(__file__).resolve().parents[2] / "domain"
ALLOWED_THIRD_PARTY = frozenset({"msgspec"})


def foreign_imports(source: str) -> set[str]:
    """Top-level names of the modules a piece of domain source imports that
    are neither the stdlib, msgspec nor the domain itself."""
    imported: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            imported.add(node.module.split(".")[0])
        # relative imports (level > 0) stay inside the domain package
    return {
        name
        for name in imported
        if name not in sys.stdlib_module_names and name not in ALLOWED_THIRD_PARTY and name != "domain"
    }


def domain_modules() -> list[Path]:
    return sorted(DOMAIN.rglob("*.py"))


def test_the_domain_package_has_the_modules_the_rules_live_in() -> None:
    names = {path.name for path in domain_modules()}
    assert {"status.py", "promise.py", "shipment.py", "events.py"} <= names


@pytest.mark.parametrize("module", domain_modules(), ids=lambda path: path.name)
def test_a_domain_module_imports_only_the_stdlib_msgspec_and_the_domain(module: Path) -> None:
    assert foreign_imports(module.read_text(encoding="utf-8")) == set()


@pytest.mark.parametrize(
    "source",
    [
        "import asyncpg",
        "import litestar.di",
        "from websockets.asyncio.server import serve",
        "from api.store import shipments",
        "def f():\n    import asyncpg\n",
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from api import app\n",
    ],
)
def test_the_purity_check_catches_an_import_of_the_shell_or_its_libraries(source: str) -> None:
    assert foreign_imports(source)


@pytest.mark.parametrize(
    "source",
    [
        "from __future__ import annotations",
        "import hashlib, enum",
        "from datetime import datetime",
        "import msgspec\nfrom msgspec import Meta",
        "from domain.status import Status",
        "from . import status",
    ],
)
def test_the_purity_check_lets_the_stdlib_msgspec_and_the_domain_through(source: str) -> None:
    assert foreign_imports(source) == set()

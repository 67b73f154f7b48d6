"""Every pattern the OpenAPI document states means the same to Python's regular
expressions (which the server checks with) and to JavaScript's (which clients and
schemathesis read it with): no class whose members differ between the two."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest

from api.app import create_app
from api.shell.settings import Settings

# \s, \d, \w and their negations: Unicode-wide in Python, narrower in JavaScript
DIALECT_CLASSES = re.compile(r"(?<!\\)(?:\\\\)*\\[sSdDwW]")


def patterns(node: Any, path: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "pattern" and isinstance(value, str):
                yield path, value
            else:
                yield from patterns(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from patterns(item, f"{path}[{index}]")


DOCUMENT = msgspec.json.decode(
    msgspec.json.encode(create_app(Settings(), database_url="postgresql://unused").openapi_schema.to_schema())
)
PATTERNS = sorted(set(patterns(DOCUMENT)))


def test_the_document_states_patterns_at_all() -> None:
    assert len(PATTERNS) > 10


@pytest.mark.parametrize(("path", "pattern"), PATTERNS, ids=[path for path, _ in PATTERNS])
def test_a_pattern_uses_no_class_that_python_and_javascript_read_differently(path: str, pattern: str) -> None:
    assert not DIALECT_CLASSES.search(pattern), f"{path}: {pattern}"

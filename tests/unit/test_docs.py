"""The reference in docs/ tells the truth about the code it describes.

Every fenced JSON (and Python) block in docs/ is preceded by an HTML comment that says
what it is, and is checked against the struct that encodes or decodes it:

    <!-- client -->                  a live client message: api.live.protocol.client_decoder
    <!-- server: subscribed -->      a live protocol message: the struct of that tag in api.live.protocol
    <!-- server: ping -->            the ping frame: api.live.protocol.PING
    <!-- change -->                  a change message: `seq`, then the api.wire struct of its `type`
    <!-- request: dotted.Name -->    a request body (or a list of them) decoded into that struct
    <!-- response: dotted.Name -->   a response body decoded into that struct
    <!-- example -->                 a Python example: it must compile

A decode is strict (msgspec's types, required fields, constraints) and no example may
carry a field its struct does not have. The routes, problem types, close codes, statuses,
reasons and limits the docs name are checked against the app and its constants.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import msgspec
import pytest
from litestar.routes import HTTPRoute, WebSocketRoute

from api import wire
from api.live import endpoint, hub, protocol
from api.shell.errors import PROBLEM_TYPE
from domain.status import JOURNEY, TERMINAL, Reason, Status

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
API_MD = DOCS / "api.md"
LIVE_MD = DOCS / "live.md"


# -- reading the docs ------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    doc: str
    line: int
    lang: str
    marker: str | None
    body: str

    @property
    def id(self) -> str:
        return f"{self.doc}:{self.line}:{self.marker}"


_MARKER = re.compile(r"^<!--\s*(.*?)\s*-->$")


@cache
def blocks(path: Path) -> tuple[Block, ...]:
    """Fenced blocks, each with the HTML comment on the last non-blank line before it."""
    found = []
    lines = path.read_text().splitlines()
    i = 0
    while i < len(lines):
        if lines[i].startswith("```"):
            lang = lines[i][3:].strip()
            end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
            before = next((lines[j].strip() for j in range(i - 1, -1, -1) if lines[j].strip()), "")
            marker = _MARKER.match(before)
            found.append(Block(path.name, i + 1, lang, marker[1] if marker else None, "\n".join(lines[i + 1 : end])))
            i = end
        i += 1
    return tuple(found)


def marked(path: Path, kind: str) -> list[Block]:
    return [b for b in blocks(path) if b.marker is not None and b.marker.split(":")[0].strip() == kind]


def prose(path: Path) -> str:
    """The text outside fenced blocks."""
    return re.sub(r"^```.*?^```", "", path.read_text(), flags=re.S | re.M)


def table_after(path: Path, marker: str) -> list[list[str]]:
    """The rows (cells stripped of backticks) of the Markdown table after `<!-- marker -->`."""
    lines = path.read_text().splitlines()
    start = lines.index(f"<!-- {marker} -->") + 1
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        cells = [cell.strip().strip("`") for cell in line.strip().strip("|").split("|")]
        rows.append(cells)
    return rows[2:]  # past the header and its rule


# -- fields an example may not carry ---------------------------------------------


def unknown_fields(value: Any, type_info: msgspec.inspect.Type, path: str = "$") -> list[str]:
    """Paths of the keys in `value` that `type_info` has no field for (msgspec ignores
    them when decoding into a struct that allows unknown fields)."""
    match type_info:
        case msgspec.inspect.Metadata(type=inner):
            return unknown_fields(value, inner, path)
        case msgspec.inspect.StructType(fields=fields, tag_field=tag_field) if isinstance(value, dict):
            by_name = {f.encode_name: f for f in fields}
            problems = []
            for key, item in value.items():
                if key == tag_field:
                    continue
                if key not in by_name:
                    problems.append(f"{path}.{key}")
                else:
                    problems += unknown_fields(item, by_name[key].type, f"{path}.{key}")
            return problems
        case msgspec.inspect.UnionType(types=members):
            # the value decoded as one of the members that can hold its kind (a
            # struct for an object, a list for an array): take the most lenient reading
            kind = {dict: msgspec.inspect.StructType, list: msgspec.inspect.ListType}.get(type(value))
            readings = [
                unknown_fields(value, member, path)
                for member in members
                if kind is not None and isinstance(_unwrapped(member), kind)
            ]
            return min(readings, key=len) if readings else []
        case msgspec.inspect.ListType(item_type=item_type) if isinstance(value, list):
            return [p for i, item in enumerate(value) for p in unknown_fields(item, item_type, f"{path}[{i}]")]
    return []


def _unwrapped(type_info: msgspec.inspect.Type) -> msgspec.inspect.Type:
    while isinstance(type_info, msgspec.inspect.Metadata):
        type_info = type_info.type
    return type_info


def check_decodes(text: str, type_: Any) -> Any:
    """Decode strictly into `type_` and refuse any field it does not have."""
    try:
        decoded = msgspec.json.decode(text.encode(), type=type_)
    except msgspec.ValidationError as exc:
        pytest.fail(f"the example does not decode into {type_}: {exc}")
    extra = unknown_fields(json.loads(text), msgspec.inspect.type_info(type_))
    assert not extra, f"the example has fields {type_} does not have: {extra}"
    return decoded


def tagged_structs(module: object) -> dict[str, type[msgspec.Struct]]:
    """The structs of a module tagged on "type", by tag."""
    found = {}
    for _, value in inspect.getmembers(module, inspect.isclass):
        if issubclass(value, msgspec.Struct) and value.__struct_config__.tag_field == "type":
            found[value.__struct_config__.tag] = value
    return found


def resolve(dotted: str) -> Any:
    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module), name)


# -- every block says what it is -------------------------------------------------


@pytest.mark.parametrize("path", [API_MD, LIVE_MD], ids=lambda p: p.name)
def test_every_json_and_python_block_in_the_docs_says_what_it_is(path: Path) -> None:
    known = {"client", "server", "change", "request", "response", "example"}
    for block in blocks(path):
        if block.lang in ("json", "python"):
            assert block.marker is not None, f"{block.doc}:{block.line}: a {block.lang} block with no <!-- marker -->"
            assert block.marker.split(":")[0].strip() in known, f"{block.doc}:{block.line}: unknown marker"


# -- the live protocol ------------------------------------------------------------


@pytest.mark.parametrize("block", marked(LIVE_MD, "client"), ids=lambda b: b.id)
def test_each_client_message_in_live_md_decodes_strictly(block: Block) -> None:
    protocol.client_decoder.decode(block.body)


def test_live_md_shows_every_client_message() -> None:
    shown = {json.loads(b.body)["type"] for b in marked(LIVE_MD, "client")}
    assert shown == {m.__struct_config__.tag for m in protocol.ClientMessage.__args__}


SERVER_STRUCTS = {
    tag: struct for tag, struct in tagged_structs(protocol).items() if struct not in protocol.ClientMessage.__args__
}


@pytest.mark.parametrize("block", marked(LIVE_MD, "server"), ids=lambda b: b.id)
def test_each_server_message_in_live_md_decodes_into_its_struct(block: Block) -> None:
    tag = block.marker.partition(":")[2].strip()
    assert json.loads(block.body)["type"] == tag
    if tag == "ping":
        assert json.loads(block.body) == json.loads(protocol.PING)
        return
    assert tag in SERVER_STRUCTS, f"no server message tagged {tag!r} in api.live.protocol"
    check_decodes(block.body, SERVER_STRUCTS[tag])


def test_live_md_shows_every_server_message() -> None:
    shown = {b.marker.partition(":")[2].strip() for b in marked(LIVE_MD, "server")}
    assert shown == set(SERVER_STRUCTS) | {"ping"}


CHANGE_STRUCTS = tagged_structs(wire)


@pytest.mark.parametrize("block", marked(LIVE_MD, "change"), ids=lambda b: json.loads(b.body)["type"])
def test_each_change_message_in_live_md_decodes_into_its_wire_struct(block: Block) -> None:
    message = json.loads(block.body)
    assert next(iter(message)) == "seq", "the server sends seq first"
    seq = message.pop("seq")
    assert isinstance(seq, int) and seq > 0
    kind = message["type"]
    assert kind in CHANGE_STRUCTS, f"no change struct tagged {kind!r} in api.wire (has {sorted(CHANGE_STRUCTS)})"
    check_decodes(json.dumps(message), CHANGE_STRUCTS[kind])
    assert "recipient" not in message.get("shipment", {}), "personal data stays off the feeds"


def test_live_md_and_api_md_show_every_change_type() -> None:
    shown = {json.loads(b.body)["type"] for b in marked(LIVE_MD, "change")}
    missing = set(CHANGE_STRUCTS) - shown
    assert not missing, f"change types of api.wire with no example in live.md: {missing}"
    listed = {row[0] for row in table_after(API_MD, "change-types")}
    assert listed == shown, "api.md's table of change types and live.md's examples differ"


def test_change_seqs_in_live_md_only_grow() -> None:
    seqs = [json.loads(b.body)["seq"] for b in marked(LIVE_MD, "change")]
    assert seqs == sorted(set(seqs))


def test_each_close_code_in_the_docs_is_the_protocols() -> None:
    rows = table_after(LIVE_MD, "close-codes")
    documented = {name: int(code) for code, name, *_ in rows}
    for name, code in documented.items():
        assert getattr(protocol, name, None) == code, f"live.md says {name} is {code}"
    constants = {
        name: value
        for name, value in vars(protocol).items()
        if name.isupper() and isinstance(value, int) and 4000 <= value <= 4999
    }
    assert documented == constants
    readme = ROOT / "README.md"
    for path in (API_MD, LIVE_MD, readme):
        said = re.findall(r"\b(?:clos\w*|codes?)\b[^.\n]{0,40}?\b(4\d{3})\b", prose(path))
        named = {int(code) for code in said}
        assert named <= set(constants.values()), f"{path.name} names close codes the server never sends"
    # the standard codes live.md names beside them
    standard = {int(code) for code in re.findall(r"`(1\d{3})`", prose(LIVE_MD))}
    assert standard <= {1000, endpoint.TRY_AGAIN_LATER, hub.INTERNAL_ERROR}


def test_the_live_limits_in_the_docs_are_the_codes() -> None:
    text = LIVE_MD.read_text()
    ids_per_message = msgspec.inspect.type_info(protocol.ShipmentIds)
    assert isinstance(ids_per_message, msgspec.inspect.ListType)
    ping_every = inspect.signature(hub.Hub).parameters["ping_interval"].default
    for claim in (
        f"{hub.MAX_SHIPMENTS:,} shipments followed by id per connection",
        f"{ids_per_message.max_length:,} shipment ids per `subscribe` or `unsubscribe` message",
        f"up to {ids_per_message.max_length:,} ids in one message",
        f"within {endpoint.AUTH_TIMEOUT:g} s of connecting",
        f"every {ping_every:g} s",
    ):
        assert claim in text, f"live.md should say {claim!r}"
    assert f"{hub.MAX_SHIPMENTS:,} shipments by id per connection" in API_MD.read_text()


@pytest.mark.parametrize("block", marked(LIVE_MD, "example") + marked(API_MD, "example"), ids=lambda b: b.id)
def test_each_python_example_compiles(block: Block) -> None:
    compile(block.body, block.id, "exec")


# -- the HTTP API -----------------------------------------------------------------


@pytest.mark.parametrize("block", marked(API_MD, "request") + marked(API_MD, "response"), ids=lambda b: b.id)
def test_each_body_in_api_md_decodes_into_its_struct(block: Block) -> None:
    struct = resolve(block.marker.partition(":")[2].strip())
    check_decodes(block.body, list[struct] if block.body.lstrip().startswith("[") else struct)


@cache
def served() -> dict[str, set[str]]:
    """The app's routes, `{param}` names dropped: path -> methods."""
    from api.app import create_app
    from api.shell.settings import Settings

    app = create_app(Settings(), database_url="postgresql://unused")
    routes: dict[str, set[str]] = {}
    for route in app.routes:
        path = re.sub(r"\{[^}]*\}", "{}", route.path)
        if isinstance(route, WebSocketRoute):
            routes.setdefault(path, set()).add("GET")
        elif isinstance(route, HTTPRoute):
            routes.setdefault(path, set()).update(route.methods - {"HEAD", "OPTIONS"})
    return routes


def documented_routes(path: Path) -> Iterator[tuple[str, str]]:
    for method, route in re.findall(r"`(GET|POST|PUT|PATCH|DELETE) (/[^`\s?]*)", path.read_text()):
        yield method, re.sub(r"\{[^}]*\}", "{}", route).rstrip("/") or "/"


def test_each_route_the_docs_name_is_served() -> None:
    for path in (API_MD, LIVE_MD):
        for method, route in documented_routes(path):
            assert method in served().get(route, set()), f"{path.name} names {method} {route}, which is not served"
        for route in re.findall(r"`(/v1/[^`\s?]*)", path.read_text()):
            assert re.sub(r"\{[^}]*\}", "{}", route) in served(), f"{path.name} names {route}, which is not served"


def test_each_v1_route_is_in_api_md() -> None:
    documented = set(documented_routes(API_MD))
    for route, methods in served().items():
        if route.startswith("/v1/"):
            for method in methods:
                assert (method, route) in documented, f"{method} {route} is served but not in docs/api.md"


def _problem_slugs_in_code() -> dict[str, int | None]:
    """slug -> status, from every `Problem(status, "slug", ...)` in api/ and the table of
    framework errors (a dict whose name holds SLUGS, and the fallback of its `.get`)."""
    slugs: dict[str, int | None] = {}
    for source in (ROOT / "api").rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == "Problem":
                status, slug = [*node.args, None, None][:2]
                if isinstance(slug, ast.Constant) and isinstance(slug.value, str):
                    slugs[slug.value] = status.value if isinstance(status, ast.Constant) else None
            elif isinstance(node, ast.Assign) and any("SLUGS" in getattr(t, "id", "") for t in node.targets):
                if isinstance(node.value, ast.Dict):
                    for status, pair in zip(node.value.keys, node.value.values, strict=True):
                        if isinstance(pair, ast.Tuple) and isinstance(pair.elts[0], ast.Constant):
                            slugs[pair.elts[0].value] = status.value if isinstance(status, ast.Constant) else None
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "get"
                and "SLUGS" in getattr(node.func.value, "id", "")
                and len(node.args) == 2
                and isinstance(node.args[1], ast.Tuple)
                and isinstance(node.args[1].elts[0], ast.Constant)
            ):
                slugs[node.args[1].elts[0].value] = None
    return slugs


def test_api_md_lists_every_problem_type_with_its_status() -> None:
    in_code = _problem_slugs_in_code()
    documented = {slug: status for slug, status, *_ in table_after(API_MD, "problem-types")}
    assert set(documented) == set(in_code), "problem types in api.md and in api/ differ"
    for slug, status in in_code.items():
        if status is not None:
            assert documented[slug] == str(status), f"{slug} is a {status}, api.md says {documented[slug]}"
    assert f"`{PROBLEM_TYPE}` followed by one of" in API_MD.read_text()


def test_api_md_lists_the_statuses_in_their_order_with_what_is_terminal() -> None:
    rows = table_after(API_MD, "statuses")
    assert [row[0] for row in rows] == [s.value for s in sorted(Status, key=JOURNEY.__getitem__)]
    for status, _, terminal in rows:
        assert (terminal == "yes") == (Status(status) in TERMINAL), status


def test_api_md_lists_every_reason() -> None:
    text = API_MD.read_text()
    paragraph = text[text.index("<!-- reasons -->") :].split("\n\n")[0]
    assert set(re.findall(r"`(\w+)`", paragraph)) == {r.value for r in Reason}


def test_the_http_limits_in_api_md_are_the_codes() -> None:
    from api.shell.settings import Settings
    from api.shipments import routes

    text = API_MD.read_text()
    assert f"{Settings().max_body_bytes // 2**20} MiB by default" in text
    assert f"| events per request | {routes.MAX_EVENTS:,} " in text


# -- the docs hang together ---------------------------------------------------------


def _anchors(path: Path) -> set[str]:
    headings = re.findall(r"^#+ (.*)$", prose(path), flags=re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


@pytest.mark.parametrize("path", [API_MD, LIVE_MD], ids=lambda p: p.name)
def test_each_link_within_the_docs_leads_somewhere(path: Path) -> None:
    for target in re.findall(r"\]\(([^)\s]+)\)", path.read_text()):
        if target.startswith(("http://", "https://")):
            continue
        file, _, anchor = target.partition("#")
        linked = path.parent / file if file else path
        assert linked.exists(), f"{path.name} links to {file}, which does not exist"
        if anchor:
            assert anchor in _anchors(linked), f"{path.name} links to {target}, which has no such heading"


def test_the_readme_points_at_the_docs_and_not_outside_the_repository() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "../shared" not in readme
    assert "(docs/api.md)" in readme and "(docs/live.md)" in readme


def test_the_range_of_instants_in_api_md_is_the_domains() -> None:
    from domain import shipment

    text = " ".join(API_MD.read_text().split())
    first = shipment.EARLIEST_INSTANT.isoformat().replace("+00:00", "Z")
    end = shipment.END_OF_INSTANTS.isoformat().replace("+00:00", "Z")
    assert f"from `{first}` up to, not including, `{end}`" in text


async def test_the_python_client_in_live_md_resumes_with_since_after_a_reconnect() -> None:
    """Run the example against a stand-in server: cut off with 4008 after one change, it
    must reconnect with `since` at that change, and stop when its key is revoked."""
    import asyncio
    import types

    from websockets.asyncio.server import ServerConnection, serve
    from websockets.exceptions import ConnectionClosed

    (example,) = marked(LIVE_MD, "example")
    namespace: dict[str, Any] = {"__name__": "live_md_example"}
    exec(compile(example.body, example.id, "exec"), namespace)
    namespace["asyncio"] = types.SimpleNamespace(sleep=lambda _: asyncio.sleep(0))
    namespace["KEY"] = "ot_example"
    change = json.loads(marked(LIVE_MD, "change")[0].body)
    subscribes: list[dict[str, Any]] = []
    handled: list[int] = []

    async def server(connection: ServerConnection) -> None:
        assert connection.request is not None
        assert connection.request.headers["Authorization"] == f"Bearer {namespace['KEY']}"
        subscribes.append(json.loads(await connection.recv()))
        if len(subscribes) == 1:
            await connection.send(json.dumps({"type": "subscribed", "shipments": "all", "account_id": None, "seq": 10}))
            await connection.send(json.dumps({**change, "seq": 11}))
            await connection.close(protocol.TOO_SLOW)
        else:
            await connection.send(json.dumps({"type": "ping"}))
            await connection.send(json.dumps({**change, "seq": 12}))
            await connection.close(protocol.REVOKED)

    async with serve(server, "127.0.0.1", 0) as running:
        port = next(iter(running.sockets)).getsockname()[1]
        namespace["URL"] = f"ws://127.0.0.1:{port}/v1/live"
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(namespace["follow"](lambda m: handled.append(m["seq"])), 10)
    assert handled == [11, 12]
    assert subscribes == [
        {"type": "subscribe", "shipments": "all"},
        {"type": "subscribe", "shipments": "all", "since": 11},
    ]

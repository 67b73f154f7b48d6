"""The interactive reference works with no internet: /docs (Scalar) and /docs/swagger
load every script, stylesheet and icon from this server (the pinned bundles vendored in
api/shell/static/), and the pages name no other host. No database is needed: the app is
built but its lifespan never runs."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest
from litestar.testing import TestClient

from api.app import create_app
from api.shell import docs_assets
from api.shell.settings import Settings

PAGES = ["/docs", "/docs/scalar", "/docs/swagger"]
HOST = "testserver.local"  # TestClient's base_url

CONTENT_TYPES = {
    ".js": {"text/javascript", "application/javascript"},
    ".css": {"text/css"},
    ".svg": {"image/svg+xml"},
    ".json": {"application/json", "application/vnd.oai.openapi+json"},
}
REFERENCE_ATTRIBUTES = {"src", "href", "data-url", "srcset", "poster", "action"}


@pytest.fixture(scope="module")
def client() -> TestClient:
    app = create_app(Settings(), database_url="postgresql://unused@127.0.0.1:1/unused")
    # not entered as a context manager: no lifespan, so no database (and nothing to close)
    return TestClient(app, base_url=f"http://{HOST}")


class _References(HTMLParser):
    """Every URL an HTML page makes a browser load: attributes, inline styles' url(...)."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value is None:
                continue
            if name in REFERENCE_ATTRIBUTES:
                self.urls.append(value)
            elif name == "style":
                self.urls.extend(_css_urls(value))
        self._in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.urls.extend(_css_urls(data))


def _css_urls(css: str) -> list[str]:
    found = re.findall(r"""url\(\s*['"]?([^'")\s]+)""", css)
    found += re.findall(r"""@import\s+['"]([^'"]+)""", css)
    return found


def references(html: str) -> list[str]:
    parser = _References()
    parser.feed(html)
    parser.close()
    return parser.urls


def is_local(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme == "data":
        return True
    return parts.scheme in ("", "http", "https") and parts.netloc in ("", HOST)


def page(client: TestClient, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200, (path, response.text)
    assert response.headers["content-type"].startswith("text/html"), path
    return response.text


@pytest.mark.parametrize("path", PAGES)
def test_each_page_loads_only_from_this_server(client: TestClient, path: str) -> None:
    html = page(client, path)
    urls = references(html)
    # the page's own script, stylesheet and icon at least, and the favicon is ours
    assert len(urls) >= 3, urls
    assert docs_assets.FAVICON in html
    for url in urls:
        assert is_local(url), f"{path} loads {url} from another host"
        target = urljoin(path, url)
        if urlsplit(target).scheme == "data":
            continue
        response = client.get(target)
        assert response.status_code == 200, f"{path}: {target} answers {response.status_code}"
        suffix = Path(urlsplit(target).path).suffix
        if suffix in CONTENT_TYPES:
            media_type = response.headers["content-type"].split(";")[0].strip()
            assert media_type in CONTENT_TYPES[suffix], (target, media_type)
        assert response.content, target


@pytest.mark.parametrize("path", PAGES)
def test_no_page_names_another_host(client: TestClient, path: str) -> None:
    html = page(client, path)
    # Swagger's page carries the OpenAPI document inline; what the document says
    # (descriptions may hold example links) is text, not something the page loads
    document = client.get("/docs/openapi.json").text
    if path == "/docs/swagger":
        assert document in html
    html = html.replace(document, "")
    for url in re.findall(r"""(?:https?:)?//[^\s"'<>)\\]+""", html):
        assert urlsplit(url if "://" in url else "http:" + url).netloc == HOST, f"{path} names {url}"


def test_the_assets_are_pinned_and_cached_for_a_year(client: TestClient) -> None:
    scalar = page(client, "/docs")
    swagger = page(client, "/docs/swagger")
    assert f"/scalar-api-reference-{docs_assets.SCALAR_VERSION}/standalone.js" in scalar
    assert f"/swagger-ui-dist-{docs_assets.SWAGGER_UI_VERSION}/swagger-ui-bundle.js" in swagger
    for url in references(scalar) + references(swagger):
        if url.startswith(docs_assets.ASSETS_PATH + "/"):
            response = client.head(url)
            assert response.status_code == 200, url
            cache_control = response.headers["cache-control"]
            assert "max-age=31536000" in cache_control and "immutable" in cache_control, (url, cache_control)


def test_scalar_is_told_to_fetch_no_fonts_and_call_no_service(client: TestClient) -> None:
    html = page(client, "/docs")
    configuration = re.search(r"dataset\.configuration = '([^']*)'", html)
    assert configuration, html
    options = json.loads(configuration.group(1))
    assert options["withDefaultFonts"] is False
    assert options["telemetry"] is False
    assert options["agent"] == {"disabled": True}
    assert options["showDeveloperTools"] == "never"
    assert options["hideClientButton"] is True


def test_the_only_remote_urls_in_the_bundles_stylesheets_are_the_fonts_switched_off() -> None:
    """A refreshed bundle that brings a new url(https://...) into its CSS fails here
    until someone looks at it (the README in static/ lists what the bundles name)."""
    remote = re.compile(r"""url\(\s*['"]?(https?:)?//([^/'")\s]+)""")
    bundle = (docs_assets.STATIC_DIR / f"scalar-api-reference-{docs_assets.SCALAR_VERSION}/standalone.js").read_text()
    assert {m.group(2) for m in remote.finditer(bundle)} <= {"fonts.scalar.com"}
    swagger = docs_assets.STATIC_DIR / f"swagger-ui-dist-{docs_assets.SWAGGER_UI_VERSION}"
    for name in ("swagger-ui.css", "swagger-ui-bundle.js", "swagger-ui-standalone-preset.js"):
        assert not remote.search((swagger / name).read_text()), name


def test_each_vendored_directory_has_its_license_and_is_in_the_readme() -> None:
    readme = (docs_assets.STATIC_DIR / "README.md").read_text()
    for directory in docs_assets.STATIC_DIR.iterdir():
        if directory.is_dir() and directory.name != docs_assets.OWN:
            assert (directory / "LICENSE").is_file(), directory.name
            assert f"`{directory.name}/`" in readme, directory.name


def test_the_assets_need_no_key_and_are_not_in_the_openapi_document(client: TestClient) -> None:
    paths = client.get("/docs/openapi.json").json()["paths"]
    assert not [p for p in paths if p.startswith("/docs")], paths
    assert client.get(docs_assets.SCALAR_CSS).status_code == 200  # no Authorization header
    # and nothing beside the assets directory is reachable through it
    for escape in ("/docs/assets/%2e%2e/docs_assets.py", "/docs/assets/..%2fdocs_assets.py", "/docs/assets/"):
        assert client.get(escape).status_code == 404, escape

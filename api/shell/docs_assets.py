"""The interactive reference (/docs: Scalar, /docs/swagger: Swagger UI) from files in
this package, so it renders where there is no internet: Litestar's plugins load them
from CDNs by default (Scalar at @latest, Litestar's favicon and Scalar stylesheet from
its repository, and Scalar then fetches its fonts from fonts.scalar.com).

The bundles are pinned and vendored by scripts/vendor-docs-assets.sh into static/,
one directory per package and version (static/README.md says which and how to refresh
them). As every path names its version, they are served with a year-long, immutable
Cache-Control; our own two files sit in `ontime-<n>/`: bump n when changing them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from litestar import Router
from litestar.datastructures import CacheControlHeader
from litestar.exceptions import ImproperlyConfiguredException
from litestar.openapi.plugins import OpenAPIRenderPlugin, ScalarRenderPlugin, SwaggerRenderPlugin
from litestar.static_files import create_static_files_router

STATIC_DIR = Path(__file__).parent / "static"
ASSETS_PATH = "/docs/assets"  # under OpenAPIConfig(path="/docs")

SCALAR_VERSION = "1.76.0"  # npm @scalar/api-reference, dist/browser/standalone.js
SWAGGER_UI_VERSION = "5.35.0"  # npm swagger-ui-dist
OWN = "ontime-1"

SCALAR_JS = f"{ASSETS_PATH}/scalar-api-reference-{SCALAR_VERSION}/standalone.js"
SCALAR_CSS = f"{ASSETS_PATH}/{OWN}/scalar.css"
SWAGGER_DIR = f"{ASSETS_PATH}/swagger-ui-dist-{SWAGGER_UI_VERSION}"
FAVICON = f"<link rel='icon' type='image/svg+xml' href='{ASSETS_PATH}/{OWN}/favicon.svg'>"

# Scalar's options that would reach another host on their own: its web fonts (at load),
# telemetry, and, when the page is on localhost, the AI agent and the developer tools
# (chat, share and register buttons that call api.scalar.com and dashboard.scalar.com);
# and its "Open API Client" button, a link to client.scalar.com carrying our document's URL
SCALAR_OPTIONS: dict[str, Any] = {
    "withDefaultFonts": False,
    "telemetry": False,
    "agent": {"disabled": True},
    "mcp": {"disabled": True},
    "showDeveloperTools": "never",
    "hideClientButton": True,
}

YEAR = 365 * 24 * 3600


def assets_router(path: str = ASSETS_PATH) -> Router:
    """GET/HEAD {path}/<file> from static/: no key needed (no guard), not in the OpenAPI document."""
    return create_static_files_router(
        path=path,
        directories=[STATIC_DIR],
        name="docs-assets",
        cache_control=CacheControlHeader(max_age=YEAR, public=True, immutable=True),
        include_in_schema=False,
    )


class _ServesAssets(OpenAPIRenderPlugin):
    def receive_router(self, router: Router) -> None:
        """Register the assets on the OpenAPI router (once, whichever of the plugins comes first)."""
        super().receive_router(router)
        if not ASSETS_PATH.startswith(router.path.rstrip("/") + "/"):
            raise ImproperlyConfiguredException(
                f"the docs' assets are served at {ASSETS_PATH}, not under {router.path}"
            )
        if not any(route.path.startswith(ASSETS_PATH + "/") for route in router.routes):
            router.register(assets_router(ASSETS_PATH.removeprefix(router.path.rstrip("/"))))


class OfflineScalarRenderPlugin(_ServesAssets, ScalarRenderPlugin):
    pass


class OfflineSwaggerRenderPlugin(_ServesAssets, SwaggerRenderPlugin):
    pass


def render_plugins() -> list[OpenAPIRenderPlugin]:
    """Scalar at /docs (the default) and Swagger UI at /docs/swagger, loading nothing from another host."""
    return [
        OfflineScalarRenderPlugin(js_url=SCALAR_JS, css_url=SCALAR_CSS, options=SCALAR_OPTIONS, favicon=FAVICON),
        OfflineSwaggerRenderPlugin(
            js_url=f"{SWAGGER_DIR}/swagger-ui-bundle.js",
            css_url=f"{SWAGGER_DIR}/swagger-ui.css",
            standalone_preset_js_url=f"{SWAGGER_DIR}/swagger-ui-standalone-preset.js",
            path="/swagger",
            favicon=FAVICON,
        ),
    ]

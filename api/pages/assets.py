"""The pages' own files (CSS, JS) from this package: the file names carry a
version (bump it on a change), so they are cached for a year."""

from __future__ import annotations

from pathlib import Path

from litestar import Router
from litestar.datastructures import CacheControlHeader
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig

from api.pages import words

HERE = Path(__file__).parent


def static_router() -> Router:
    return create_static_files_router(
        path="/pages/static",
        directories=[HERE / "static"],
        name="pages-static",
        cache_control=CacheControlHeader(max_age=365 * 24 * 3600, public=True, immutable=True),
        include_in_schema=False,
    )


def templates() -> TemplateConfig[JinjaTemplateEngine]:
    """Jinja2, autoescaping every template (their names end in .html.j2)."""

    def autoescape(engine: JinjaTemplateEngine) -> None:
        engine.engine.autoescape = True
        engine.engine.filters["said"] = words.desk_word
        engine.engine.filters["case_word"] = words.case_word

    return TemplateConfig(directory=HERE / "templates", engine=JinjaTemplateEngine, engine_callback=autoescape)

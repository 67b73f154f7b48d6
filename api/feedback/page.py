"""/f/{token}: the page a recipient opens from the feedback link, in English or
Spanish (from Accept-Language). Plain HTML and a form that posts back to the
same address: no script, nothing from another host, usable with a keyboard and
a screen reader. The API (/v1/feedback/{token}) does the work; this renders it.
"""

from __future__ import annotations

import html
from datetime import datetime
from typing import Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath

from api.feedback import service
from api.shell.clock import utcnow
from api.shell.database import Pool
from api.shell.errors import Problem
from api.shipments.routes import feedback_links
from domain.feedback import COMMENT_MAX, GiveFeedback

TEXT: dict[str, dict[str, str]] = {
    "en": {
        "title": "How was your delivery?",
        "intro": "Your parcel from {shipper}, carried by {carrier}, was delivered on {day}.",
        "legend": "Your rating",
        "r1": "1 – Very poor",
        "r2": "2 – Poor",
        "r3": "3 – Fair",
        "r4": "4 – Good",
        "r5": "5 – Excellent",
        "comment": "Anything you would like to tell us? (optional, up to {max} characters)",
        "send": "Send my rating",
        "thanks": "Thank you. Your rating has been received.",
        "answered": "This delivery has already been rated. Thank you.",
        "expired": "This link has expired: ratings are taken for 30 days after the delivery.",
        "unknown": "We could not find this link. Please check that the whole link was copied.",
        "busy": "Too many attempts just now. Please try again in a minute.",
        "pick": "Please choose a rating from 1 to 5.",
        "long": "Please keep the comment to {max} characters.",
        "unavailable": "We cannot take your rating just now. Please try again in a moment.",
    },
    "es": {
        "title": "¿Qué tal fue la entrega?",
        "intro": "Su paquete de {shipper}, transportado por {carrier}, se entregó el {day}.",
        "legend": "Su valoración",
        "r1": "1 – Muy mala",
        "r2": "2 – Mala",
        "r3": "3 – Regular",
        "r4": "4 – Buena",
        "r5": "5 – Excelente",
        "comment": "¿Quiere contarnos algo? (opcional, hasta {max} caracteres)",
        "send": "Enviar mi valoración",
        "thanks": "Gracias. Hemos recibido su valoración.",
        "answered": "Esta entrega ya ha sido valorada. Gracias.",
        "expired": "Este enlace ha caducado: las valoraciones se aceptan durante 30 días tras la entrega.",
        "unknown": "No encontramos este enlace. Compruebe que lo ha copiado entero.",
        "busy": "Demasiados intentos. Vuelva a intentarlo en un minuto.",
        "pick": "Elija una valoración del 1 al 5.",
        "long": "El comentario puede tener como máximo {max} caracteres.",
        "unavailable": "Ahora no podemos recoger su valoración. Inténtelo de nuevo en un momento.",
    },
}

STYLE = """
body{font-family:system-ui,sans-serif;max-width:34rem;margin:2rem auto;padding:0 1rem;color:#1a1a1a;line-height:1.5}
h1{font-size:1.5rem}fieldset{border:1px solid #888;border-radius:.5rem;padding:.75rem 1rem}
label{display:block;margin:.35rem 0}textarea{width:100%;min-height:6rem;font:inherit}
button{font:inherit;padding:.6rem 1.2rem;margin-top:1rem;border-radius:.4rem;border:2px solid #1a4d8f;
background:#1a4d8f;color:#fff;cursor:pointer}button:focus,input:focus,textarea:focus{outline:3px solid #f0a500}
.note{padding:.75rem 1rem;border-left:4px solid #1a4d8f;background:#eef3fa}
.error{padding:.75rem 1rem;border-left:4px solid #b00020;background:#fdecee}
"""


def language(accept_language: str | None) -> str:
    """'es' or 'en': the first of the two the Accept-Language header prefers (by q, then order)."""
    best, best_q = "en", 0.0
    for position, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        primary = tag.strip().lower().split("-")[0]
        if primary not in TEXT:
            continue
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                continue
        if q > best_q or (q == best_q and position == 0):
            best, best_q = primary, q
    return best


def _day(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d")


def _page(lang: str, body: str, status: int) -> Response[str]:
    t = TEXT[lang]
    document = (
        f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        '<meta name="robots" content="noindex">'
        f"<title>{html.escape(t['title'])}</title><style>{STYLE}</style></head>"
        f"<body><main><h1>{html.escape(t['title'])}</h1>{body}</main></body></html>"
    )
    return Response(
        document,
        status_code=status,
        media_type="text/html; charset=utf-8",
        headers={
            "Cache-Control": "no-store",
            "Referrer-Policy": "no-referrer",  # the link is the credential: never leak it onward
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
        },
    )


def _note(lang: str, key: str, status: int, css: str = "note") -> Response[str]:
    return _page(lang, f'<p class="{css}" role="status">{html.escape(TEXT[lang][key])}</p>', status)


def _form(lang: str, view: service.LinkView, error: str | None, comment: str, status: int) -> Response[str]:
    t = TEXT[lang]
    intro = t["intro"].format(
        shipper=html.escape(view.shipper), carrier=html.escape(view.carrier.upper()), day=_day(view.delivered_at)
    )
    alert = f'<p class="error" role="alert" id="error">{html.escape(error)}</p>' if error else ""
    described = ' aria-describedby="error"' if error else ""
    choices = "".join(
        f'<label><input type="radio" name="rating" value="{n}" required> {html.escape(t[f"r{n}"])}</label>'
        for n in range(5, 0, -1)
    )
    body = (
        f"<p>{intro}</p>{alert}"
        f'<form method="post"><fieldset{described}><legend>{html.escape(t["legend"])}</legend>{choices}</fieldset>'
        f'<label for="comment">{html.escape(t["comment"].format(max=COMMENT_MAX))}</label>'
        f'<textarea id="comment" name="comment" maxlength="{COMMENT_MAX}">{html.escape(comment)}</textarea>'
        f'<button type="submit">{html.escape(t["send"])}</button></form>'
    )
    return _page(lang, body, status)


def _refused(lang: str, problem: Problem) -> Response[str]:
    match problem.status:
        case 404:
            return _note(lang, "unknown", 404, "error")
        case 409:
            return _note(lang, "answered", 409)
        case 410:
            return _note(lang, "expired", 410, "error")
    raise problem


class FeedbackPage(Controller):
    """Served beside the API under the same rate limits (per address, per link)."""

    path = "/f"
    include_in_schema = False

    @get("/{token:str}")
    async def show(
        self, request: Request[Any, Any, Any], pool: NamedDependency[Pool], token: FromPath[str]
    ) -> Response[str]:
        lang = language(request.headers.get("accept-language"))
        try:
            view = await service.view(pool, feedback_links(request), token, utcnow())
        except Problem as problem:
            return _refused(lang, problem)
        if view.answered:
            return _note(lang, "answered", 200)
        return _form(lang, view, None, "", 200)

    @post("/{token:str}", status_code=200)
    async def rate(
        self, request: Request[Any, Any, Any], pool: NamedDependency[Pool], token: FromPath[str]
    ) -> Response[str]:
        lang = language(request.headers.get("accept-language"))
        form = await request.form()
        rating, comment = str(form.get("rating", "")), str(form.get("comment", ""))
        links, now = feedback_links(request), utcnow()
        try:
            command = msgspec.convert(
                {"rating": int(rating) if rating.isdigit() else 0, "comment": comment or None},
                GiveFeedback,
            )
        except msgspec.ValidationError as exc:
            try:
                view = await service.view(pool, links, token, now)
            except Problem as problem:
                return _refused(lang, problem)
            key = "long" if "comment" in str(exc) else "pick"
            return _form(lang, view, TEXT[lang][key].format(max=COMMENT_MAX), comment[:COMMENT_MAX], 400)
        try:
            await service.give(pool, links, token, command, now)
        except Problem as problem:
            return _refused(lang, problem)
        return _note(lang, "thanks", 200)

"""The pages say every status and reason in each language, and a link made for
one purpose never opens another."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from api.feedback.page import language
from api.pages import words
from api.pages.tracking import when
from domain.feedback import FEEDBACK, TRACKING, LinkKeys, LinkRefused
from domain.status import Reason, Status


@pytest.mark.parametrize("lang", words.LANGUAGES)
def test_every_status_and_reason_is_translated(lang: str):
    assert set(words.STATUS[lang]) == set(Status)
    assert set(words.REASON[lang]) == set(Reason)
    assert set(words.TEXT[lang]) == set(words.TEXT["en"])
    assert all(text.strip() for text in [*words.STATUS[lang].values(), *words.REASON[lang].values()])


def test_the_two_languages_say_different_things():
    assert words.STATUS["es"][Status.DELIVERED] != words.STATUS["en"][Status.DELIVERED]


@pytest.mark.parametrize(
    ("header", "lang"),
    [
        (None, "en"),
        ("es-ES,es;q=0.9,en;q=0.8", "es"),
        ("fr-FR, es;q=0.8, en;q=0.5", "es"),
        ("en-GB, es;q=0.5", "en"),
        ("es;q=0.2, en;q=0.9", "en"),
        ("de-DE", "en"),
        ("es;q=bad", "en"),
    ],
)
def test_the_language_is_the_first_of_ours_the_browser_prefers(header: str | None, lang: str):
    assert language(header) == lang


def test_an_instant_reads_in_words_in_each_language():
    moment = datetime(2026, 11, 27, 18, 0, tzinfo=UTC)
    assert when(moment, "en") == "Friday 27 November, 18:00 UTC"
    assert when(moment, "es") == "viernes 27 de noviembre, 18:00 UTC"


def test_a_token_made_for_one_purpose_opens_no_other():
    keys = LinkKeys(keys={1: b"k" * 32}, current=1)
    until = datetime.now(UTC) + timedelta(days=1)
    tracking = keys.sign_for(TRACKING, "shp_1", until)
    assert keys.verify_for(TRACKING, tracking, datetime.now(UTC)).shipment_id == "shp_1"
    with pytest.raises(LinkRefused):
        keys.verify_for(FEEDBACK, tracking, datetime.now(UTC))

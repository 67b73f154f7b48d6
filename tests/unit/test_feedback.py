"""Feedback links and ratings: a link verifies only as signed, only until it
expires, under any key still known; every rating 1-5 is classified once."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.feedback import (
    VALID_FOR,
    GiveFeedback,
    LinkExpired,
    LinkKeys,
    LinkRefused,
    expires_at,
    is_low,
    is_satisfied,
)

KEY_A = b"a" * 32
KEY_B = bytes(range(32, 64))
KEYS = LinkKeys(keys={1: KEY_A}, current=1)
DELIVERED = datetime(2026, 11, 20, 15, 30, 12, 345678, tzinfo=UTC)

ids = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=16).filter(
    lambda s: len(s.encode()) <= 64
)
instants = st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC))


@given(ids, instants)
def test_a_link_names_its_shipment_and_expires_thirty_days_after_the_delivery(shipment_id: str, delivered: datetime):
    token = KEYS.sign(shipment_id, delivered)
    link = KEYS.verify(token, delivered)
    assert link.shipment_id == shipment_id
    assert link.expires_at == (delivered + VALID_FOR).replace(microsecond=0)
    assert token == KEYS.sign(shipment_id, delivered)  # the same delivery, the same link


@given(ids, instants, st.integers(min_value=0), st.integers(min_value=0, max_value=7))
def test_any_flipped_bit_is_refused(shipment_id: str, delivered: datetime, at: int, bit: int):
    raw = bytearray(base64.urlsafe_b64decode(_padded(KEYS.sign(shipment_id, delivered))))
    raw[at % len(raw)] ^= 1 << bit
    with pytest.raises(LinkRefused):
        KEYS.verify(base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode(), delivered)


@given(st.text(max_size=300))
def test_any_string_is_refused_or_verified_never_an_error(token: str):
    with pytest.raises(LinkRefused):
        KEYS.verify(token, DELIVERED)


def test_a_link_is_valid_until_the_second_it_expires():
    token = KEYS.sign("shp_1", DELIVERED)
    expiry = expires_at(DELIVERED)
    assert KEYS.verify(token, expiry - timedelta(microseconds=1)).shipment_id == "shp_1"
    with pytest.raises(LinkExpired) as refused:
        KEYS.verify(token, expiry)
    assert refused.value.shipment_id == "shp_1" and refused.value.expired_at == expiry


def test_after_a_rotation_old_links_still_verify_and_new_ones_use_the_new_key():
    old = KEYS.sign("shp_1", DELIVERED)
    rotated = LinkKeys(keys={1: KEY_A, 2: KEY_B}, current=2)
    new = rotated.sign("shp_1", DELIVERED)
    assert new != old
    assert rotated.verify(old, DELIVERED).shipment_id == "shp_1"
    with pytest.raises(LinkRefused):
        KEYS.verify(new, DELIVERED)  # a process that never heard of key 2
    with pytest.raises(LinkRefused):
        LinkKeys(keys={2: KEY_B}, current=2).verify(old, DELIVERED)  # key 1 retired


def test_another_key_under_the_same_kid_does_not_verify():
    with pytest.raises(LinkRefused):
        LinkKeys(keys={1: KEY_B}, current=1).verify(KEYS.sign("shp_1", DELIVERED), DELIVERED)


def test_keys_too_short_or_a_missing_current_key_are_refused():
    with pytest.raises(ValueError):
        LinkKeys(keys={1: b"short"}, current=1)
    with pytest.raises(ValueError):
        LinkKeys(keys={1: KEY_A}, current=2)


def test_each_rating_is_low_satisfied_or_neither():
    assert [r for r in range(1, 6) if is_low(r)] == [1, 2]
    assert [r for r in range(1, 6) if is_satisfied(r)] == [4, 5]
    assert not is_low(3) and not is_satisfied(3)


@pytest.mark.parametrize("rating", [1, 2, 3, 4, 5])
def test_every_rating_from_one_to_five_is_taken(rating: int):
    assert msgspec.json.decode(f'{{"rating": {rating}}}', type=GiveFeedback).rating == rating


@pytest.mark.parametrize("body", ['{"rating": 0}', '{"rating": 6}', '{"rating": true}', '{"rating": 3, "x": 1}'])
def test_a_rating_out_of_range_or_an_unknown_field_is_refused(body: str):
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(body, type=GiveFeedback)


def test_a_blank_comment_is_no_comment():
    assert msgspec.json.decode('{"rating": 4, "comment": "  \\n "}', type=GiveFeedback).comment is None


def _padded(token: str) -> str:
    return token + "=" * (-len(token) % 4)

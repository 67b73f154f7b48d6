"""Instants a shipping business can mean: 1970-01-01T00:00:00Z (inclusive) to 2200-01-01T00:00:00Z (exclusive)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.errors import InvalidField
from domain.shipment import (
    EARLIEST_INSTANT,
    END_OF_INSTANTS,
    INSTANT_PATTERN,
    CreateShipment,
    RecordCarrierEvent,
    RecordEvent,
    RevisePromise,
    utc,
)

MICROSECOND = timedelta(microseconds=1)
LAST_INSTANT = END_OF_INSTANTS - MICROSECOND

CREATE = {"carrier": "dhl", "tracking_number": "JD014600", "promised_by": "2026-11-22T18:00:00+01:00"}
EVENT = {"status": "in_transit", "occurred_at": "2026-11-20T09:12:00+01:00"}
CARRIER_EVENT = {**EVENT, "carrier": "dhl", "tracking_number": "X1"}
REVISE = {"promised_by": "2026-11-23T18:00:00+01:00", "reason": "customs"}

# every instant field of every command, with a body that is valid around it
INSTANT_FIELDS = [
    pytest.param(CreateShipment, CREATE, "promised_by", id="create.promised_by"),
    # promised_from must not be after promised_by: give the window room on both sides
    pytest.param(
        CreateShipment,
        {**CREATE, "promised_by": "2199-12-31T23:59:59.999999Z"},
        "promised_from",
        id="create.promised_from",
    ),
    pytest.param(RecordEvent, EVENT, "occurred_at", id="event.occurred_at"),
    pytest.param(RecordEvent, EVENT, "estimated_delivery", id="event.estimated_delivery"),
    pytest.param(RecordCarrierEvent, CARRIER_EVENT, "occurred_at", id="carrier_event.occurred_at"),
    pytest.param(RecordCarrierEvent, CARRIER_EVENT, "estimated_delivery", id="carrier_event.estimated_delivery"),
    pytest.param(RevisePromise, REVISE, "promised_by", id="revise.promised_by"),
    pytest.param(
        RevisePromise,
        {**REVISE, "promised_by": "2199-12-31T23:59:59.999999Z"},
        "promised_from",
        id="revise.promised_from",
    ),
]

offsets = st.integers(min_value=-(24 * 60 - 1), max_value=24 * 60 - 1).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)


def in_range() -> st.SearchStrategy[datetime]:
    return st.datetimes(
        min_value=EARLIEST_INSTANT.replace(tzinfo=None),
        max_value=LAST_INSTANT.replace(tzinfo=None),
        timezones=st.just(UTC),
    )


def out_of_range() -> st.SearchStrategy[datetime]:
    before = st.datetimes(
        min_value=datetime(1, 1, 2),
        max_value=(EARLIEST_INSTANT - MICROSECOND).replace(tzinfo=None),
        timezones=st.just(UTC),
    )
    after = st.datetimes(
        min_value=END_OF_INSTANTS.replace(tzinfo=None), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
    )
    return before | after


def written(moment: datetime, offset: timezone) -> str:
    """The instant as a sender might write it: RFC 3339 in some offset of its choosing."""
    return moment.astimezone(offset).isoformat()


def decode(command: type, body: dict[str, Any]) -> Any:
    return msgspec.json.decode(msgspec.json.encode(body), type=command)


@pytest.mark.parametrize(("command", "body", "field"), INSTANT_FIELDS)
@given(moment=in_range(), offset=offsets)
def test_any_instant_in_range_is_accepted_in_any_offset_as_the_same_instant_in_utc(
    command: type, body: dict[str, Any], field: str, moment: datetime, offset: timezone
) -> None:
    decoded = decode(command, {**body, field: written(moment, offset)})
    assert getattr(decoded, field) == moment
    assert getattr(decoded, field).tzinfo is UTC


@pytest.mark.parametrize(("command", "body", "field"), INSTANT_FIELDS)
@given(moment=out_of_range(), offset=offsets)
def test_any_instant_out_of_range_is_refused_naming_its_field(
    command: type, body: dict[str, Any], field: str, moment: datetime, offset: timezone
) -> None:
    with pytest.raises(msgspec.ValidationError) as refused:
        decode(command, {**body, field: written(moment, offset)})
    assert isinstance(refused.value.__cause__, InvalidField)
    assert refused.value.__cause__.field == field
    assert "1970-01-01T00:00:00Z" in refused.value.__cause__.message


@pytest.mark.parametrize(
    "text",
    [
        "0001-01-01T00:00:00Z",
        "0001-01-01T00:00:00+01:00",  # before year 1 in UTC: not even a datetime
        "9999-12-31T23:30:00-01:00",  # after year 9999 in UTC
        "1969-12-31T23:59:59.999999Z",
        "1970-01-01T00:59:59+01:00",
        "2200-01-01T00:00:00Z",
        "2199-12-31T23:00:00-01:00",
    ],
)
def test_the_edges_and_the_extremes_are_refused_naming_the_field(text: str) -> None:
    with pytest.raises(msgspec.ValidationError) as refused:
        decode(CreateShipment, {**CREATE, "promised_by": text})
    assert isinstance(refused.value.__cause__, InvalidField)
    assert refused.value.__cause__.field == "promised_by"


@pytest.mark.parametrize(
    "text",
    ["1970-01-01T00:00:00Z", "1970-01-01T01:00:00+01:00", "2199-12-31T23:59:59.999999Z", "2200-01-01T00:59:59+01:00"],
)
def test_the_first_and_the_last_instant_are_accepted_in_any_offset(text: str) -> None:
    assert EARLIEST_INSTANT <= decode(CreateShipment, {**CREATE, "promised_by": text}).promised_by < END_OF_INSTANTS


@given(moment=in_range() | out_of_range())
def test_utc_keeps_exactly_the_instants_in_range(moment: datetime) -> None:
    if EARLIEST_INSTANT <= moment < END_OF_INSTANTS:
        assert utc(moment, "at") == moment
    else:
        with pytest.raises(InvalidField):
            utc(moment, "at")


# -- the pattern the OpenAPI document states for every instant ----------------------

PATTERN = re.compile(INSTANT_PATTERN)


@given(moment=in_range())
def test_every_instant_in_range_written_in_utc_matches_the_pattern(moment: datetime) -> None:
    assert PATTERN.match(moment.isoformat().replace("+00:00", "Z"))
    assert PATTERN.match(moment.isoformat())


@given(text=st.from_regex(PATTERN, fullmatch=True))
def test_every_string_the_pattern_matches_is_refused_only_when_it_is_no_date(text: str) -> None:
    """A client generated from the document never sends an instant the server refuses."""
    try:
        moment = msgspec.json.decode(msgspec.json.encode(text), type=datetime)
    except msgspec.ValidationError:
        return  # 02-31 and the like: not a date-time, as the format says
    assert EARLIEST_INSTANT <= moment.astimezone(UTC) < END_OF_INSTANTS


@given(moment=out_of_range(), offset=offsets)
def test_no_instant_out_of_range_matches_the_pattern(moment: datetime, offset: timezone) -> None:
    assert not PATTERN.match(written(moment, offset))


def schema_nodes(node: Any) -> list[dict[str, Any]]:
    if isinstance(node, dict):
        return [node, *(n for value in node.values() for n in schema_nodes(value))]
    if isinstance(node, list):
        return [n for value in node for n in schema_nodes(value)]
    return []


@pytest.mark.parametrize("command", [CreateShipment, RecordEvent, RecordCarrierEvent, RevisePromise])
def test_every_instant_field_of_every_command_states_the_range_in_its_schema(command: type) -> None:
    instants = [node for node in schema_nodes(msgspec.json.schema(command)) if node.get("format") == "date-time"]
    assert instants
    for node in instants:
        assert node["pattern"] == INSTANT_PATTERN
        assert "1970-01-01T00:00:00Z" in node["description"]

"""The board's on-time chart: a day whose deliveries were all late is not drawn
like a day without deliveries."""

from __future__ import annotations

from datetime import date

from api.pages.chart import Day, svg


def test_a_day_with_every_delivery_late_reads_zero_and_a_day_without_deliveries_says_so():
    drawn = svg([Day(date(2026, 11, 30), 0, 0), Day(date(2026, 12, 1), 4, 0), Day(date(2026, 12, 2), 4, 3)], "chart")
    assert "30 Nov: no deliveries" in drawn
    assert "01 Dec: 0% on time (0 of 4)" in drawn and ">0</text>" in drawn
    assert "02 Dec: 75% on time (3 of 4)" in drawn and ">75</text>" in drawn
    assert drawn.count("<text") == 4 + 2  # 100%, 0% and the first and last day; a share per day with deliveries

"""The board's 30-day on-time chart, drawn on the server as SVG: a bar a day,
its height the day's on-time share, the share written above it (so a day with
every delivery late reads "0", not as a day without deliveries), the figures in
each bar's title (and a table beside it for screen readers). No chart library,
nothing from a CDN."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from html import escape


@dataclass(frozen=True)
class Day:
    day: date
    delivered: int
    on_time: int

    @property
    def rate(self) -> float | None:
        return self.on_time / self.delivered if self.delivered else None


WIDTH, HEIGHT, PAD = 620, 180, 28


def svg(days: list[Day], label: str) -> str:
    step = (WIDTH - 2 * PAD) / max(1, len(days))
    bars = []
    for n, d in enumerate(days):
        x = PAD + n * step
        if d.rate is None:
            bars.append(
                f'<rect x="{x + 1:.1f}" y="{HEIGHT - PAD - 2}" width="{step - 2:.1f}" height="2" fill="#c8c8c8">'
                f"<title>{d.day:%d %b}: no deliveries</title></rect>"
            )
            continue
        h = (HEIGHT - 2 * PAD) * d.rate
        bars.append(
            f'<rect x="{x + 1:.1f}" y="{HEIGHT - PAD - h:.1f}" width="{step - 2:.1f}" height="{h:.1f}" fill="#1a4d8f">'
            f"<title>{d.day:%d %b}: {100 * d.rate:.0f}% on time ({d.on_time} of {d.delivered})</title></rect>"
            f'<text x="{x + step / 2:.1f}" y="{HEIGHT - PAD - h - 3:.1f}" font-size="9" text-anchor="middle" '
            f'aria-hidden="true">{100 * d.rate:.0f}</text>'
        )
    first, last = (days[0].day, days[-1].day) if days else (None, None)
    axis = (
        f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}" stroke="#555"/>'
        f'<line x1="{PAD}" y1="{PAD}" x2="{PAD}" y2="{HEIGHT - PAD}" stroke="#555"/>'
        f'<text x="2" y="{PAD + 4}" font-size="11">100%</text><text x="8" y="{HEIGHT - PAD}" font-size="11">0%</text>'
    )
    if first and last:
        axis += (
            f'<text x="{PAD}" y="{HEIGHT - 8}" font-size="11">{first:%d %b}</text>'
            f'<text x="{WIDTH - PAD - 40}" y="{HEIGHT - 8}" font-size="11">{last:%d %b}</text>'
        )
    return (
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" role="img" '
        f'aria-label="{escape(label)}">{axis}{"".join(bars)}</svg>'
    )

"""Charts drawn on the server: every bucket of the range is drawn, values are escaped, stacks add up, lines
break where there is nothing, and the numbers are also in a table and the chart's accessible name."""

from __future__ import annotations

import re

from switchboard_facade.ui.charts import HEIGHT, TOP, Chart, Series, render, scale

HOSTILE = "<script>alert(1)</script>"


def chart(kind: str, series: list[Series], buckets: int = 4) -> Chart:
    names = [f"bucket {i}" for i in range(buckets)]
    return Chart("Spend", names, [f"t{i}" for i in range(buckets)], series, kind, lambda v: f"{v:g}",
                 lambda v: f"{v:g}", ident="c")


def test_axis_steps_are_round_and_cover_the_peak() -> None:
    assert scale(0) == (1.0, [0.0, 0.5, 1.0])
    top, ticks = scale(7.3)
    assert top == 8 and ticks == [0, 2, 4, 6, 8]
    top, ticks = scale(0.0071)
    assert top >= 0.0071 and len(ticks) <= 5 and ticks[1] == 0.002


def test_stacked_bars_add_up_and_every_value_is_escaped() -> None:
    html = render(chart("bars", [Series(HOSTILE, [1, 0, 2, 4], 0), Series("b", [1, 0, 0, 4], 1)]))
    assert HOSTILE not in html and "&lt;script&gt;" in html
    rects = re.findall(r'<rect x="([\d.]+)%" width="([\d.]+)%" y="([\d.]+)" height="([\d.]+)"/>', html)
    assert len(rects) == 5, "a bar segment for every non-zero value"
    last = [r for r in rects if abs(float(r[0]) - 75 - 4.5) < 0.01]
    assert sum(float(r[3]) for r in last) == HEIGHT - TOP, "the highest stack reaches the top of the axis"
    assert html.count('class="hit"') == 4
    assert "<title>bucket 3\n&lt;script&gt;alert(1)&lt;/script&gt;: 4\nb: 4</title>" in str(html)
    assert 'role="img"' in html and 'aria-label="Spend: total 12; highest 8 (bucket 3)"' in html
    assert html.count("<tr>") == 5, "a table row per bucket, and the head"


def test_lines_break_where_a_bucket_has_no_value() -> None:
    html = render(chart("lines", [Series("p50", [10, None, 30, 40], 0)]))
    assert html.count("<line x1=") == 1, "only the two adjacent points 30 and 40 are joined"
    assert html.count("<circle") == 3


def test_an_empty_range_says_so() -> None:
    html = render(chart("bars", [Series("a", [0, 0, 0, 0])]))
    assert "Nothing in this range." in html and "<rect x=" not in html

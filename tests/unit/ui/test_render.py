"""Templates: every value is escaped, and the Usage page works without the chart library."""

from __future__ import annotations

from switchboard_facade.ui.render import templates
from switchboard_facade.ui.session import Session

HOSTILE = "<script>alert(1)</script>"


def _session(is_admin: bool = True) -> Session:
    return Session("sk-x", is_admin, "key_x", HOSTILE, 0.0, csrf_token="tok")


def _usage_html(chart: bool) -> str:
    day = {"group": "2026-11-22", "requests": 1, "total_tokens": 3, "spend": "0.000010"}
    return templates().get_template("usage.html").render(
        session=_session(), path="/ui/usage", chart=chart, error="", log_limit=200,
        groups={"day": [day], "key": [{**day, "group": "key_x", "label": HOSTILE}], "model": [], "team": []},
        rows=[], total={"requests": 1, "successful_requests": 1, "prompt_tokens": 1, "completion_tokens": 2,
                        "cost_micros": 10},
        chosen={"from": "", "to": "", "key_id": HOSTILE, "model": "", "team_id": ""}, export_query="",
        chart_data={"days": [HOSTILE], "spend": ["0.000010"], "requests": [1]},
        key_choices=[("key_x", HOSTILE)], model_choices=[HOSTILE])


def test_values_are_escaped_everywhere() -> None:
    html = _usage_html(chart=True)
    assert HOSTILE not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "</script><script>" not in html.split('id="usage-data">')[1].split("</script>")[0]


def test_usage_page_without_chart_library_shows_the_table() -> None:
    html = _usage_html(chart=False)
    assert "chart.umd.js" not in html and "usage-chart" not in html
    assert 'class="data " id="per-day"' in html and "2026-11-22" in html
    with_chart = _usage_html(chart=True)
    assert "/ui/static/vendor/chart.umd.js" in with_chart and 'id="usage-chart"' in with_chart

"""Page pieces on their own: value formatting, examples, evaluation estimates, history pages,
and a site built from a PostgreSQL store."""

from __future__ import annotations

import datetime as dt

import pytest

from monitors.site.queries import MetricPoint


def test_values_are_written_for_people_not_as_python_reprs():
    from monitors.site.pages import format_value

    assert format_value([0, None]) == "≥ 0"  # not "outside [0, None]"
    assert format_value([None, 5.0]) == "≤ 5"
    assert format_value([480.0, 720.0]) == "480 – 720"
    assert format_value(0.123456) == "0.1235" and format_value(12000) == "12,000"
    assert format_value({"a": 1}) == '{"a": 1}' and format_value(None) == ""
    assert format_value(True) == "yes"


def test_examples_become_a_table_of_records_or_a_list_of_values():
    from monitors.site.pages import examples_view

    records = examples_view([{"imp_key": "k1", "online": -9.0}, {"imp_key": "k2", "x": None}])
    assert records.columns == ["imp_key", "online", "x"]
    assert records.rows == [["k1", "-9", ""], ["k2", "", ""]]
    values = examples_view(["<redacted>", None, 3], limit=2)
    assert values.values == ["<redacted>", ""] and values.more == 1 and not values.columns
    assert examples_view(None) is None and examples_view([]) is None


def _points(rows):
    return [MetricPoint("m", "evaluate", "2026-09-21", name, None, task, "offline", segment, v)
            for name, task, segment, v in rows]


def test_evaluation_section_shows_intervals_champion_and_the_oracle_gap():
    from monitors.site.evaluation import estimates, evaluation_section

    points = _points([
        ("auc", "click", None, 0.70), ("auc_low", "click", None, 0.68),
        ("auc_high", "click", None, 0.72), ("oracle_auc", "click", None, 0.75),
        ("oracle_auc_low", "click", None, 0.74), ("oracle_auc_high", "click", None, 0.76),
        ("champion_auc", "click", None, 0.69), ("pr_auc", "click", None, 0.3),
        ("auc", "click", "device=android", 0.61), ("calibration_ratio", "click", None, 1.02),
        ("calibration_ratio_low", "click", None, 0.98),
        ("calibration_ratio_high", "click", None, 1.06)])
    est = estimates(points)
    assert est[("click", "overall", "oracle", "auc")].high == 0.76
    assert est[("click", "overall", "model", "pr_auc")].value == 0.3  # pr_auc is not "pr" + auc
    html = evaluation_section(points)
    assert "<th>oracle gap (AUC)</th>" in html and "<td>0.05</td>" in html
    assert "<th>champion AUC</th>" in html and "<td>0.69</td>" in html
    assert "<td>0.7 (0.68–0.72)</td>" in html and "device=android" in html
    assert 'id="eval-0-auc"' in html and 'id="eval-0-cal"' in html
    assert evaluation_section(_points([])) is None


def test_older_partitions_go_to_monthly_history_pages(filled_store, tmp_path):
    import re

    from monitors.site import build_site

    out = tmp_path / "site"
    build_site(filled_store.url, out, index_partitions=1)
    index = (out / "index.html").read_text()
    assert re.findall(r'data-partition="([^"]+)"', index) == [filled_store.market.as_of.isoformat()]
    assert 'href="history/2026-09.html"' in index
    history = (out / "history" / "2026-09.html").read_text()
    older = re.findall(r'data-partition="([^"]+)"', history)
    last = filled_store.market.last
    assert older == [last.isoformat(), (last - dt.timedelta(days=1)).isoformat()]
    assert f'href="../runs/{filled_store.runs["validate_online"]}.html"' in history


@pytest.mark.postgres
def test_site_from_a_postgresql_store(pg_schema_url, marketplace_faulted, tmp_path):
    import re

    from funnelguard.cli import run
    from monitors.site import build_site

    m = marketplace_faulted
    code, _ = run(["validate", "--date", m.last.isoformat(), "--env", "online",
                   "--project", str(m.project_path), "--store", pg_schema_url])
    assert code == 1
    out = tmp_path / "site"
    report = build_site(pg_schema_url, out)
    assert report.runs == report.run_pages_written == 1
    page = next((out / "runs").glob("*.html")).read_text()
    assert "quoted_apr" in page and "pricing" in page and "<td>0.2367</td>" in page
    assert re.search(r'data-run="\d+" data-state="fail"', (out / "index.html").read_text())
    assert build_site(pg_schema_url, out).run_pages_written == 0

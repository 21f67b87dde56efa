"""The static site built from a store of real runs: index, run pages, PII, incremental builds."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
import sqlalchemy as sa

MAX_PAGE = 1_000_000
RANK = {"error": 0, "fail": 1, "warn": 2, "pass": 3}


def _read(out: Path, page: str) -> str:
    return (out / page).read_text(encoding="utf-8")


def _section(html: str, start: str, end: str) -> str:
    return html[html.index(start):html.index(end, html.index(start))]


def test_index_grid_has_every_run_newest_partition_first(built_site, filled_store):
    out, report = built_site
    index = _read(out, "index.html")
    grid = _section(index, '<table class="grid">', "</table>")
    partitions = re.findall(r'<tr class="grid-row" data-partition="([^"]*)"', grid)
    assert partitions == sorted(partitions, reverse=True)
    m = filled_store.market
    assert partitions[:3] == [m.as_of.isoformat(), m.last.isoformat(),
                              (m.last - dt.timedelta(days=1)).isoformat()]
    cells = {int(i) for i in re.findall(r'<td class="cell \w+" data-run="(\d+)"', grid)}
    assert cells == set(filled_store.runs.values())
    assert report.runs == len(filled_store.runs)
    # the failing validate run's cell names its failing check
    cell = re.search(rf'data-run="{filled_store.runs["validate_online"]}"[^>]*>(.*?)</td>', grid)
    assert cell and "FAIL" in cell.group(1) and "default_rate 1" in cell.group(1)


def test_index_lists_what_needs_attention_failures_first(built_site, filled_store):
    out, _ = built_site
    attention = _section(_read(out, "index.html"), "Needs attention", "</table>")
    rows = re.findall(r'data-run="(\d+)" data-state="(\w+)"', attention)
    listed = {int(i) for i, _ in rows}
    failing = {filled_store.runs[k] for k in filled_store.failing}
    assert listed == failing  # the passing runs are not there
    states = [RANK[s] for _, s in rows]
    assert states == sorted(states)  # one partition here: errors and failures before warnings


def test_run_page_of_the_quoted_apr_failure(built_site, filled_store):
    out, _ = built_site
    page = _read(out, f"runs/{filled_store.runs['validate_online']}.html")
    failing = _section(page, 'id="failures"', "</table>")
    assert 'data-check="default_rate"' in failing and "quoted_apr" in failing
    assert "pricing" in failing  # quoted_apr's owner, from the contract file of the run
    assert "Owners of what failed" in page and "pricing (#pricing-oncall): quoted_apr" in page
    assert page.index('id="failures"') < page.index('id="passing"')
    assert 'data-check="not_null"' in _section(page, 'id="passing"', "</table>")
    drift = _read(out, f"runs/{filled_store.runs['drift']}.html")
    failing = _section(drift, 'id="failures"', "</table>")
    assert "channel=app" in failing and "quoted_apr" in failing
    # errors before warnings
    states = re.findall(r'<span class="st st-(\w+)">', failing)
    assert states == sorted(states, key=lambda s: RANK[s]) and states[0] == "fail"


def test_failing_examples_are_shown_as_stored_records_not_reprs(built_site, filled_store):
    out, _ = built_site
    skew = _read(out, f"runs/{filled_store.runs['skew']}.html")
    examples = _section(skew, '<tr class="examples">', "</tr></table>")
    assert "<th>imp_key</th><th>offline</th><th>online</th>" in examples
    assert "<td>-9</td>" in examples  # the sentinel the online side served
    assert "{&#39;" not in skew and "{'" not in skew


def test_no_raw_member_reference_on_any_page(built_site, filled_store):
    out, _ = built_site
    # member_ref (pii) failed its allowed values offline: its examples are shown redacted
    page = _read(out, f"runs/{filled_store.runs['validate_offline']}.html")
    failing = _section(page, 'id="failures"', "</table>")
    assert 'data-check="allowed_values"' in failing and "member_ref" in failing
    assert "<code>&lt;redacted&gt;</code>" in _section(failing, '<tr class="examples">', "</tr>")
    engine = sa.create_engine(filled_store.market.warehouse_url)
    with engine.connect() as conn:
        refs = set(conn.execute(sa.text("SELECT DISTINCT member_ref FROM features_served"))
                   .scalars())
    engine.dispose()
    assert refs and all(re.fullmatch(r"M-0\d{4}", r) for r in refs)
    text = "".join(p.read_text(encoding="utf-8") for p in out.rglob("*.html"))
    assert not re.search(r"M-0\d{4}", text)


def test_every_page_is_under_a_megabyte_and_plotly_is_one_asset(built_site):
    out, _ = built_site
    pages = list(out.rglob("*.html"))
    assert len(pages) > 10
    assert max(p.stat().st_size for p in pages) <= MAX_PAGE
    assert (out / "assets" / "plotly.min.js").stat().st_size > 1_000_000
    for p in pages:
        text = p.read_text(encoding="utf-8")
        assert "cdn.plot.ly" not in text and "https://" not in text.split("</head>")[0]
        if "plotly-graph-div" in text:
            root = "" if p.parent == out else "../"
            assert f'<script src="{root}assets/plotly.min.js"></script>' in text


def test_dataset_page_has_the_trends(built_site):
    out, _ = built_site
    page = _read(out, "datasets/marketplace_features.html")
    for title in ("Volume per day", "Drift score per feature", "Default rate per feature",
                  "Default rate per segment", "Replay skew", "Rows per partition"):
        assert f"<h2>{title}" in page, title
    assert page.count('class="plotly-graph-div"') >= 6
    assert '"quoted_apr"' in page  # a line per feature
    labels = _read(out, "datasets/outcomes.html")
    assert "Label completeness per task" in labels and '"click"' in labels


def test_evaluate_run_page_has_segment_intervals(built_site, filled_store):
    out, _ = built_site
    page = _read(out, f"runs/{filled_store.runs['evaluate']}.html")
    evaluation = page[page.index('id="evaluation"'):]
    assert "<h3>click</h3>" in evaluation and "channel=app" in evaluation
    assert re.search(r"<td>0\.\d+ \(0\.\d+–[01]\.\d+\)</td>", evaluation)  # value (low–high)
    assert 'id="eval-0-auc"' in evaluation and '"error_y"' in evaluation
    index = _read(out, "evaluations.html")
    assert f'runs/{filled_store.runs["evaluate"]}.html' in index and "eval-auc-trend" in index


def test_training_pages(built_site, filled_store):
    import json

    out, report = built_site
    index = _read(out, "training.html")
    assert "training/1.html" in index and "funnel-" in index  # the published model
    page = _read(out, "training/1.html")
    assert "Final losses" in page and "No per-step history" in page
    assert f'../runs/{filled_store.runs["train"]}.html' in page
    assert json.loads((out / ".funnelguard-site.json").read_text())["training"]
    assert report.training_pages_written == 1


def test_a_stopped_training_run_shows_its_guard_event_and_loss_curves(store_copy, tmp_path):
    import json

    from monitors.site import build_site
    from monitors.store import TrainingRun, open_store

    url = store_copy
    bundle = tmp_path / "bundle.json"
    bundle.write_text(json.dumps({
        "step": 40, "anomaly": "loss_spike", "message": "step 40: click loss 9.1 vs median 0.6",
        "tasks": ["click"], "value": 9.1, "threshold": 5.0,
        "history": {"loss": {"click": [[i, 0.6 + 0.01 * i] for i in range(41)],
                             "signup": [[i, 0.3] for i in range(41)]},
                    "grad_norm": [[i, 1.0 + i] for i in range(41)]},
        "triage": {"verdict": "data", "features": ["loan_amount"], "tasks": ["click"],
                   "replays": [{"nested": True}]},
        "summary": ["Training stopped at step 40: loss_spike (click).", "Verdict: data"]}))
    with open_store(url).session() as s, s.begin():
        s.add(TrainingRun(as_of="2026-09-21", status="fail", out_dir=str(tmp_path), steps=40,
                          anomaly="loss_spike", verdict="data", bundle_path=str(bundle),
                          config={}, summary={"lines": ["Training stopped at step 40."]}))
    out = tmp_path / "site"
    build_site(url, out)
    page = _read(out, "training/2.html")
    assert 'id="loss"' in page and 'id="grad-norm"' in page and '"signup"' in page
    assert "Guard event" in page and "loss_spike" in page and "loan_amount" in page
    assert "nested" not in page  # nested triage data stays in the bundle


def test_unchanged_rebuild_writes_no_run_page(filled_store, store_copy, tmp_path):
    from monitors.site import build_site

    url = store_copy
    out = tmp_path / "site"
    first = build_site(url, out)
    assert first.run_pages_written == len(filled_store.runs)
    before = {p.name: p.stat().st_mtime_ns for p in (out / "runs").iterdir()}
    training = (out / "training" / "1.html").stat().st_mtime_ns
    again = build_site(url, out)
    assert (again.run_pages_written, again.run_pages_unchanged) == (0, len(filled_store.runs))
    assert again.training_pages_written == 0 and again.forwarding_pages_written == 0
    assert {p.name: p.stat().st_mtime_ns for p in (out / "runs").iterdir()} == before
    assert (out / "training" / "1.html").stat().st_mtime_ns == training
    # a deleted page is written again; --full rewrites all
    (out / "runs" / f"{filled_store.runs['skew']}.html").unlink()
    assert build_site(url, out).run_pages_written == 1
    assert build_site(url, out, full=True).run_pages_written == len(filled_store.runs)


def test_a_rerun_rewrites_its_page_and_forwards_the_old_url(filled_store, store_copy, tmp_path):
    from funnelguard.cli import run
    from monitors.site import build_site

    url = store_copy
    out = tmp_path / "site"
    build_site(url, out)
    m = filled_store.market
    site_reports = out / "reports" / m.last.isoformat()
    code, _ = run(["skew", "--date", m.last.isoformat(), "--html", str(site_reports),
                   "--project", str(m.project_path), "--store", url])
    assert code == 1
    again = build_site(url, out)
    assert again.run_pages_written == 1 and again.forwarding_pages_written == 1
    old = filled_store.runs["skew"]
    new = max(int(p.stem) for p in (out / "runs").glob("*.html"))
    forward = _read(out, f"runs/{old}.html")
    assert f'url={new}.html' in forward and f'href="{new}.html"' in forward
    page = _read(out, f"runs/{new}.html")
    # the rerun's report is under the site folder: linked relatively, and the link resolves
    href = re.search(r'class="artifact" href="([^"]+)"', page).group(1)
    assert href == f"../reports/{m.last.isoformat()}/skew.html"
    assert (out / "runs" / href).resolve().is_file()
    assert build_site(url, out).forwarding_pages_written == 0


def test_artifacts_outside_the_site_are_absolute_file_links(built_site, filled_store):
    out, _ = built_site
    page = _read(out, f"runs/{filled_store.runs['drift']}.html")
    hrefs = re.findall(r'class="artifact" href="([^"]+)"', page)
    report = (filled_store.reports / filled_store.market.last.isoformat() / "drift.html")
    assert report.as_uri() in hrefs and all(h.startswith("file:///") for h in hrefs)


def test_missing_contract_file_gives_unknown_owner_not_a_failed_build(filled_store, store_copy,
                                                                      tmp_path):
    from monitors.site import build_site
    from monitors.store import Run, open_store

    url = store_copy
    with open_store(url).session() as s, s.begin():
        s.execute(sa.update(Run).values(contract=str(tmp_path / "gone.yaml"),
                                        project=str(tmp_path / "gone.yaml")))
    out = tmp_path / "site"
    build_site(url, out)
    failing = _section(_read(out, f"runs/{filled_store.runs['validate_online']}.html"),
                       'id="failures"', "</table>")
    assert "<td>unknown</td>" in failing and "pricing" not in failing


def test_huge_findings_keep_the_run_page_under_a_megabyte(store_copy, tmp_path):
    from monitors.site import build_site
    from monitors.store import FindingRow, Run, open_store

    url = store_copy
    with open_store(url).session() as s, s.begin():
        run = Run(command="validate", dataset="marketplace_features", environment="online",
                  partition="2026-09-30", status="fail", artifacts={})
        run.findings = [FindingRow(
            check="range", dataset="marketplace_features", environment="online",
            partition="2026-09-30", feature=f"f{i}", severity="error", passed=False,
            value=0.5, threshold=0.1, count=10, message="x" * 2000,
            examples=[{"imp_key": f"k{j}", "value": "y" * 300} for j in range(50)],
            fingerprint=f"range|{i}") for i in range(600)]
        s.add(run)
        s.flush()
        run_id = run.id
    out = tmp_path / "site"
    build_site(url, out)
    page = _read(out, f"runs/{run_id}.html")
    assert len(page.encode()) <= MAX_PAGE
    assert "more failing checks not listed" in page and f"funnelguard runs show {run_id}" in page
    assert "more not shown" in page  # examples cut to a few per finding


def test_no_store_file_is_an_input_error(tmp_path):
    from funnelguard.errors import InputError
    from monitors.site import build_site

    with pytest.raises(InputError, match="no file"):
        build_site(f"sqlite:///{tmp_path / 'nothing.db'}", tmp_path / "site")
    assert not (tmp_path / "nothing.db").exists()

"""The project file: which contract plays which part, and the catalogue read from the contracts."""

from __future__ import annotations

import datetime as dt
import textwrap

import pytest

from funnelguard.errors import InputError
from funnelguard.project import PACKAGED_PROJECT, ProjectError, find_project, load_project


def test_packaged_project_is_the_fallback(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FUNNELGUARD_PROJECT", raising=False)
    assert find_project(None) == PACKAGED_PROJECT
    project = load_project()
    assert project.packaged
    assert project.tasks == ("click", "application", "conversion", "approval")
    assert project.key_column == "impression_id"
    assert project.features.partition_column == "ds"
    assert project.event_time == "event_ts"
    assert project.score_columns["approval"] == "score_approval"
    assert len(project.feature_specs()) == 18


def test_local_file_then_environment_then_flag(tmp_path, monkeypatch, marketplace):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "funnelguard.yaml").write_text(marketplace.project_path.read_text()
                                               .replace("contracts/", f"{marketplace.root}/contracts/"))
    monkeypatch.delenv("FUNNELGUARD_PROJECT", raising=False)
    assert find_project(None) == tmp_path / "funnelguard.yaml"
    monkeypatch.setenv("FUNNELGUARD_PROJECT", str(marketplace.project_path))
    assert find_project(None) == marketplace.project_path
    assert find_project(str(PACKAGED_PROJECT)) == PACKAGED_PROJECT
    with pytest.raises(InputError, match="--project: expected a project file"):
        find_project(str(tmp_path / "nope.yaml"))


def test_second_project_catalogue(marketplace):
    project = load_project(marketplace.project_path)
    assert project.name == "marketplace"
    assert project.tasks == ("click", "signup", "funded")
    assert project.key_column == "imp_key"
    assert project.features.partition_column == "event_date"
    assert project.event_time == "shown_at"
    assert project.features.tables == {"offline": "features_batch", "online": "features_served"}
    assert project.segments == ("channel", "member_tier")
    assert project.label_columns == {"click": "click_time", "signup": "signup_time",
                                     "funded": "funded_time"}
    assert project.loaded_at_columns["funded"] == "funded_landed"
    specs = {f.name: f for f in project.feature_specs()}
    assert specs["quoted_apr"].default == -9.0 and specs["quoted_apr"].kind == "float"
    assert specs["member_tier"].kind == "category"
    assert specs["member_tier"].categories == ("bronze", "silver", "gold")
    assert specs["member_ref"].kind == "id"
    assert project.owner_of("marketplace_features", "quoted_apr").team == "pricing"
    assert project.owner_of("features", "loan_amount").team == "marketplace-data"
    # relative SQLite store path resolves against the project file, not the shell
    assert project.store == f"sqlite:///{(marketplace.root / '.funnelguard/results.db').resolve()}"


def test_read_uses_the_contracts_partition_and_timestamps(marketplace):
    from funnelguard.warehouse import connect

    project = load_project(marketplace.project_path)
    engine = connect(marketplace.warehouse_url)
    frame = project.read(engine, "impressions", "offline", marketplace.last)
    assert len(frame) == 600
    assert set(frame["event_date"]) == {marketplace.last}
    assert str(frame["shown_at"].dt.tz) == "UTC"
    week = project.read(engine, "features", "online", marketplace.last - dt.timedelta(days=6),
                        marketplace.last, ["imp_key", "quoted_apr"])
    assert len(week) == 7 * 600 and list(week.columns) == ["imp_key", "quoted_apr"]


def _write_project(tmp_path, marketplace, text: str):
    path = tmp_path / "funnelguard.yaml"
    path.write_text(textwrap.dedent(text).replace("ROOT", str(marketplace.root)))
    return path


def test_bad_project_files_name_file_line_and_key(tmp_path, marketplace):
    path = _write_project(tmp_path, marketplace, """\
        contracts:
          impressions: ROOT/contracts/ranking_requests.yaml
          features: ROOT/contracts/nope.yaml
          labels: ROOT/contracts/outcomes.yaml
          extra: x.yaml
        warehuse: sqlite:///x.db
        """)
    with pytest.raises(ProjectError) as err:
        load_project(path)
    text = str(err.value)
    assert f"{path}:3: contracts.features: expected a contract file, found no file" in text
    assert f"{path}:5: contracts: unknown part `extra`" in text
    assert f"{path}:6: unknown key `warehuse`" in text


def test_unset_environment_variable_is_named_never_expanded_blank(tmp_path, marketplace,
                                                                  monkeypatch):
    monkeypatch.delenv("MKT_WAREHOUSE", raising=False)
    path = _write_project(tmp_path, marketplace, """\
        contracts:
          impressions: ROOT/contracts/ranking_requests.yaml
          features: ROOT/contracts/marketplace_features.yaml
          labels: ROOT/contracts/outcomes.yaml
        warehouse: ${MKT_WAREHOUSE}
        """)
    with pytest.raises(ProjectError, match=r":5: expected environment variable\(s\) \['MKT_WAREHOUSE'\]"):
        load_project(path)
    monkeypatch.setenv("MKT_WAREHOUSE", "postgresql+psycopg://u:secret@h/db")
    project = load_project(path)
    assert project.warehouse == "postgresql+psycopg://u:secret@h/db"
    assert "secret" not in repr(project)


def test_contracts_that_do_not_fit_together(tmp_path, marketplace):
    contracts = tmp_path / "contracts"
    contracts.mkdir()
    for name in ("ranking_requests.yaml", "marketplace_features.yaml"):
        (contracts / name).write_text((marketplace.root / "contracts" / name).read_text())
    outcomes = (marketplace.root / "contracts" / "outcomes.yaml").read_text()
    (contracts / "outcomes.yaml").write_text(outcomes.replace("countsFrom: shown_at",
                                                              "countsFrom: member_ref"))
    path = tmp_path / "funnelguard.yaml"
    path.write_text("contracts:\n  impressions: contracts/ranking_requests.yaml\n"
                    "  features: contracts/marketplace_features.yaml\n"
                    "  labels: contracts/outcomes.yaml\n")
    with pytest.raises(ProjectError) as err:
        load_project(path)
    assert "maturityWindows.click.countsFrom 'member_ref' is not a timestamp property of the " \
           "impressions contract ranking_requests" in str(err.value)


def test_score_for_a_stage_the_labels_lack(tmp_path, marketplace):
    contracts = tmp_path / "contracts"
    contracts.mkdir()
    for name in ("ranking_requests.yaml", "outcomes.yaml"):
        (contracts / name).write_text((marketplace.root / "contracts" / name).read_text())
    feats = (marketplace.root / "contracts" / "marketplace_features.yaml").read_text()
    (contracts / "marketplace_features.yaml").write_text(
        feats.replace("{property: task, value: funded}", "{property: task, value: approval}"))
    path = tmp_path / "funnelguard.yaml"
    path.write_text("contracts:\n  impressions: contracts/ranking_requests.yaml\n"
                    "  features: contracts/marketplace_features.yaml\n"
                    "  labels: contracts/outcomes.yaml\n")
    with pytest.raises(ProjectError, match="score column 'pred_funded' is for stage 'approval', "
                                           "which the labels contract does not have"):
        load_project(path)

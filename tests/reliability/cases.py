"""The reliability battery's case tables and the small harness both of its test files use.

A :class:`Case` is one bad input tried through the CLI: an argv template, the exit code it must
give (2 bad input, 3 environment, 1 only for a real failed check), a distinctive substring of
the message, the projects it is tried on and, where the product gets it wrong today, the strict
``xfail`` reason naming what is wrong and where. A :class:`Corruption` is a copied warehouse
broken in one way (SQL run on the copy, never on a session fixture's file) and the command
tried on it.

Templates are ``str.format`` fields filled from the project's :class:`Ctx` and the test's own
files (``{file}`` a regular file, ``{dir}`` an empty folder, ``{tmp}`` the test's folder ...);
the token ``{where}`` expands to the flags that select the project (``--warehouse W`` for the
packaged simulator project, ``--project P`` for the marketplace) and ``{wh}`` to
``--warehouse W`` alone.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import sqlite3
import sys
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
import yaml

__all__ = ["Case", "Corruption", "Ctx", "Outcome", "CASES", "CORRUPTIONS", "params", "expand",
           "make_files", "run_in_process", "store_rows", "assert_intact", "seed_store", "seeded_stores",
           "break_warehouse", "assert_outcome"]


# -- the projects ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ctx:
    """What a case template may name about one project.

    Attributes:
        name: ``sim`` (the packaged project on the simulated warehouse) or ``mkt``.
        warehouse: the session fixture's warehouse URL (never written to).
        warehouse_file: its SQLite file (copied before a corruption).
        project: the project file (the packaged one for ``sim``).
        where: the flags that select this project's warehouse and contracts.
        day: a partition with data; seed_day: the partition the seeded store holds.
        as_of: an as-of date with matured labels.
        key: an existing key of ``day``; the remaining fields name the contracts' tables and
            columns, so one template fits both projects.
    """

    name: str
    warehouse: str
    warehouse_file: Path
    project: Path
    where: tuple[str, ...]
    day: str
    seed_day: str
    as_of: str
    key: str
    features_contract: Path
    key_col: str
    part_col: str
    offline: str
    online: str
    impressions: str
    labels: str
    number: str        # an offline numeric feature
    online_number: str  # an online numeric feature
    integer: str       # an integer feature
    category: str      # a categorical feature with an enum
    served_ts: str     # the online table's timestamp column
    event_ts: str      # the impressions' event time
    label_ts: str      # the first stage's event time in the labels table
    dropped: str       # a contract column that corruptions drop
    day_rows: int = 0  # rows of the offline table on ``day``


def sim_ctx(warehouse_url: str) -> Ctx:
    from funnelguard.project import PACKAGED_PROJECT

    path = Path(sa.engine.make_url(warehouse_url).database)
    day = "2026-10-20"
    return _counted(Ctx("sim", warehouse_url, path, Path(PACKAGED_PROJECT),
               ("--warehouse", warehouse_url), day, "2026-10-19", "2026-10-25",
               _first_key(path, "offline_features", "impression_id", "ds", day),
               Path(PACKAGED_PROJECT).parent / "ranking_features.yaml", "impression_id", "ds",
               "offline_features", "serving_log", "impressions", "labels",
               "credit_utilization", "approval_odds", "credit_score", "item_type", "served_at",
               "event_ts", "click_ts", "credit_score"))


def mkt_ctx(m) -> Ctx:
    path = Path(sa.engine.make_url(m.warehouse_url).database)
    import datetime as dt

    day = (m.last - dt.timedelta(days=1)).isoformat()
    return _counted(Ctx("mkt", m.warehouse_url, path, Path(m.project_path),
               ("--project", str(m.project_path)), day,
               (m.last - dt.timedelta(days=2)).isoformat(), m.as_of.isoformat(),
               _first_key(path, "features_batch", "imp_key", "event_date", day),
               Path(m.root) / "contracts" / "marketplace_features.yaml", "imp_key",
               "event_date", "features_batch", "features_served", "ranking_requests",
               "outcomes", "loan_amount", "quoted_apr", "tenure_months", "member_tier",
               "served_ts", "shown_at", "click_time", "loan_amount"))


def _first_key(path: Path, table: str, key: str, part: str, day: str) -> str:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as con:
        return con.execute(f"SELECT {key} FROM {table} WHERE {part} = ? ORDER BY {key} LIMIT 1",
                           (day,)).fetchone()[0]


def _counted(ctx: Ctx) -> Ctx:
    with sqlite3.connect(f"file:{ctx.warehouse_file}?mode=ro", uri=True) as con:
        rows = con.execute(f"SELECT count(*) FROM {ctx.offline} WHERE {ctx.part_col} = ?",
                           (ctx.day,)).fetchone()[0]
    return dataclasses.replace(ctx, day_rows=rows)


# -- the cases ---------------------------------------------------------------------------------

BOTH = ("sim", "mkt")
ONE = ("sim",)  # the input does not depend on the project
MKT = ("mkt",)  # nor here, and the marketplace's smaller warehouse is faster to profile


@dataclass(frozen=True)
class Case:
    """One bad input through the CLI.

    Attributes:
        id: names the input.
        argv: the command line template (``{where}`` / ``{wh}`` expand to flags).
        code: the exit code it must give (a tuple where either is right, said in ``why``).
        message: a distinctive substring of stdout + stderr (a template too).
        projects: the projects it is tried on.
        xfail: why it fails today (what and where), per project or for all (a str).
        env: environment variables set for the run (templates).
        subprocess: also run through the real console script (no hang, no traceback).
    """

    id: str
    argv: tuple[str, ...]
    code: int | tuple[int, ...]
    message: str
    projects: tuple[str, ...] = BOTH
    xfail: str | dict[str, str] | None = None
    env: dict[str, str] = field(default_factory=dict)
    subprocess: bool = False

    def xfail_for(self, project: str) -> str | None:
        if isinstance(self.xfail, dict):
            return self.xfail.get(project)
        return self.xfail


V = ("validate", "{where}")
DATE = ("--date", "{day}")

CASES: tuple[Case, ...] = (
    # -- usage: argparse, exit 2 -------------------------------------------------------------
    Case("unknown_subcommand", ("frobnicate",), 2, "invalid choice: 'frobnicate'", ONE,
         subprocess=True),
    Case("no_subcommand", (), 2, "the following arguments are required: COMMAND", ONE),
    Case("contracts_without_action", ("contracts",), 2,
         "the following arguments are required: ACTION", ONE),
    Case("validate_without_date", (*V, "--env", "offline"), 2,
         "the following arguments are required: --date"),
    Case("validate_without_env", (*V, *DATE), 2, "the following arguments are required: --env"),
    Case("validate_unknown_env", (*V, *DATE, "--env", "staging"), 2,
         "invalid choice: 'staging'"),
    Case("validate_unknown_dataset", (*V, *DATE, "--env", "offline", "--dataset", "orders"), 2,
         "invalid choice: 'orders'"),
    Case("validate_extra_flag", (*V, *DATE, "--env", "offline", "--frobnicate"), 2,
         "unrecognized arguments: --frobnicate"),
    Case("validate_chunk_rows_text", (*V, *DATE, "--env", "offline", "--chunk-rows", "lots"), 2,
         "invalid int value: 'lots'", ONE),
    Case("evaluate_bootstrap_text", ("evaluate", "{where}", "--as-of", "{as_of}", "--model",
                                     "served", "--bootstrap", "many"), 2,
         "invalid int value: 'many'", ONE),
    Case("train_without_out", ("train", "{where}", "--as-of", "{as_of}"), 2,
         "the following arguments are required: --out", ONE),
    Case("explain_without_key", ("explain", "{where}", "--model", "served"), 2,
         "the following arguments are required: KEY", ONE),
    Case("diff_without_new", ("contracts", "diff", "{features_contract}"), 2,
         "the following arguments are required: NEW", ONE),
    Case("diff_unknown_format", ("contracts", "diff", "{features_contract}",
                                 "{features_contract}", "--format", "yaml"), 2,
         "invalid choice: 'yaml'", ONE),
    Case("alerts_unknown_action", ("alerts", "frob"), 2, "invalid choice: 'frob'", ONE),
    # -- dates -------------------------------------------------------------------------------
    Case("date_february_30", (*V, "--date", "2026-02-30", "--env", "offline"), 2,
         "--date: expected a date YYYY-MM-DD, found '2026-02-30'"),
    Case("date_yesterday", (*V, "--date", "yesterday", "--env", "offline"), 2,
         "--date: expected a date YYYY-MM-DD, found 'yesterday'", subprocess=True),
    Case("date_with_time", (*V, "--date", "{day}T00:00", "--env", "online"), 2,
         "found '{day}T00:00'", ONE),
    Case("date_empty", (*V, "--date", "", "--env", "offline"), 2,
         "--date: expected a date YYYY-MM-DD, found ''", ONE),
    Case("date_month_13", ("freshness", "{where}", "--date", "2026-13-01"), 2,
         "found '2026-13-01'"),
    Case("as_of_tomorrow", ("gate", "{where}", "--as-of", "tomorrow"), 2,
         "--as-of: expected a date YYYY-MM-DD, found 'tomorrow'"),
    Case("validate_no_partition", (*V, "--date", "2030-01-01", "--env", "offline"), 2,
         "expected rows for partition {part_col}=2030-01-01 in table '{offline}'",
         subprocess=True),
    Case("validate_online_no_partition", (*V, "--date", "2030-01-01", "--env", "online"), 2,
         "in table '{online}'"),
    Case("drift_no_partition", ("drift", "{where}", "--date", "2030-01-01"), 2,
         "expected rows with {part_col} = 2030-01-01 in table '{offline}'"),
    Case("skew_no_partition", ("skew", "{where}", "--date", "2030-01-01"), 2,
         "expected rows with {part_col} = 2030-01-01"),
    Case("replay_no_partition", ("replay", "{where}", "--date", "2030-01-01", "--model",
                                 "served"), 2, "{part_col} = 2030-01-01", ONE),
    # A partition that has not arrived is what freshness is for: a real failed check.
    Case("freshness_no_partition", ("freshness", "{where}", "--date", "2030-01-01", "--html",
                                    "{tmp}/html"), 1,
         "{offline} has no rows for 2030-01-01: the partition has not arrived"),
    # No labels at all before the as-of date: the gate says training must not run.
    Case("gate_before_any_data", ("gate", "{where}", "--as-of", "2020-01-01"), 1,
         "training must not run"),
    # -- numeric options ---------------------------------------------------------------------
    Case("chunk_rows_zero", (*V, *DATE, "--env", "offline", "--chunk-rows", "0"), 2,
         "--chunk-rows): expected a positive number, found 0"),
    Case("chunk_rows_negative", (*V, *DATE, "--env", "offline", "--chunk-rows", "-5"), 2,
         "expected a positive number, found -5", ONE),
    Case("drift_sample_size_5", ("drift", "{where}", *DATE, "--sample-size", "5",
                                 "--html", "{tmp}/html"), 2, "--sample-size", subprocess=True),
    Case("drift_sample_size_0", ("drift", "{where}", *DATE, "--sample-size", "0",
                                 "--html", "{tmp}/html"), 2, "--sample-size", MKT),
    Case("window_days_zero", ("gate", "{where}", "--as-of", "{as_of}", "--window-days", "0"), 2,
         "--window-days: expected a positive number of days, found 0"),
    Case("window_days_negative", ("gate", "{where}", "--as-of", "{as_of}", "--window-days",
                                  "-3"), 2, "found -3", ONE),
    Case("bootstrap_negative", ("evaluate", "{where}", "--as-of", "{as_of}", "--model", "served",
                                "--bootstrap", "-1"), 2,
         "--bootstrap: expected a count >= 0, found -1"),
    Case("replay_k_negative", ("replay", "{where}", *DATE, "--model", "served", "--k", "-1"), 2,
         "--k: expected a number of positions >= 0, found -1", ONE),
    Case("diff_days_zero", ("contracts", "diff", "{features_contract}", "{features_contract}",
                            "--backtest-warehouse", "{warehouse}", "--days", "0"), 2,
         "--days: expected a positive number, found 0", ONE),
    Case("init_sample_partitions_zero", ("init", "{tmp}/draft", "{wh}",
                                         "--sample-partitions", "0"), 2,
         "--sample-partitions: expected a positive number, found 0", ONE),
    Case("simulate_days_zero", ("simulate", "--warehouse", "sqlite:///{tmp}/sim.db", "--start",
                                "2026-10-01", "--days", "0", "--per-day", "10", "--seed", "1"),
         2, "expected --days >= 1 and --per-day >= 1, found days=0", ONE),
    Case("simulate_per_day_negative", ("simulate", "--warehouse", "sqlite:///{tmp}/sim.db",
                                       "--start", "2026-10-01", "--days", "3", "--per-day", "-1",
                                       "--seed", "1"), 2, "per_day=-1", ONE),
    Case("simulate_seed_text", ("simulate", "--warehouse", "sqlite:///{tmp}/sim.db", "--start",
                                "2026-10-01", "--days", "3", "--per-day", "10", "--seed", "x"),
         2, "--seed: expected an integer, found 'x'", ONE),
    Case("simulate_start_february_30", ("simulate", "--warehouse", "sqlite:///{tmp}/sim.db",
                                        "--start", "2026-02-30", "--days", "3", "--per-day",
                                        "10", "--seed", "1"), 2,
         "--start: expected a date YYYY-MM-DD, found '2026-02-30'", ONE),
    # -- faults of the simulator -------------------------------------------------------------
    Case("simulate_unknown_fault", ("simulate", "--warehouse", "sqlite:///{tmp}/sim.db",
                                    "--start", "2026-10-01", "--days", "3", "--per-day", "10",
                                    "--seed", "1", "--fault", "meteor"), 2,
         "expected a fault name, one of serving_default", ONE),
    Case("simulate_fault_without_feature", ("simulate", "--warehouse", "sqlite:///{tmp}/sim.db",
                                            "--start", "2026-10-01", "--days", "3", "--per-day",
                                            "10", "--seed", "1", "--fault", "serving_default"),
         2, "serving_default needs feature=", ONE),
    Case("simulate_fault_unknown_feature", ("simulate", "--warehouse", "sqlite:///{tmp}/sim.db",
                                            "--start", "2026-10-01", "--days", "3", "--per-day",
                                            "10", "--seed", "1", "--fault",
                                            "serving_default:feature=shoe_size"), 2,
         "feature: expected one of user_id", ONE),
    Case("simulate_fault_share_2", ("simulate", "--warehouse", "sqlite:///{tmp}/sim.db",
                                    "--start", "2026-10-01", "--days", "3", "--per-day", "10",
                                    "--seed", "1", "--fault",
                                    "serving_default:feature=approval_odds,share=2"), 2,
         "share: expected a fraction in (0, 1], found '2'", ONE),
    Case("simulate_fault_day_outside", ("simulate", "--warehouse", "sqlite:///{tmp}/sim.db",
                                        "--start", "2026-10-01", "--days", "3", "--per-day",
                                        "10", "--seed", "1", "--fault",
                                        "serving_default:feature=approval_odds,day=2099-01-01"),
         2, "day: expected a partition from 2026-10-01 to 2026-10-03, found 2099-01-01", ONE),
    Case("simulate_fault_unknown_key", ("simulate", "--warehouse", "sqlite:///{tmp}/sim.db",
                                        "--start", "2026-10-01", "--days", "3", "--per-day",
                                        "10", "--seed", "1", "--fault",
                                        "serving_default:feature=approval_odds,bogus=1"), 2,
         "found 'bogus'", ONE),
    Case("simulate_onto_a_full_warehouse", ("simulate", "--warehouse", "sqlite:///{wh_copy}",
                                            "--start", "2026-10-01", "--days", "3", "--per-day",
                                            "10", "--seed", "1"), 2,
         "pass --replace", ONE),
    # -- --project / $FUNNELGUARD_PROJECT ----------------------------------------------------
    Case("project_dir_without_file", (*V, "--project", "{dir}", *DATE, "--env", "offline"), 2,
         "--project: expected a project file (funnelguard.yaml), found no file at "
         "{dir}/funnelguard.yaml", ONE),
    Case("project_is_a_contract", ("validate", "{wh}", "--project", "{features_contract}",
                                   *DATE, "--env", "offline"), 2,
         "expected `contracts:` mapping impressions, features and labels"),
    Case("project_empty_file", (*V, "--project", "{empty}", *DATE, "--env", "offline"), 2,
         "{empty}:1: expected a mapping with `contracts:` at the top", ONE, subprocess=True),
    Case("project_missing_file", (*V, "--project", "{tmp}/nowhere.yaml", *DATE, "--env",
                                  "offline"), 2, "found no file at {tmp}/nowhere.yaml", ONE),
    Case("project_a_list", (*V, "--project", "{list_yaml}", *DATE, "--env", "offline"), 2,
         "{list_yaml}:1: expected a mapping with `contracts:` at the top, found a list", ONE),
    Case("project_binary_file", (*V, "--project", "{binary}", *DATE, "--env", "offline"), 2,
         "{binary}:2: expected UTF-8 text, found byte 0x80", ONE),
    Case("project_bad_yaml", (*V, "--project", "{bad_yaml}", *DATE, "--env", "offline"), 2,
         "{bad_yaml}:3: not valid YAML", ONE),
    Case("project_contracts_missing", ("validate", "{wh}", "--project", "{p_missing}", *DATE,
                                       "--env", "offline"), 2,
         "contracts.features: expected a contract file, found no file at"),
    Case("project_without_labels", ("validate", "{wh}", "--project", "{p_nolabels}", *DATE,
                                    "--env", "offline"), 2,
         "contracts: missing `labels` (a contract file path)"),
    Case("project_env_var_missing", ("validate", "{wh}", *DATE, "--env", "offline"), 2,
         "FUNNELGUARD_PROJECT: expected a project file (funnelguard.yaml), found no file at "
         "{tmp}/gone.yaml", ONE, env={"FUNNELGUARD_PROJECT": "{tmp}/gone.yaml"}),
    Case("contract_missing_file", (*V, *DATE, "--env", "offline", "--contract",
                                   "{tmp}/nowhere.yaml"), 2,
         "{tmp}/nowhere.yaml: expected a contract file, found no such file", ONE),
    Case("contract_names_a_missing_column", (*V, *DATE, "--env", "offline", "--contract",
                                             "{extra_contract}"), 2,
         "expected column(s) ['shoe_size'] in table '{offline}' of warehouse"),
    Case("contract_is_a_project", (*V, *DATE, "--env", "offline", "--contract", "{project}"), 2,
         "missing required key `apiVersion`"),
    Case("labels_have_no_online", (*V, *DATE, "--env", "online", "--dataset", "labels"), 2,
         "has environments ['offline'], found 'online'"),
    # -- warehouse and store URLs ------------------------------------------------------------
    Case("warehouse_file_missing", (*V, "--warehouse", "sqlite:///{tmp}/nothere.db", *DATE,
                                    "--env", "offline"), 2,
         "expected an existing SQLite database, found no file at {tmp}/nothere.db"),
    Case("warehouse_not_a_url", (*V, "--warehouse", "warehouse.db", *DATE, "--env", "offline"),
         2, "expected a SQLAlchemy URL such as sqlite:///", ONE),
    Case("warehouse_unknown_dialect", (*V, "--warehouse", "nota://x", *DATE, "--env",
                                       "offline"), 2, "cannot use database URL nota://x", ONE),
    Case("warehouse_server_down", (*V, "--warehouse",
                                   "postgresql+psycopg://postgres@127.0.0.1:1/x", *DATE,
                                   "--env", "offline"), 3,
         "database unreachable at postgresql+psycopg://postgres@127.0.0.1:1/x"),
    Case("store_is_a_directory", (*V, *DATE, "--env", "offline", "--store", "sqlite:///{dir}"),
         3, "sqlite:///{dir}", ONE),
    Case("alerts_list_store_directory", ("alerts", "list", "--store", "sqlite:///{dir}"), 3,
         "sqlite:///{dir}", ONE),
    Case("alerts_flush_store_directory", ("alerts", "flush", "--store", "sqlite:///{dir}"), 3,
         "sqlite:///{dir}", ONE),
    # -- output paths ------------------------------------------------------------------------
    Case("json_under_a_file", (*V, *DATE, "--env", "offline", "--json", "{file}/r.json"), 2,
         "--json {file}/r.json: expected a file path it can write, found a regular file where "
         "its folder should be", subprocess=True),
    Case("json_onto_a_directory", (*V, *DATE, "--env", "offline", "--json", "{dir}"), 2,
         "--json {dir}: expected a file path it can write, found a directory", ONE),
    Case("alerts_flush_json_under_a_file", ("alerts", "flush", "--json", "{file}/r.json"), 2,
         "--json {file}/r.json: expected a file path it can write", ONE),
    Case("drift_html_onto_a_file", ("drift", "{where}", *DATE, "--html", "{file}"), 2,
         "--html", MKT),
    Case("train_out_onto_a_file", ("train", "{where}", "--as-of", "{as_of}", "--out", "{file}",
                                   "--config", "{train_config}"), 2, "--out"),
    Case("infer_out_onto_a_directory", ("contracts", "infer", "--table", "{offline}", "{wh}",
                                        "--out", "{dir}"), 2, "--out", MKT),
    Case("infer_out_under_a_file", ("contracts", "infer", "--table", "{offline}", "{wh}",
                                    "--out", "{file}/draft.yaml"), 2, "--out", MKT),
    Case("init_into_a_file", ("init", "{file}", "{wh}"), 2, "{file}", MKT),
    # -- training, evaluation, replay, explain -----------------------------------------------
    Case("train_config_missing", ("train", "{where}", "--as-of", "{as_of}", "--out",
                                  "{tmp}/model", "--config", "{tmp}/nowhere.yaml"), 2,
         "--config: expected a YAML or JSON file, found nothing at {tmp}/nowhere.yaml", ONE),
    Case("train_config_bad_yaml", ("train", "{where}", "--as-of", "{as_of}", "--out",
                                   "{tmp}/model", "--config", "{bad_yaml}"), 2,
         "{bad_yaml}:3: not valid YAML", ONE),
    Case("train_config_is_a_contract", ("train", "{where}", "--as-of", "{as_of}", "--out",
                                        "{tmp}/model", "--config", "{features_contract}"), 2,
         "unknown section(s) ['apiVersion'"),
    Case("train_config_a_list", ("train", "{where}", "--as-of", "{as_of}", "--out",
                                 "{tmp}/model", "--config", "{list_yaml}"), 2,
         "expected a mapping of sections", ONE),
    Case("train_before_any_data", ("train", "{where}", "--as-of", "2020-01-01", "--out",
                                   "{tmp}/model", "--config", "{train_config}"), 2,
         "found none among 0 days with data"),
    Case("model_not_a_model_dir", ("evaluate", "{where}", "--as-of", "{as_of}", "--model",
                                   "{not_model}", "--bootstrap", "0"), 2,
         "model directory {not_model}: expected files ['model.json'"),
    Case("model_missing_dir", ("evaluate", "{where}", "--as-of", "{as_of}", "--model",
                               "{tmp}/nomodel"), 2, "found no directory at {tmp}/nomodel", ONE),
    Case("model_is_a_file", ("evaluate", "{where}", "--as-of", "{as_of}", "--model", "{file}"),
         2, "{file}", ONE),
    Case("champion_not_a_model_dir", ("evaluate", "{where}", "--as-of", "{as_of}", "--model",
                                      "served", "--champion", "{not_model}", "--bootstrap",
                                      "0"), 2, "model directory {not_model}", ONE),
    Case("thresholds_bad_yaml", ("evaluate", "{where}", "--as-of", "{as_of}", "--model",
                                 "served", "--bootstrap", "0", "--thresholds", "{bad_yaml}"), 2,
         "{bad_yaml}:3: not valid YAML", ONE),
    Case("thresholds_unknown_key", ("evaluate", "{where}", "--as-of", "{as_of}", "--model",
                                    "served", "--bootstrap", "0", "--thresholds",
                                    "{bad_thresholds}"), 2,
         "expected top-level keys 'evaluation' and/or 'replay', found ['floors']", ONE),
    Case("replay_thresholds_missing", ("replay", "{where}", *DATE, "--model", "served",
                                       "--thresholds", "{tmp}/nowhere.yaml"), 2,
         "--thresholds: expected a YAML or JSON file, found nothing at", ONE),
    Case("replay_model_not_a_model_dir", ("replay", "{where}", *DATE, "--model",
                                          "{not_model}"), 2, "model directory {not_model}"),
    Case("explain_unknown_key", ("explain", "no-such-impression", "{where}", "--model",
                                 "served"), 2,
         "expected {key_col} 'no-such-impression' in {online} and {offline}", subprocess=True),
    Case("explain_injection_key", ("explain", "' OR 1=1 --", "{where}", "--model", "served"), 2,
         "not found in {online}, {offline}", ONE),
    Case("explain_empty_key", ("explain", "", "{where}", "--model", "served"), 2,
         "expected {key_col} '' in", ONE),
    Case("explain_not_a_model_dir", ("explain", "{key}", "{where}", "--model", "{not_model}"),
         2, "model directory {not_model}"),
    # -- contract tooling --------------------------------------------------------------------
    Case("lint_missing_file", ("contracts", "lint", "{tmp}/nowhere.yaml"), 2,
         "{tmp}/nowhere.yaml: expected a contract file, found no such file", ONE),
    Case("lint_bad_yaml", ("contracts", "lint", "{bad_yaml}"), 2,
         "{bad_yaml}:3: not valid YAML", ONE, subprocess=True),
    Case("lint_empty_file", ("contracts", "lint", "{empty}"), 2, "{empty}:1: expected a mapping "
         "(an ODCS v3 document) at the top, found an empty document", ONE),
    Case("lint_a_list", ("contracts", "lint", "{list_yaml}"), 2,
         "at the top, found a list", ONE),
    Case("lint_a_directory", ("contracts", "lint", "{dir}"), 2,
         "{dir}: expected a contract file, found a directory", ONE),
    Case("lint_project_empty", ("contracts", "lint", "--project", "{empty}"), 2,
         "{empty}:1: expected a mapping with `contracts:`", ONE),
    Case("lint_project_as_contract", ("contracts", "lint", "{project}"), 2,
         "missing required key `apiVersion`"),
    Case("diff_old_missing", ("contracts", "diff", "{tmp}/nowhere.yaml", "{features_contract}"),
         2, "{tmp}/nowhere.yaml: expected a contract file, found no such file", ONE),
    Case("diff_new_bad_yaml", ("contracts", "diff", "{features_contract}", "{bad_yaml}"), 2,
         "{bad_yaml}:3: not valid YAML", ONE),
    Case("diff_backtest_missing_db", ("contracts", "diff", "{features_contract}",
                                      "{features_contract}", "--backtest-warehouse",
                                      "sqlite:///{tmp}/nothere.db"), 2,
         "found no file at {tmp}/nothere.db", ONE),
    Case("infer_unknown_table", ("contracts", "infer", "--table", "orders", "{wh}"), 2,
         "expected table 'orders' in warehouse"),
    Case("infer_unknown_key_column", ("contracts", "infer", "--table", "{offline}", "{wh}",
                                      "--key-column", "nope"), 2,
         "--key-column: expected a column of table '{offline}', found 'nope'"),
    Case("infer_unknown_partition_column", ("contracts", "infer", "--table", "{offline}",
                                            "{wh}", "--partition-column", "nope"), 2,
         "--partition-column: expected a column of table '{offline}', found 'nope'", ONE),
    Case("init_over_a_project", ("init", "{project_dir}", "{wh}"), 2,
         "pass --force to overwrite them", MKT),
    Case("init_unknown_table", ("init", "{tmp}/draft", "{wh}", "--tables", "orders"), 2,
         "expected table 'orders' in warehouse"),
    Case("init_missing_warehouse", ("init", "{tmp}/draft", "--warehouse",
                                    "sqlite:///{tmp}/nothere.db"), 2,
         "found no file at {tmp}/nothere.db", ONE),
    Case("init_unknown_key_column", ("init", "{tmp}/draft", "{wh}", "--key-column", "nope"), 2,
         "--key-column", MKT),
    Case("init_unknown_partition_column", ("init", "{tmp}/draft", "{wh}", "--partition-column",
                                           "nope"), 2, "--partition-column", MKT),
    # -- alerts ------------------------------------------------------------------------------
    Case("mute_forever", ("alerts", "mute", "{fingerprint}", "--for", "forever", "--reason",
                          "noisy"), 2,
         "--for: expected a duration like 24h, 30m, 2d, 90s or 1w; found 'forever'", ONE),
    Case("mute_zero", ("alerts", "mute", "{fingerprint}", "--for", "0m", "--reason", "noisy"), 2,
         "--for: expected a positive duration", ONE),
    Case("mute_negative", ("alerts", "mute", "{fingerprint}", "--for=-5m", "--reason", "noisy"),
         2, "found '-5m'", ONE),
    Case("mute_years", ("alerts", "mute", "{fingerprint}", "--for", "10y", "--reason", "noisy"),
         2, "found '10y'", ONE),
    Case("mute_empty_reason", ("alerts", "mute", "{fingerprint}", "--for", "1h", "--reason", ""),
         2, "--reason: expected a reason people can read, found an empty text", ONE),
    Case("mute_without_reason", ("alerts", "mute", "{fingerprint}", "--for", "1h"), 2,
         "the following arguments are required: --reason", ONE),
    Case("mute_unknown_fingerprint", ("alerts", "mute", "validate|nope|offline|x||", "--for",
                                      "1h", "--reason", "noisy"), 2,
         "found 'validate|nope|offline|x||', which is not among the", ONE),
    Case("unmute_unknown_fingerprint", ("alerts", "unmute", "not-a-fingerprint"), 2,
         "found 'not-a-fingerprint', which is not among the", ONE),
)


def params(cases: Sequence[Case], *, only_subprocess: bool = False):
    """pytest params (case, project) with their strict xfail marks."""
    import pytest

    out = []
    for case in cases:
        if only_subprocess and not case.subprocess:
            continue
        for project in case.projects:
            reason = case.xfail_for(project)
            marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
            out.append(pytest.param(case, project, marks=marks, id=f"{case.id}-{project}"))
    return out


# -- corrupted warehouses ----------------------------------------------------------------------


@dataclass(frozen=True)
class Corruption:
    """One way to break a copy of a project's warehouse, and the command tried on it.

    ``sql`` statements are templates run on the copy; three are special: ``!nullable TABLE COL``
    (rebuild TABLE with COL nullable, its declared types kept), ``!ctas TABLE`` (rebuild TABLE
    by CREATE TABLE AS SELECT, which loses the declared types), ``!garbage`` / ``!zero`` (the
    file replaced by text / emptied).
    """

    id: str
    sql: tuple[str, ...]
    argv: tuple[str, ...]
    code: int | tuple[int, ...]
    message: str
    projects: tuple[str, ...] = BOTH
    xfail: str | dict[str, str] | None = None
    why: str = ""

    xfail_for = Case.xfail_for


SOME = "rowid IN (SELECT rowid FROM {t} WHERE {part_col} = '{day}' LIMIT {n})"


def _some(table: str, n: int = 3) -> str:
    return SOME.replace("{t}", table).replace("{n}", str(n))


# Three labelled rows of the day (most rows have no event, and a NULL stays NULL).
LABEL_SOON = ("UPDATE {labels} SET {label_ts} = 'soon' WHERE rowid IN (SELECT rowid FROM {labels} "
              "WHERE {part_col} = '{day}' AND {label_ts} IS NOT NULL LIMIT 3)")
VAL_OFF = ("validate", "{where}", *DATE, "--env", "offline")
VAL_ON = ("validate", "{where}", *DATE, "--env", "online")

CORRUPTIONS: tuple[Corruption, ...] = (
    Corruption("contract_column_dropped", ("ALTER TABLE {offline} DROP COLUMN {dropped}",),
               VAL_OFF, 2, "expected column(s) ['{dropped}'] in table '{offline}' of warehouse"),
    Corruption("contract_column_dropped_drift", ("ALTER TABLE {offline} DROP COLUMN {dropped}",),
               ("drift", "{where}", *DATE, "--html", "{tmp}/html"), 2,
               "expected columns ['{dropped}'] in table '{offline}'", ONE),
    Corruption("online_table_dropped", ("DROP TABLE {online}",), VAL_ON, 2,
               "expected table '{online}' in warehouse", ONE),
    Corruption("online_table_dropped_skew", ("DROP TABLE {online}",),
               ("skew", "{where}", *DATE, "--html", "{tmp}/html"), 2,
               "expected table '{online}' in warehouse"),
    Corruption("labels_table_dropped_gate", ("DROP TABLE {labels}",),
               ("gate", "{where}", "--as-of", "{as_of}"), 2,
               "expected table '{labels}' in warehouse"),
    Corruption("text_in_a_number_column",
               ("UPDATE {offline} SET {number} = 'abc' WHERE " + _some("{offline}", 5),),
               VAL_OFF, 1, "5 of {day_rows} rows of {number} are not of type number",
               why="a dtype finding (a real failed check)"),
    Corruption("text_in_an_online_number_column",
               ("UPDATE {online} SET {online_number} = 'n/a' WHERE " + _some("{online}", 5),),
               VAL_ON, 1, "rows of {online_number} are not of type number"),
    Corruption("text_in_a_number_column_skew",
               ("UPDATE {offline} SET {number} = 'abc' WHERE " + _some("{offline}", 5),),
               ("skew", "{where}", *DATE, "--html", "{tmp}/html"), 1, "{number}", ONE),
    Corruption("text_in_a_served_feature_replay",
               ("UPDATE {online} SET {online_number} = 'n/a' WHERE " + _some("{online}", 5),),
               ("replay", "{where}", *DATE, "--model", "served"), (1, 2), "{online_number}", ONE,
               why="either a finding on the column (1) or a clear input error naming it (2)"),
    Corruption("float_in_an_integer_column",
               ("UPDATE {offline} SET {integer} = 700.5 WHERE " + _some("{offline}"),),
               VAL_OFF, 1, "3 of {day_rows} rows of {integer} are not of type integer", ONE),
    Corruption("null_keys", ("!nullable {offline} {key_col}",
                             "UPDATE {offline} SET {key_col} = NULL WHERE " + _some("{offline}")),
               VAL_OFF, 1, "3 of {day_rows} rows of {key_col} are null"),
    Corruption("null_keys_skew", ("!nullable {offline} {key_col}",
                                  "UPDATE {offline} SET {key_col} = NULL WHERE "
                                  + _some("{offline}")),
               ("skew", "{where}", *DATE, "--html", "{tmp}/html"), 1, "null key", ONE),
    Corruption("duplicate_keys", ("INSERT INTO {offline} SELECT * FROM {offline} WHERE "
                                  "{part_col} = '{day}' LIMIT 4",),
               VAL_OFF, 1, "rows of {key_col} repeat a key that must be unique"),
    Corruption("yesterday_in_a_timestamp",
               ("UPDATE {online} SET {served_ts} = 'yesterday' WHERE " + _some("{online}"),),
               VAL_ON, 1, "rows of {served_ts} are not of type timestamp"),
    Corruption("yesterday_in_the_event_time",
               ("UPDATE {impressions} SET {event_ts} = 'yesterday' WHERE "
                + _some("{impressions}"),),
               ("validate", "{where}", *DATE, "--env", "offline", "--dataset", "impressions"), 1,
               "rows of {event_ts} are not of type timestamp"),
    Corruption("yesterday_in_the_event_time_freshness",
               ("UPDATE {impressions} SET {event_ts} = 'yesterday' WHERE "
                + _some("{impressions}"),),
               ("freshness", "{where}", *DATE, "--html", "{tmp}/html"), 1,
               "3 of {day_rows} rows have {event_ts} text that is not a timestamp"),
    Corruption("text_in_a_label_timestamp",
               (LABEL_SOON,),
               ("validate", "{where}", *DATE, "--env", "offline", "--dataset", "labels"), 1,
               "rows of {label_ts} are not of type timestamp"),
    Corruption("text_in_a_label_timestamp_gate",
               (LABEL_SOON,),
               ("gate", "{where}", "--as-of", "{as_of}"), 2,
               "column '{label_ts}': expected timestamps"),
    Corruption("plus_infinity", ("UPDATE {offline} SET {number} = 9e999 WHERE "
                                 + _some("{offline}"),),
               VAL_OFF, 1, "3 of {day_rows} rows of {number} are not finite"),
    Corruption("minus_infinity", ("UPDATE {offline} SET {number} = -9e999 WHERE "
                                  + _some("{offline}"),),
               VAL_OFF, 1, "rows of {number} are not finite", ONE),
    Corruption("nan_stored_as_null", ("UPDATE {offline} SET {number} = NULL WHERE "
                                      + _some("{offline}"),),
               VAL_OFF, 1, "rows of {number} are null",
               why="SQLite stores NaN as NULL: a required feature's null finding"),
    Corruption("value_outside_the_enum", ("UPDATE {offline} SET {category} = 'bogus' WHERE "
                                          + _some("{offline}", 2),),
               VAL_OFF, 1, "2 of {day_rows} rows of {category} are not one of", ONE,
               why="a real failed check"),
    Corruption("empty_table", ("DELETE FROM {online}",), VAL_ON, 2,
               "expected rows for partition {part_col}={day} in table '{online}'"),
    Corruption("partition_missing_online_skew", ("DELETE FROM {online} WHERE {part_col} = '{day}'",),
               ("skew", "{where}", *DATE, "--html", "{tmp}/html"), 2,
               "expected rows with {part_col} = {day} in table '{online}'", ONE),
    Corruption("view_instead_of_a_table",
               ("ALTER TABLE {offline} RENAME TO {offline}__t",
                "CREATE VIEW {offline} AS SELECT * FROM {offline}__t"),
               VAL_OFF, 0, "pass", why="a view with the contract's columns is as good as a table"),
    Corruption("view_instead_of_a_table_drift",
               ("ALTER TABLE {offline} RENAME TO {offline}__t",
                "CREATE VIEW {offline} AS SELECT * FROM {offline}__t"),
               ("drift", "{where}", *DATE, "--html", "{tmp}/html"), 0, "drift", ONE),
    Corruption("declared_types_lost", ("!ctas {offline}",), VAL_OFF, 0, "pass", ONE,
               why="CREATE TABLE AS SELECT declares the date column NUM: the rows are intact, "
                   "only the declared types are gone"),
    Corruption("not_a_database", ("!garbage",), VAL_OFF, 2,
               "expected a SQLite database, found a file that is not one at"),
    Corruption("zero_byte_file", ("!zero",), VAL_OFF, 2, "expected table '{offline}' in warehouse"),
)


def corruption_params(corruptions: Sequence[Corruption]):
    import pytest

    out = []
    for c in corruptions:
        for project in c.projects:
            reason = c.xfail_for(project)
            marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
            out.append(pytest.param(c, project, marks=marks, id=f"{c.id}-{project}"))
    return out


# -- the harness -------------------------------------------------------------------------------


def make_files(tmp: Path, ctx: Ctx) -> dict[str, str]:
    """The files a case template may name, in the test's own folder."""
    (tmp / "a_file").write_text("just text\n")
    (tmp / "a_dir").mkdir()
    (tmp / "empty.yaml").write_bytes(b"")
    (tmp / "bad.yaml").write_text("name: x\njust: [unclosed\n")
    (tmp / "list.yaml").write_text("- a\n- b\n")
    (tmp / "binary.yaml").write_bytes(bytes(range(256)) * 4)
    not_model = tmp / "not_model"
    not_model.mkdir()
    (not_model / "notes.json").write_text("{}\n")
    (tmp / "thresholds.yaml").write_text("floors: {auc: 3}\n")
    contracts = _contract_paths(ctx)
    missing = tmp / "p_missing"
    missing.mkdir()
    (missing / "funnelguard.yaml").write_text(
        "name: broken\ncontracts:\n  impressions: nope.yaml\n  features: nope2.yaml\n"
        "  labels: nope3.yaml\n")
    nolabels = tmp / "p_nolabels"
    nolabels.mkdir()
    (nolabels / "funnelguard.yaml").write_text(
        f"name: half\ncontracts:\n  impressions: {contracts['impressions']}\n"
        f"  features: {contracts['features']}\n")
    extra = yaml.safe_load(ctx.features_contract.read_text())
    extra["schema"][0]["properties"].append({"name": "shoe_size", "logicalType": "integer",
                                             "required": True})
    (tmp / "extra_column.yaml").write_text(yaml.safe_dump(extra, sort_keys=False))
    config = tmp / "train.yaml"
    config.write_text(_TRAIN_CONFIG)
    project_copy = tmp / "existing_project"  # init must refuse it: a copy, never the fixture's
    project_copy.mkdir()
    shutil.copyfile(ctx.project, project_copy / "funnelguard.yaml")
    return {"tmp": str(tmp), "file": str(tmp / "a_file"), "dir": str(tmp / "a_dir"),
            "empty": str(tmp / "empty.yaml"), "bad_yaml": str(tmp / "bad.yaml"),
            "list_yaml": str(tmp / "list.yaml"), "binary": str(tmp / "binary.yaml"),
            "not_model": str(not_model), "bad_thresholds": str(tmp / "thresholds.yaml"),
            "p_missing": str(missing), "p_nolabels": str(nolabels),
            "train_config": str(config), "project_dir": str(project_copy),
            "extra_contract": str(tmp / "extra_column.yaml")}


# Small and fast; any project (ids get default_id_buckets).
_TRAIN_CONFIG = """\
model: {trunk: [16, 8], embedding_dim: 4, head_hidden: 8, dense_dim: 8, default_id_buckets: 100}
optim: {batch_size: 512, epochs: 1, max_steps: 4}
run: {progress: false, tensorboard: false, checkpoint_every: 0}
"""


def _contract_paths(ctx: Ctx) -> dict[str, str]:
    from funnelguard.project import load_project

    project = load_project(ctx.project)
    return {part: str(c.path) for part, c in project.contracts.items()}


def _fields(ctx: Ctx, files: dict[str, str]) -> dict[str, str]:
    values = {f.name: str(getattr(ctx, f.name)) for f in dataclasses.fields(ctx)
              if f.name != "where"}
    return {**values, **files}


def expand(template: Sequence[str], ctx: Ctx, files: dict[str, str]) -> list[str]:
    """The argv of a template: fields filled, ``{where}`` / ``{wh}`` expanded to flags."""
    values = _fields(ctx, files)
    argv: list[str] = []
    for token in template:
        if token == "{where}":
            argv.extend(ctx.where)
        elif token == "{wh}":
            argv.extend(("--warehouse", ctx.warehouse))
        else:
            argv.append(token.format(**values))
    return argv


def fill(text: str, ctx: Ctx, files: dict[str, str]) -> str:
    return text.format(**_fields(ctx, files))


@dataclass
class Outcome:
    """What one in-process run did."""

    code: int | None
    out: str
    err: str
    traceback: str | None
    result: object = None

    @property
    def text(self) -> str:
        return self.out + "\n" + self.err


def run_in_process(run_cli, capsys, argv: Sequence[str]) -> Outcome:
    """``run_cli(*argv)``; an exception escaping it is kept as the traceback it would print."""
    _rebind_logging_streams()
    capsys.readouterr()
    tb = None
    result = None
    try:
        code, result = run_cli(*argv)
    except SystemExit as exc:  # argparse: usage errors
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except Exception:  # noqa: BLE001 - the very thing the battery looks for
        code, tb = None, traceback.format_exc()
    captured = capsys.readouterr()
    return Outcome(code, captured.out, captured.err, tb, result)


def _rebind_logging_streams() -> None:
    """Point log handlers left on an earlier test's (closed) captured stream at this one's.

    Libraries imported by some commands (Evidently, Airflow) install stream handlers bound to
    the stderr of the moment; in one process per command (the real CLI) that stream stays
    open. Without this a later test sees logging's own "--- Logging error ---" traceback,
    which is the harness's, not the product's.
    """
    import logging

    loggers = [logging.getLogger(), *(lg for lg in logging.Logger.manager.loggerDict.values()
                                      if isinstance(lg, logging.Logger))]
    for logger in loggers:
        for handler in logger.handlers:
            stream = getattr(handler, "stream", None)
            if isinstance(handler, logging.StreamHandler) and getattr(stream, "closed", False):
                handler.stream = sys.stderr  # setStream() would flush the closed one


def assert_outcome(o: Outcome, code: int | tuple[int, ...], message: str) -> None:
    """No traceback, the exit code, the message."""
    assert o.traceback is None, f"traceback escaped the CLI:\n{o.traceback[-3000:]}"
    assert "Traceback (most recent call last)" not in o.text, o.text[-3000:]
    codes = code if isinstance(code, tuple) else (code,)
    assert o.code in codes, f"exit {o.code}, expected {code}; output:\n{o.text[-3000:]}"
    assert message in o.text, f"expected {message!r} in the output:\n{o.text[-3000:]}"


# -- the results store seeded before each case ---------------------------------------------------


def seed_store(ctx: Ctx, path: Path) -> Path:
    """A SQLite store holding this project's validate runs of ``seed_day`` (both environments),
    one of them failing, so it has open alerts too. Built once per session and copied."""
    from funnelguard.cli import run

    url = f"sqlite:///{path}"
    for env in ("offline", "online"):
        code, _ = run(["-q", "validate", *ctx.where, "--date", ctx.seed_day, "--env", env,
                       "--store", url])
        assert code == 0, (ctx.name, env, code)
    # A failing run (a partition that never arrived) adds failing findings and alert state.
    code, _ = run(["-q", "freshness", *ctx.where, "--date", "2031-01-01", "--store", url,
                   "--html", str(path.parent / "html")])
    assert code == 1, (ctx.name, "freshness", code)
    return path


_SEEDED: dict[tuple[str, str], Path] = {}


def seeded_stores(ctxs: dict[str, Ctx], tmp_path_factory) -> dict[str, Path]:
    """:func:`seed_store` of each project, once per session (both test files share them)."""
    out = {}
    for name, ctx in ctxs.items():
        key = (name, ctx.warehouse)
        if key not in _SEEDED:
            _SEEDED[key] = seed_store(ctx, tmp_path_factory.mktemp(f"seeded_{name}") / "results.db")
        out[name] = _SEEDED[key]
    return out


def store_rows(path: Path) -> dict[int, tuple]:
    """id -> (command, dataset, environment, partition, status, findings) of every stored run,
    read with sqlite3 (not the product's code)."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as con:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = con.execute(
            "SELECT r.id, r.command, r.dataset, r.environment, r.partition, r.status, "
            "(SELECT count(*) FROM fg_findings f WHERE f.run_id = r.id) FROM fg_runs r").fetchall()
    return {r[0]: tuple(r[1:]) for r in rows}


def assert_intact(before: dict[int, tuple], path: Path) -> None:
    """Every run stored before is still there, unchanged, with all its findings."""
    after = store_rows(path)
    lost = {k: v for k, v in before.items() if after.get(k) != v}
    assert not lost, f"stored runs changed or lost: {lost} -> {[after.get(k) for k in lost]}"


# -- breaking a copied warehouse -----------------------------------------------------------------


def break_warehouse(ctx: Ctx, corruption: Corruption, dest: Path, files: dict[str, str]) -> Path:
    """Copy the project's warehouse to ``dest`` and apply ``corruption`` to the copy."""
    shutil.copyfile(ctx.warehouse_file, dest)
    for raw in corruption.sql:
        stmt = fill(raw, ctx, files)
        if stmt == "!garbage":
            dest.write_text("this is not a database\n" * 200)
        elif stmt == "!zero":
            dest.write_bytes(b"")
        elif stmt.startswith("!nullable "):
            _, table, col = stmt.split()
            _rebuild(dest, table, lambda sql, c=col: re.sub(
                rf"\b{c}\b(\s+\w+)\s+NOT NULL", rf"{c}\1", sql, count=1))
        elif stmt.startswith("!ctas "):
            _, table = stmt.split()
            with sqlite3.connect(dest) as con:
                con.execute(f"ALTER TABLE {table} RENAME TO {table}__old")
                con.execute(f"CREATE TABLE {table} AS SELECT * FROM {table}__old")
                con.execute(f"DROP TABLE {table}__old")
        else:
            with sqlite3.connect(dest) as con:
                con.execute(stmt)
    return dest


def _rebuild(path: Path, table: str, edit) -> None:
    with sqlite3.connect(path) as con:
        sql = con.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?",
                          (table,)).fetchone()[0]
        new = edit(sql)
        assert new != sql, f"nothing to change in {sql}"
        con.execute(new.replace(f"TABLE {table}", f"TABLE {table}__new", 1))
        con.execute(f"INSERT INTO {table}__new SELECT * FROM {table}")
        con.execute(f"DROP TABLE {table}")
        con.execute(f"ALTER TABLE {table}__new RENAME TO {table}")

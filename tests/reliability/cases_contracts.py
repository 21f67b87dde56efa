"""Bad inputs of the contract tooling: ``contracts lint``, ``contracts diff``,
``contracts infer`` and ``init``.
"""

from __future__ import annotations

from tests.reliability.case_types import MKT, ONE, Case

__all__ = ["CONTRACT_CASES"]

CONTRACT_CASES: tuple[Case, ...] = (
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
)

"""Bad files and URLs named on the command line: the project and contract files
(``--project``, ``$FUNNELGUARD_PROJECT``, ``--contract``), the warehouse and store URLs, and
output paths that cannot be written.
"""

from __future__ import annotations

from tests.reliability.case_types import DATE, MKT, ONE, Case, V

__all__ = ["PATH_CASES"]

PATH_CASES: tuple[Case, ...] = (
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
)

"""Bad inputs of the model commands: ``train``, ``evaluate``, ``replay`` and ``explain``
(configs, model directories, thresholds files, keys).
"""

from __future__ import annotations

from tests.reliability.case_types import DATE, ONE, Case

__all__ = ["MODEL_CASES"]

MODEL_CASES: tuple[Case, ...] = (
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
)

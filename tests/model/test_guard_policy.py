"""The guard's new pure pieces: the batch audit, the id-row check, the action policy."""

from __future__ import annotations

import math

import torch

from model.batch_audit import BatchAudit, label_problems
from model.config import GuardConfig
from model.guard import Anomaly, GuardState
from model.policy import GuardAction, action_findings, choose_action
from model.probe_checks import check_embedding_rows

TASKS = ("a", "b")


def test_labels_outside_0_1_and_known_rows_with_missing_labels():
    labels = torch.tensor([[0.0, 1.0], [2.0, 0.0], [float("nan"), 1.0], [1.0, 0.0]])
    masks = torch.tensor([[True, True], [True, True], [False, True], [True, True]])
    found = label_problems(7, labels, masks, TASKS)
    assert found.kind == "invalid_labels" and found.tasks == ("a",)
    assert found.evidence["label_problems"]["a"]["invalid_labels"] == 2
    missing = torch.zeros(4, 2, dtype=torch.bool)
    missing[3, 1] = True  # b's label of row 3 was empty in the frame, its mask says known
    clean = labels.nan_to_num(0.0).clamp(0, 1)
    found = label_problems(7, clean, masks, TASKS, missing)
    assert found.tasks == ("b",) and found.evidence["label_problems"]["b"]["known_but_missing"] == 1
    masks[3, 1] = False
    assert label_problems(7, clean, masks, TASKS, missing) is None


def test_audit_flags_only_the_batches_that_hold_a_bad_row():
    from model.batches import TrainingTensors
    from model.encoding import FeatureBatch

    dense = torch.zeros(8, 2)
    dense[5, 0] = 3.0  # outside the encoded range [-2, 2] of the first feature
    dense[6, 0] = float("inf")  # non-finite: the loss checks' business
    data = TrainingTensors(FeatureBatch(torch.zeros(8, 0, dtype=torch.long),
                                        torch.zeros(8, 0, dtype=torch.long), dense),
                           torch.zeros(8, 2), torch.ones(8, 2, dtype=torch.bool), TASKS, None)
    audit = BatchAudit(TASKS, ("x",), ((0.0, 1.0),), torch.tensor([-2.0]), torch.tensor([2.0]))
    assert audit.check(0, torch.tensor([0, 1, 2, 6]), data) is None
    found = audit.check(1, torch.tensor([4, 5]), data)
    assert found.kind == "out_of_contract_input" and found.evidence["features"] == \
        {"x": {"rows": 1, "range": [0.0, 1.0]}}


def _stats(ratio, bucket):
    return {"ids": {"rows": 50, "median": 1.0, "ratio": ratio, "buckets": [bucket, 3, 4],
                    "norms": [ratio, 1.0, 1.0]}}


def test_exploding_row_needs_the_same_bucket_probe_after_probe():
    cfg = GuardConfig(probe_patience=3)
    state = GuardState.fresh(TASKS, cfg)
    assert check_embedding_rows(0, _stats(400.0, 9), state, cfg) is None
    assert check_embedding_rows(10, _stats(400.0, 11), state, cfg) is None  # another bucket
    assert check_embedding_rows(20, _stats(400.0, 11), state, cfg) is None
    found = check_embedding_rows(30, _stats(500.0, 11), state, cfg)
    assert found.kind == "embedding_row_explosion" and found.evidence["bucket"] == 11
    assert found.evidence["table"] == "ids" and found.value == 500.0
    quiet = GuardState.fresh(TASKS, cfg)
    assert all(check_embedding_rows(s, _stats(120.0, 9), quiet, cfg) is None for s in range(6))
    # Once the table's usual ratio is known, a ratio above 150x but under 1.5x usual is noise.
    usual = GuardState.fresh(TASKS, cfg)
    for s in range(3):
        check_embedding_rows(s, _stats(140.0, s), usual, cfg)
    assert all(check_embedding_rows(s, _stats(160.0, 9), usual, cfg) is None
               for s in range(3, 9))
    back = GuardState.from_dict(state.to_dict(), cfg)
    assert back.row_streak == state.row_streak and back.to_dict() == state.to_dict()


def test_policy_budgets_and_the_kinds_that_always_stop():
    nan_loss = Anomaly("non_finite_loss", 4, "loss nan", ("a",))
    stop = GuardConfig()
    assert choose_action(nan_loss, stop, {})[0] == "stop"
    skip = GuardConfig(on_anomaly="skip_batch", max_skipped_batches=2)
    assert choose_action(nan_loss, skip, {"skip_batch": 1})[0] == "skip_batch"
    action, reason = choose_action(nan_loss, skip, {"skip_batch": 2})
    assert action == "stop" and "budget spent (2 of guard.max_skipped_batches 2)" in reason
    roll = GuardConfig(on_anomaly="rollback", max_rollbacks=1)
    assert choose_action(nan_loss, roll, {"skip_batch": 9})[0] == "rollback"
    scaler = Anomaly("scaler_collapse", 4, "scale 0.5")
    assert choose_action(scaler, roll, {})[0] == "stop"
    done = [GuardAction(4, "skip_batch", "non_finite_loss", ("a",), "loss nan", 1, 2),
            GuardAction(9, "stop", "non_finite_loss")]
    (finding,) = action_findings(done)
    assert (finding.check, finding.value, finding.count, finding.task) == \
        ("training_action", "skip_batch", 4, "a")
    assert finding.severity == "warning" and not finding.passed
    assert math.isclose(finding.threshold, 2.0)

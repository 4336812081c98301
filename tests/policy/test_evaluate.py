"""Accuracy rows and their summary over seeds (the layout notebooks 04/05 write to metrics.json)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from valor_lib.policy.evaluate import OVERALL, accuracy_row, seed_summary
from valor_lib.policy.figures import history_frame


def test_accuracy_row_adds_the_unweighted_mean():
    runs = {"a": SimpleNamespace(summary={"accuracy_strict": 50.0, "accuracy_paper": 60.0}),
            "b": SimpleNamespace(summary={"accuracy_strict": 25.0, "accuracy_paper": 30.0})}
    assert accuracy_row(runs) == {"a": 50.0, "b": 25.0, OVERALL: 37.5}
    assert accuracy_row(runs, "paper")[OVERALL] == 45.0


def test_seed_summary_layout_and_statistics():
    summary = seed_summary({0: {"x": 10.0, OVERALL: 10.0}, 1: {"x": 20.0, OVERALL: 30.0},
                            2: {"x": 30.0, OVERALL: 20.0}})
    assert summary["seeds"]["1"] == {"x": 20.0, OVERALL: 30.0}
    assert summary["mean"] == {"x": 20.0, OVERALL: 20.0}
    assert summary["std"] == {"x": 10.0, OVERALL: 10.0}
    assert (summary["min"]["x"], summary["max"]["x"]) == (10.0, 30.0)
    assert seed_summary({5: {"x": 1.0}})["std"] == {"x": 0.0}
    with pytest.raises(ValueError):
        seed_summary({})


def test_history_frame_keeps_step_rows_only():
    frame = history_frame([{"step": 1, "reward": 0.2, "kl": 0.0}, {"step": 2, "reward": 0.4, "kl": 0.1},
                           {"step": 2, "train_runtime": 3.0}])
    assert list(frame.index) == [1, 2] and list(frame["reward"]) == [0.2, 0.4]
    assert history_frame([]).empty

"""Item-by-item detector comparisons: within one run, and pooled over draws of the toy detector."""

from types import SimpleNamespace

import numpy as np
import pytest

from valor_lib.grounding.paired import (
    item_score_table,
    paired_changes,
    paired_rows,
    pooled_change,
    pooled_rows,
    verdict,
)


def run(scores, benchmark="vsr"):
    return {benchmark: SimpleNamespace(records=[{"id": f"q{i:02d}", "score_strict": s} for i, s in enumerate(scores)])}


BASE = [1.0] * 10 + [0.0] * 10
RUNS = {"pretrained": run(BASE), "verified-seed0": run([1.0] * 20), "verified-seed1": run([1.0] * 15 + [0.0] * 5),
        "unverified-seed0": run(BASE)}


def test_paired_changes_compare_items_with_the_pretrained_detector():
    changes = paired_changes(RUNS, rounds=500)["vsr"]
    # verified: items 10-14 right in both seeds (+100), 15-19 right in one (+50): +37.5 points over 20 items
    assert changes["verified"]["change"] == 37.5 and changes["verified"]["better"] == 10
    assert changes["verified"]["worse"] == 0 and changes["verified"]["ci95"][0] > 0
    assert changes["unverified"] == {"change": 0.0, "ci95": [0.0, 0.0], "better": 0, "worse": 0, "items": 20}
    rows = paired_rows(paired_changes(RUNS, rounds=500))
    assert rows[0]["items better / worse"] == "10 / 0 of 20" and rows[1]["95% interval over items"] == "[+0.0, +0.0]"


def test_item_score_table_keeps_seed_means_per_sorted_id():
    table = item_score_table(RUNS)["vsr"]
    assert table["ids"] == [f"q{i:02d}" for i in range(20)]
    assert table["pretrained"] == BASE and table["unverified"] == BASE
    assert table["verified"] == [1.0] * 15 + [0.5] * 5
    partial = item_score_table({"pretrained": run([1.0, 0.0]), "verified-seed0": run([1.0])})["vsr"]
    assert partial == {"ids": ["q00", "q01"], "pretrained": [1.0, 0.0], "verified": [1.0, None]}


def table(first, second, benchmark="vsr", ids=None):
    return {benchmark: {"ids": ids or [f"q{i}" for i in range(len(first))], "verified": first, "pretrained": second}}


def test_pooled_change_averages_draws_and_resamples_draws_and_items():
    draws = {"a": table([1.0] * 8 + [0.0] * 2, [0.0] * 10), "b": table([0.0] * 10, [0.0] * 10)}
    change = pooled_change(draws, "verified", "pretrained", ["vsr"], rounds=2000)
    assert change["change"] == 40.0 and change["by_draw"] == {"a": 80.0, "b": 0.0}
    assert change["draws"] == 2 and change["items"] == 10
    # resampling the two draws alone spans 0 (both b) to 80 (both a): the interval reaches both ends
    assert change["ci95"][0] == 0.0 and change["ci95"][1] >= 75.0 and verdict(change) == "undecided"
    one = pooled_change({"a": draws["a"]}, "verified", "pretrained", ["vsr"], rounds=2000)
    assert one["ci95"][0] >= 40 and verdict(one) == "verified > pretrained"


def test_pooled_change_weights_benchmarks_equally_and_uses_shared_items():
    both = table([1.0] * 4, [0.0] * 4) | table([0.0, 0.0], [1.0, 1.0], benchmark="countbenchqa")
    change = pooled_change({"a": both}, "verified", "pretrained", ["vsr", "countbenchqa"], rounds=200)
    assert change["change"] == 0.0 and change["items"] == 6  # (+100 - 100) / 2, not weighted by item counts
    assert change["ci95"] == [0.0, 0.0]  # items resampled within each benchmark: every resample is +100 and -100
    swapped = pooled_change({"a": both}, "verified", "pretrained", ["countbenchqa", "vsr"], rounds=200)
    assert swapped == change
    shifted = {"a": table([1.0, 1.0, None], [0.0, 0.0, 0.0], ids=["x", "y", "z"]),
               "b": table([1.0, 0.0], [0.0, 0.0], ids=["y", "w"])}
    assert pooled_change(shifted, "verified", "pretrained", ["vsr"])["items"] == 1  # only "y" is scored by both


def test_pooled_change_skips_draws_without_both_kinds():
    draws = {"a": table([1.0], [0.0]), "old": {"vsr": {"ids": ["q0"], "pretrained": [0.0]}}}
    assert pooled_change(draws, "verified", "pretrained", ["vsr"])["draws"] == 1
    assert pooled_change({"old": draws["old"]}, "verified", "pretrained", ["vsr"]) is None
    assert pooled_change(draws, "verified", "pretrained", ["countbenchqa"]) is None


def test_pooled_rows_give_one_row_per_mode_and_comparison_with_a_verdict():
    scores = np.zeros(30).tolist()
    draws = {"a": {"vsr": {"ids": [f"q{i}" for i in range(30)], "pretrained": scores, "verified": [1.0] * 30,
                           "unverified": scores}}}
    rows = pooled_rows({"common": draws, "own": {}}, ["vsr"], rounds=300)
    assert [(r["thresholds"], r["comparison"]) for r in rows] == [
        ("common", "verified - pretrained"), ("common", "unverified - pretrained"), ("common", "verified - unverified")]
    assert [r["verdict"] for r in rows] == ["verified > pretrained", "undecided", "verified > unverified"]
    assert rows[0]["by draw"] == [100.0] and rows[0]["items"] == 30


def test_draws_answering_the_same_items_share_their_resamples():
    rng = np.random.default_rng(3)
    first, second = rng.integers(0, 2, 40).astype(float).tolist(), rng.integers(0, 2, 40).astype(float).tolist()
    one = table(first, second)
    # two identical draws: every resample takes the same items in both, so the interval is as wide as one draw's
    # (items resampled apart in each draw would narrow it by about 1/sqrt(2): some 13 points here)
    twice = pooled_change({"a": one, "b": one}, "verified", "pretrained", ["vsr"], rounds=3000)["ci95"]
    once = pooled_change({"a": one}, "verified", "pretrained", ["vsr"], rounds=3000)["ci95"]
    assert twice == pytest.approx(once, abs=2.5)


def test_verdict_reads_the_interval():
    assert verdict({"first": "a", "second": "b", "ci95": [-3.0, -0.5]}) == "a < b"
    assert verdict({"first": "a", "second": "b", "ci95": [0.5, 3.0]}) == "a > b"
    assert verdict({"first": "a", "second": "b", "ci95": [0.0, 3.0]}) == "undecided"


def test_the_pooled_intervals_figure_draws_every_row():
    import matplotlib

    matplotlib.use("Agg")
    from valor_lib.grounding.figures import pooled_intervals

    draws = {name: {"vsr": {"ids": ["a", "b"], "pretrained": [0.0, 1.0], "verified": [1.0, 1.0]}} for name in "xy"}
    rows = pooled_rows({"common": draws}, ["vsr"], rounds=100)
    fig = pooled_intervals(rows)
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["verified - pretrained (common)"]
    assert len(fig.axes[0].collections[0].get_offsets()) == 2  # one dot per draw

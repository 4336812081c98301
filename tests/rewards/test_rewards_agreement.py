"""The annotation CSV format, the labelling widget, and agreement statistics."""

import pandas as pd
import pytest

from valor_lib.rewards.agreement import (
    agreement_figure,
    agreement_table,
    confusion,
    head_counts,
    verdict_frame,
)
from valor_lib.rewards.annotations import (
    AnnotationWidget,
    annotation_frame,
    labelled,
    read_annotations,
    write_annotations,
)

HEADS4 = ("logic", "attribute", "spatial", "adherence")


def _annotations(n=4):
    rows = [{"output_id": f"o{i}", "query": "Is it?", "plan": "1. a\n2. b", "code": "final_answer = 1",
             "format": 1, "syntax": 1, "logic": i % 2, "attribute": 1, "spatial": int(i < 2), "adherence": 1}
            for i in range(n)]
    return annotation_frame(rows)


def _verdicts(values):
    return pd.DataFrame([{"output_id": f"o{i}", **dict(zip(HEADS4, row, strict=True))}
                         for i, row in enumerate(values)]).astype({h: "Int64" for h in HEADS4})


def test_csv_round_trip_and_validation(tmp_path):
    frame = _annotations()
    frame.loc[0, "notes"] = 'plan says "left", code, too'
    path = write_annotations(frame, tmp_path / "a.csv")
    back = read_annotations(path)
    pd.testing.assert_frame_equal(back, frame, check_dtype=False)
    assert list(back.columns)[:4] == ["output_id", "query", "plan", "code"]
    partial = annotation_frame([{"output_id": "x", "query": "q", "plan": "p", "code": "c", "format": 1}])
    assert partial["logic"].isna().all() and len(labelled(partial)) == 0
    with pytest.raises(ValueError, match="0, 1 or nothing"):
        annotation_frame([{"output_id": "x", "query": "q", "plan": "p", "code": "c", "logic": 2}])
    with pytest.raises(ValueError, match="repeat"):
        annotation_frame([{"output_id": "x", "query": "q", "plan": "p", "code": "c"}] * 2)
    with pytest.raises(ValueError, match="lacks"):
        annotation_frame([{"output_id": "x", "query": "q"}])


def test_agreement_statistics():
    truth = _annotations()
    perfect = _verdicts([(0, 1, 1, 1), (1, 1, 1, 1), (0, 1, 0, 1), (1, 1, 0, 1)])
    stingy = _verdicts([(0, 0, 0, 1), (0, 1, 1, 1), (0, 1, 0, 1), (pd.NA, 1, 0, 1)])
    table = agreement_table(truth, {"perfect": perfect, "stingy": stingy})
    assert table.loc["perfect", "overall"] == 1.0 and table.loc["perfect", "exact"] == 1.0
    assert table.loc["stingy", "overall"] == pytest.approx(12 / 16) and table.loc["stingy", "exact"] == 0.25
    assert table.loc["stingy", "under-rewarding"] == pytest.approx(3 / 16)
    assert table.loc["stingy", "failed"] == pytest.approx(1 / 16) and table.loc["stingy", "over-rewarding"] == 0
    counts = head_counts(truth, stingy)
    assert counts.loc["logic", "fn"] == 1 and counts.loc["logic", "failed"] == 0.25
    matrix = confusion(truth, stingy, "logic")
    assert matrix.loc["annotated 1", "verifier 0"] == 1 and matrix.loc["annotated 1", "failed"] == 1
    assert agreement_figure(table, paper={"Gemini-2.5-Flash": 0.87}) is not None


def test_verdict_frame_from_results():
    from reward_cases import GOOD, QUERY, TOOL_API

    from valor_lib.rewards import RewardScorer

    scorer = RewardScorer("toy:verifier", tool_api=TOOL_API, brain_options={"error_rate": 0.0})
    frame = verdict_frame(["a"], scorer.score_batch([QUERY], [GOOD], progress=False))
    scorer.close()
    assert frame.to_dict("records") == [{"output_id": "a", "logic": 1, "attribute": 1, "spatial": 1, "adherence": 1}]


def test_widget_saves_labels(tmp_path):
    pytest.importorskip("ipywidgets")
    frame = _annotations(3)
    frame[list(HEADS4)] = pd.NA
    path = write_annotations(frame, tmp_path / "a.csv")
    widget = AnnotationWidget(path)
    assert widget.index == 0 and "o0" in widget.text.value
    widget.toggles["logic"].value = 1
    widget.toggles["spatial"].value = 0
    widget.notes.value = "drops leftmost"
    saved = read_annotations(path)
    assert saved.loc[0, "logic"] == 1 and saved.loc[0, "spatial"] == 0 and saved.loc[0, "notes"] == "drops leftmost"
    widget.go(5)
    assert widget.index == 2 and widget.toggles["logic"].value is None

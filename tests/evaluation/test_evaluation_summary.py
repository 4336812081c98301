"""How often gd_detect found nothing, in a benchmark summary."""

from valor_lib.evaluation.summary import empty_detections, summarize


def _record(calls, score=1.0):
    return {"score_strict": score, "score_paper": score,
            "tool_calls": [{"name": name, "ok": ok, **({"result": result} if ok else {})}
                           for name, ok, result in calls]}


BOX = {"bbox": [0, 0, 4, 4], "label": "cup", "score": 0.5}


def test_empty_detections_counts_calls_and_items():
    records = [_record([("gd_detect", True, []), ("gd_detect", True, [BOX])], score=0.0),
               _record([("gd_detect", True, [BOX]), ("depth", True, [[1.0]])]),
               _record([("gd_detect", False, None), ("vqa", True, "yes")]),  # a failed call is not an empty one
               _record([])]
    # 3 successful calls, 1 empty; of the 2 items with a successful call, 1 had an empty one
    assert empty_detections(records) == {"calls": 3, "empty_calls": 33.33, "items_with_empty": 50.0,
                                         "accuracy_with_empty": 0.0, "accuracy_without_empty": 100.0}


def test_empty_detections_without_calls_is_none():
    assert empty_detections([_record([("vqa", True, "no")])]) == {
        "calls": 0, "empty_calls": None, "items_with_empty": None, "accuracy_with_empty": None,
        "accuracy_without_empty": None}


def test_summary_reports_empty_detections():
    summary = summarize([_record([("gd_detect", True, [])], score=0.0), _record([("gd_detect", True, [BOX])])])
    assert summary["empty_detections"]["items_with_empty"] == 50.0
    assert summary["accuracy_strict"] == 50.0

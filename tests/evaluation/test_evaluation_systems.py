"""Stage glue: tool-cache statistics around runs, exported predictions, fingerprints of specs."""

from pathlib import Path
from types import SimpleNamespace

from eval_helpers import CountingWriter, fake_detect

from valor_lib.evaluation.benchmarks import load
from valor_lib.evaluation.fingerprint import spec_fingerprint
from valor_lib.evaluation.solvers import ProgramSolver
from valor_lib.evaluation.summary import depth_map_reuse
from valor_lib.evaluation.systems import (
    cache_savings,
    evaluate_benchmarks,
    export_predictions,
    tool_cache_stats,
)
from valor_lib.tools.cache import LRUCache


def test_spec_fingerprints_hash_local_weights_by_content(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "model.safetensors").write_bytes(b"weights-1")
    (model / "config.json").write_text("{}")
    first = spec_fingerprint(f"hf:{model}")
    assert first["kind"] == "hf" and first["weights"] and spec_fingerprint(f"hf:{model}") == first
    (model / "model.safetensors").write_bytes(b"weights-2")
    second = spec_fingerprint(f"hf:{model}")
    assert second != first
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "model.safetensors").write_bytes(b"weights-2")
    (copy / "config.json").write_text("{}")
    assert spec_fingerprint(f"hf:{copy}") == second  # content, not location
    assert spec_fingerprint("openai:gpt-5-mini") == {"spec": "openai:gpt-5-mini"}


def test_toy_backends_are_named_by_their_code():
    """A toy backend's predictions change with its code, so its identity holds its module's content hash."""
    import valor_lib.tools.depth
    import valor_lib.tools.toy_vqa
    from valor_lib.evaluation.fingerprint import file_digest

    assert spec_fingerprint("toy:vqa") == {"spec": "toy:vqa", "code": file_digest(Path(valor_lib.tools.toy_vqa.__file__))}
    assert spec_fingerprint("toy:ground-plane")["code"] == file_digest(Path(valor_lib.tools.depth.__file__))
    assert spec_fingerprint("toy:judge")["code"] != spec_fingerprint("toy:vqa")["code"]
    assert spec_fingerprint("toy:unknown-role") == {"spec": "toy:unknown-role"}


def test_module_digest_hashes_a_modules_source_file():
    import valor_lib.toyworld.queries
    from valor_lib.evaluation.fingerprint import file_digest, module_digest
    from valor_lib.policy.template_programmer import TemplateWriter

    assert module_digest("valor_lib.toyworld.queries") == file_digest(Path(valor_lib.toyworld.queries.__file__))
    assert module_digest("valor_lib.no_such_module") is None
    assert module_digest("sys") is None  # built in: no source file
    assert TemplateWriter("correct").identity()["code"] == [module_digest("valor_lib.policy.template_programmer"),
                                                          module_digest("valor_lib.toyworld.queries")]


def test_editing_a_toy_backend_changes_its_identity(tmp_path, monkeypatch):
    from valor_lib.evaluation import fingerprint

    module = tmp_path / "probe_backend.py"
    module.write_text("ANSWER = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(fingerprint.TOY_BACKEND_MODULES, "probe", "probe_backend")
    before = spec_fingerprint("toy:probe")
    module.write_text("ANSWER = 22\n")
    after = spec_fingerprint("toy:probe")
    assert before["spec"] == after["spec"] == "toy:probe" and before["code"] != after["code"]


def test_tool_cache_statistics_around_runs(toy_source, tmp_path):
    detections: LRUCache = LRUCache(64)
    toolbox = SimpleNamespace(detector=SimpleNamespace(cache=detections), depth_backend=SimpleNamespace())

    def detect(image, text):
        return detections.get_or_compute((image.tobytes(), text), lambda: fake_detect(image, text))

    solver = ProgramSolver(CountingWriter(), {"gd_detect": detect}, identity={"writer": "w"},
                           tool_stats=lambda: tool_cache_stats(toolbox))
    items = {b: load(b, toy_source) for b in ("tallyqa", "countbenchqa")}
    runs = evaluate_benchmarks(solver, items, judge=None, seed=0, batch_size=4, cache_root=tmp_path, progress=False)
    caches = runs["tallyqa"].summary["tool_caches"]
    assert set(caches) == {"detector"}  # this depth backend keeps no maps
    assert caches["detector"]["lookups"] == len(items["tallyqa"]) and caches["detector"]["computed"] >= 1
    again = evaluate_benchmarks(solver, items, judge=None, seed=0, batch_size=4, cache_root=tmp_path, progress=False)
    assert again["tallyqa"].reused and again["tallyqa"].summary["tool_caches"] == caches
    written = export_predictions({"sys": runs}, tmp_path / "out")
    assert [p.relative_to(tmp_path / "out").as_posix() for p in written] == ["sys/tallyqa.jsonl", "sys/countbenchqa.jsonl"]
    assert written[0].read_bytes() == runs["tallyqa"].path.read_bytes()


def test_cache_savings():
    before = {"depth_maps": {"hits": 2, "misses": 3}}
    after = {"depth_maps": {"hits": 12, "misses": 8}, "detector": {"hits": 0, "misses": 0}}
    assert cache_savings(before, after) == {
        "depth_maps": {"lookups": 15, "computed": 5, "saved_share": round(10 / 15, 4)},
        "detector": {"lookups": 0, "computed": 0, "saved_share": None},
    }


def test_depth_map_reuse_counts_distinct_images():
    def record(image, calls):
        return {"image_sha256": image, "tool_calls": [{"name": n, "ok": ok} for n, ok in calls]}

    records = [record("a", [("depth", True), ("depth", True), ("gd_detect", True)]),
               record("a", [("depth", True)]), record("b", [("depth", True), ("depth", False)]), record("c", [])]
    assert depth_map_reuse(records) == {"depth_calls": 4, "images": 2, "saved_share": 0.5}
    assert depth_map_reuse([record("c", [])])["saved_share"] is None

"""Every paper table next to what this repository reproduces (notebook 09).

- Paper tables: ``data/paper/table<N>_*.csv``, long format ``method, base_model, group, [training_samples,]
  benchmark, value`` (accuracy, %); Tables 10 and 11 are ``hyperparameter, value``, kept verbatim.
- Toy results: the stages' ``results/<stage>/metrics.json``, read in one place (:data:`STAGES`,
  :func:`read_toy_results`): a change in a stage's metrics layout touches one parser here.
- Comparisons: :func:`compare_table` (rows: paper methods and the toy system standing for each, columns:
  benchmark x source), :func:`claims_table` (each claim's delta in the paper and in the toy run),
  :func:`hyperparameter_check` (Tables 10/11 against params.yaml with a profile applied),
  :func:`sweep_points` (the Table 5 / Figure 7 sweeps, from ``dvc exp show --json``) and :func:`detector_draws`
  (the grounding comparison on other draws of the toy detector, from the same experiments).

Toy accuracies are strict-mode percentages; mAP and precision are fractions in the metrics and shown x 100.
"""

from __future__ import annotations

import ast
import json
import math
import re
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from valor_lib.evaluation.figures import PAPER_NAMES
from valor_lib.params import apply_profile, load_raw, validate_common, validate_section
from valor_lib.paths import MissingDataError, data_dir, repo_root, results_dir

SOURCES = ("paper", "toy")
AVERAGE = "Average"
PAPER_ONLY = "paper only"
BENCHMARK_KEYS = {name: key for key, name in PAPER_NAMES.items()}

# Numbers the paper reports outside its tables (facts.md): held-out COCO val mAP before / after fine-tuning
# (project page), pseudo-label precision after each verification stage (secondary summary of §3.2).
PAPER_COCO_MAP = {"pretrained": 48.4, "verified": 48.7}
PAPER_PRECISION = {"coarse": 0.45, "crop": 0.50, "dedup": 0.75}


# ---------------------------------------------------------------------------------------------- paper tables

def paper_table_path(number: int, paper_dir: str | Path | None = None) -> Path:
    """``data/paper/table<number>_*.csv`` (exactly one must exist)."""
    folder = Path(paper_dir) if paper_dir else data_dir("paper")
    found = sorted(folder.glob(f"table{number}_*.csv"))
    if len(found) != 1:
        raise MissingDataError(f"expected one {folder}/table{number}_*.csv, found {len(found)}: copy the paper's "
                               "tables into data/paper/")
    return found[0]


def load_paper_table(number: int, paper_dir: str | Path | None = None) -> pd.DataFrame:
    """A paper table as printed: result tables get a float ``value``; hyperparameter tables stay strings."""
    frame = pd.read_csv(paper_table_path(number, paper_dir), dtype=str, keep_default_na=False)
    if "benchmark" in frame.columns:
        frame["value"] = frame["value"].astype(float)
    return frame


def paper_row(table: pd.DataFrame, method: str) -> dict[str, float]:
    """``{toy benchmark key: value}`` of one method of a result table."""
    rows = table[table["method"] == method]
    if rows.empty:
        raise KeyError(f"method {method!r} is not in the table; it has {list(dict.fromkeys(table['method']))}")
    return {BENCHMARK_KEYS[b]: float(v) for b, v in zip(rows["benchmark"], rows["value"], strict=True)}


# ------------------------------------------------------------------------------------ stage metrics readers

def stage_notebook(stage: str) -> str:
    """The notebook that writes a stage's outputs (``notebooks/NN_<stage>.ipynb``)."""
    found = sorted((repo_root() / "notebooks").glob(f"[0-9][0-9]*_{stage}.ipynb"))
    return f"notebooks/{found[0].name}" if found else f"notebooks/NN_{stage}.ipynb"


def read_stage_metrics(stage: str) -> dict[str, Any]:
    """The ``metrics`` of ``results/<stage>/metrics.json`` (as ``Stage.write_metrics`` wrote them)."""
    path = results_dir(stage, "metrics.json", create=False)
    notebook = stage_notebook(stage)
    if not path.is_file():
        raise MissingDataError(f"missing {path}: run the {stage!r} stage first "
                               f"(`dvc repro {stage}` or `python -m valor_lib.pipeline {notebook}`)")
    payload = json.loads(path.read_text())
    if not isinstance(payload, dict) or not isinstance(payload.get("metrics"), dict):
        raise ValueError(f"{path} has no 'metrics' mapping: rerun {notebook}")
    return payload["metrics"]


def parse_evaluation(m: Mapping[str, Any]) -> dict[str, Any]:
    """Notebook 08: strict accuracy per (system, benchmark) and the paper row each system stands for."""
    return {"systems": {system: {b: s.get("accuracy_strict") for b, s in per.items()}
                        for system, per in m["systems"].items()},
            "paper_rows": {method: system for system, method in m["paper_rows"].items() if method}}


def parse_grpo(m: Mapping[str, Any]) -> dict[str, Any]:
    """Notebook 04: the base policy's accuracy, the seed-mean GRPO accuracy (empty when no run trained here, e.g.
    ``trainer: verl``), and the number of RL queries."""
    return {"base": dict(m["base"]), "grpo": dict((m["grpo"] or {"mean": {}})["mean"]), "queries": int(m["queries"])}


def parse_sft(m: Mapping[str, Any]) -> dict[str, Any]:
    """Notebook 05: seed-mean accuracy of GRPO and of SFT (same rollouts, same evaluation)."""
    return {method: dict(m[method]["mean"]) for method in ("grpo", "sft")}


def parse_detector(m: Mapping[str, Any]) -> dict[str, Any]:
    """Notebook 07: mean held-out mAP (fraction) and mean benchmark accuracy per detector kind (pretrained,
    verified, unverified) at ``common.gd_thresholds`` and (``accuracy_own``; empty when the stage chose none) with
    each detector at its own answering thresholds, the pseudo-label boxes each variant was trained on, and the item
    scores per answering mode (``item_scores``: ``{"common" | "own": valor_lib.grounding.paired.item_score_table}``;
    empty in metrics written before they were kept)."""
    def means(per_benchmark: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, float]]:
        return {b: {kind: s["mean"] for kind, s in per.items()} for b, per in per_benchmark.items()}

    return {"map": {kind: s["mean"] for kind, s in m["map"].items()}, "accuracy": means(m["accuracy"]),
            "accuracy_own": means(m.get("accuracy_own_thresholds") or {}),
            "boxes": {variant: int(s["boxes"]) for variant, s in m["pseudo_labels"].items()},
            "item_scores": dict(m.get("item_scores") or {})}


def parse_pseudo_labelling(m: Mapping[str, Any]) -> dict[str, Any]:
    """Notebook 06: pseudo-label precision (fraction) after each verification stage."""
    return dict(m["precision"])


def parse_verifier_analysis(m: Mapping[str, Any]) -> dict[str, Any]:
    """Notebook 03: agreement of each toy verifier with the labels, and the paper's agreement figures."""
    return {"toy": {name: dict(row) for name, row in m["agreement"].items()}, "paper": dict(m["paper_agreement"])}


# ToyResults field -> (stage, parser of its metrics)
STAGES: dict[str, tuple[str, Callable[[Mapping[str, Any]], dict[str, Any]]]] = {
    "evaluation": ("evaluation", parse_evaluation),
    "grpo": ("grpo_training", parse_grpo),
    "sft": ("sft_baseline", parse_sft),
    "detector": ("detector_finetuning", parse_detector),
    "precision": ("pseudo_labelling", parse_pseudo_labelling),
    "agreement": ("verifier_error_analysis", parse_verifier_analysis),
}


@dataclass(frozen=True)
class ToyRow:
    """A toy system standing for a paper row: its label and accuracy (%) per toy benchmark key."""

    system: str
    values: Mapping[str, float | None]


@dataclass(frozen=True)
class ToyResults:
    """What the earlier stages measured, parsed (see the ``parse_*`` functions for each field's layout)."""

    evaluation: dict[str, Any]
    grpo: dict[str, Any]
    sft: dict[str, Any]
    detector: dict[str, Any]
    precision: dict[str, Any]
    agreement: dict[str, Any]

    def row(self, method: str) -> ToyRow | None:
        """The evaluation system standing for a paper method (Table 1/8 naming), or None."""
        system = self.evaluation["paper_rows"].get(method)
        return ToyRow(system, self.evaluation["systems"][system]) if system else None


def parse_stage(stage: str, metrics: Mapping[str, Any]) -> dict[str, Any]:
    """Parse one stage's metrics; a layout this module does not know is an error naming the stage."""
    parser = next(p for s, p in STAGES.values() if s == stage)
    try:
        return parser(metrics)
    except (KeyError, TypeError, AttributeError) as err:
        raise ValueError(f"results/{stage}/metrics.json does not have the expected layout ({err!r}): rerun "
                         f"{stage_notebook(stage)}") from None


def read_toy_results(read: Callable[[str], Mapping[str, Any]] = read_stage_metrics) -> ToyResults:
    """Every stage's metrics this notebook compares with the paper."""
    return ToyResults(**{field: parse_stage(stage, read(stage)) for field, (stage, _) in STAGES.items()})


# ---------------------------------------------------------------------------------------------- comparisons

def compare_table(paper: pd.DataFrame, toy: Mapping[str, ToyRow | None],
                  not_comparable: Iterable[str] = ()) -> pd.DataFrame:
    """Paper vs toy, wide: index (method, toy system), columns (benchmark, source), plus an ``Average`` over the
    table's benchmarks (NaN unless all have a value). ``toy`` maps a paper method to its toy row; benchmarks in
    ``not_comparable`` (paper names, e.g. Table 3's VADAR GQA subset) get no toy value."""
    benchmarks = list(dict.fromkeys(paper["benchmark"]))
    unknown = sorted(set(toy) - set(paper["method"]))
    if unknown:
        raise ValueError(f"toy rows for methods the table does not have: {unknown}")
    skip = set(not_comparable)
    rows, index = [], []
    for method, group in paper.groupby("method", sort=False):
        printed = dict(zip(group["benchmark"], group["value"], strict=True))
        match = toy.get(method)
        row: dict[tuple[str, str], float] = {}
        for b in benchmarks:
            value = None if match is None or b in skip else match.values.get(BENCHMARK_KEYS[b])
            row[(b, "paper")] = float(printed.get(b, math.nan))
            row[(b, "toy")] = math.nan if value is None else float(value)
        for source in SOURCES:
            values = [row[(b, source)] for b in benchmarks]
            row[(AVERAGE, source)] = math.nan if any(math.isnan(v) for v in values) else round(
                sum(values) / len(values), 2)
        rows.append(row)
        index.append((method, match.system if match else PAPER_ONLY))
    frame = pd.DataFrame(rows, index=pd.MultiIndex.from_tuples(index, names=["method", "toy system"]))
    frame.columns = pd.MultiIndex.from_tuples(frame.columns, names=["benchmark", "source"])
    return frame


def flat(frame: pd.DataFrame) -> pd.DataFrame:
    """A wide comparison with one header row (``Omni3D-Bench paper``, ...) and the index as columns: for CSV."""
    out = frame.copy()
    out.columns = [f"{b} {s}" for b, s in out.columns]
    return out.reset_index()


def accuracy_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The reproduced rows of a comparison in the layout of ``valor_lib.evaluation.figures.accuracy_bars``."""
    rows = []
    for (method, system), values in frame.iterrows():
        if system == PAPER_ONLY:
            continue
        for b in dict.fromkeys(c for c, _ in frame.columns if c != AVERAGE):
            rows.append({"system": system, "benchmark": BENCHMARK_KEYS[b], "strict": values[(b, "toy")],
                         "paper_value": values[(b, "paper")], "paper_row": method})
    return pd.DataFrame(rows)


def training_size_table(paper: pd.DataFrame, toy: ToyResults, sweep: pd.DataFrame | None = None) -> pd.DataFrame:
    """Table 5: Omni3D-Bench accuracy vs the number of GRPO training queries, paper rows then toy rows (this run:
    the untrained base and all RL queries; then any finished ``max_queries`` experiments)."""
    rows = [{"method": r.method, "training queries": int(r.training_samples) if r.training_samples else None,
             "source": "paper", "Omni3D-Bench": r.value} for r in paper.itertuples()]
    base = next(r.method for r in paper.itertuples() if not r.training_samples)
    trained = next(r.method for r in paper.itertuples() if r.training_samples)
    rows.append({"method": base, "training queries": None, "source": "toy (this run)",
                 "Omni3D-Bench": toy.grpo["base"].get("omni3d-bench")})
    rows.append({"method": trained, "training queries": toy.grpo["queries"], "source": "toy (this run)",
                 "Omni3D-Bench": toy.grpo["grpo"].get("omni3d-bench")})
    for point in (sweep.to_dict("records") if sweep is not None else ()):
        rows.append({"method": trained, "training queries": point["queries"],
                     "source": f"toy (dvc exp {point['experiment']})", "Omni3D-Bench": point["omni3d-bench"]})
    frame = pd.DataFrame(rows)
    frame["training queries"] = frame["training queries"].astype("Int64")
    return frame


def grounding_points(toy: ToyResults, benchmarks: Sequence[str] | None = None) -> pd.DataFrame:
    """Figure 7 in this run: per detector (pretrained, each fine-tuned variant) the pseudo-labels it was trained
    on, held-out mAP x 100 and mean accuracy (%) on the grounding-heavy benchmarks the detector stage ran."""
    return _detector_rows(toy.detector, benchmarks).set_index("detector")


def _benchmarks_run(detector: Mapping[str, Any], benchmarks: Sequence[str] | None) -> list[str]:
    """``benchmarks`` (default: all) that the detector stage ran."""
    return [b for b in (benchmarks or detector["accuracy"]) if b in detector["accuracy"]]


def _detector_rows(detector: Mapping[str, Any], benchmarks: Sequence[str] | None) -> pd.DataFrame:
    accuracy = detector["accuracy"]
    benchmarks = _benchmarks_run(detector, benchmarks)
    return pd.DataFrame([{"detector": kind, "pseudo-labels": detector["boxes"].get(kind, 0),
                          "mAP x 100": None if mean_map is None else round(100 * mean_map, 2),
                          **{PAPER_NAMES[b]: accuracy[b].get(kind) for b in benchmarks}}
                         for kind, mean_map in detector["map"].items()])


# ----------------------------------------------------------------------------------------------------- claims

@dataclass(frozen=True)
class Claim:
    """A claim of the paper, its delta there (None: the paper states the direction but prints no number) and the
    same delta in the toy run (None: not measured)."""

    claim: str
    source: str
    measure: str
    paper_delta: float | None
    toy_delta: float | None
    counted: bool = True  # False: another reading of a claim already counted (a sensitivity check), shown only

    @property
    def agrees(self) -> bool | None:
        """Whether the toy delta points the paper's way (a positive delta when the paper gives no number)."""
        if self.toy_delta is None:
            return None
        direction = 1.0 if self.paper_delta is None else math.copysign(1.0, self.paper_delta)
        return self.toy_delta * direction > 0


def _mean(values: Mapping[str, float | None] | None, keys: Iterable[str]) -> float | None:
    picked = [(values or {}).get(k) for k in keys]
    if not picked or any(v is None for v in picked):
        return None
    return sum(picked) / len(picked)  # type: ignore[arg-type]


def _delta(a: float | None, b: float | None, scale: float = 1.0) -> float | None:
    return None if a is None or b is None else round(scale * (a - b), 2)


def _pair(paper_a: Mapping[str, float], paper_b: Mapping[str, float], toy_a: ToyRow | Mapping | None,
          toy_b: ToyRow | Mapping | None, keys: Sequence[str] | None = None) -> tuple[float | None, float | None]:
    """(paper delta, toy delta) of mean accuracy over ``keys`` (default: the paper row's benchmarks), restricted to
    the benchmarks the toy run measured for both rows when it measured any."""
    a = toy_a.values if isinstance(toy_a, ToyRow) else toy_a
    b = toy_b.values if isinstance(toy_b, ToyRow) else toy_b
    keys = list(keys or paper_a)
    measured = [k for k in keys if (a or {}).get(k) is not None and (b or {}).get(k) is not None]
    keys = measured or keys
    return _delta(_mean(paper_a, keys), _mean(paper_b, keys)), _delta(_mean(a, keys), _mean(b, keys))


def claims(toy: ToyResults, grounding_benchmarks: Sequence[str], paper_dir: str | Path | None = None) -> list[Claim]:
    """The paper's main claims with their deltas in the paper and in the toy run."""
    t1, t5, t8, t9 = (load_paper_table(n, paper_dir) for n in (1, 5, 8, 9))
    grounding = list(grounding_benchmarks)
    names = ", ".join(PAPER_NAMES[b] for b in grounding)
    everything = "mean accuracy over the benchmarks (toy: those evaluated)"
    out = [
        Claim("VALOR-RL beats its untrained base LLM (Qwen3-8B)", "Table 1", everything,
              *_pair(paper_row(t1, "VALOR-RL"), paper_row(t1, "Qwen3-8B"), toy.row("VALOR-RL"), toy.row("Qwen3-8B"))),
        Claim("VALOR beats VALOR-RL on grounding-heavy benchmarks", "Table 1", f"mean accuracy, {names}",
              *_pair(paper_row(t1, "VALOR"), paper_row(t1, "VALOR-RL"), toy.row("VALOR"), toy.row("VALOR-RL"),
                     grounding)),
        Claim("VALOR beats VALOR-RL on average", "Table 1", everything,
              *_pair(paper_row(t1, "VALOR"), paper_row(t1, "VALOR-RL"), toy.row("VALOR"), toy.row("VALOR-RL"))),
        Claim("The verifier-tuned detector also helps the untrained LLM", "Table 8", everything,
              *_pair(paper_row(t8, "Qwen3-8B (tuned GD)"), paper_row(t8, "Qwen3-8B (base GD)"),
                     toy.row("Qwen3-8B (tuned GD)"), toy.row("Qwen3-8B"))),
        Claim("With the same tuned detector, trained reasoning wins on Omni3D-Bench", "Table 8",
              "Omni3D-Bench accuracy, VALOR vs Qwen3-8B (tuned GD)",
              *_pair(paper_row(t8, "VALOR (tuned GD)"), paper_row(t8, "Qwen3-8B (tuned GD)"), toy.row("VALOR"),
                     toy.row("Qwen3-8B (tuned GD)"), ["omni3d-bench"])),
    ]
    trained = t5[t5["training_samples"] != ""]
    largest = trained.loc[trained["training_samples"].astype(int).idxmax()]
    untrained = t5[t5["training_samples"] == ""].iloc[0]
    out.append(Claim("GRPO on the verifier reward raises Omni3D-Bench accuracy", "Table 5",
                     f"Omni3D-Bench accuracy, GRPO ({largest.training_samples} queries; toy: "
                     f"{toy.grpo['queries']}) vs untrained",
                     _delta(float(largest.value), float(untrained.value)),
                     _delta(toy.grpo["grpo"].get("omni3d-bench"), toy.grpo["base"].get("omni3d-bench"))))
    out.append(Claim("RL beats SFT on the same verifier-filtered traces", "Table 9",
                     everything + " (toy: both with the base detector)",
                     *_pair(paper_row(t9, "VALOR"), paper_row(t9, "SFT"), toy.sft.get("grpo"), toy.sft.get("sft"))))
    detector_acc = toy.detector["accuracy"]
    tested = [b for b in grounding if b in detector_acc] or list(detector_acc)
    maps = toy.detector["map"]
    out += [
        Claim("Verified pseudo-labels beat unverified ones on grounding-heavy benchmarks",
              "§3.2 (direction only: no ablation number printed)",
              f"mean accuracy, {', '.join(PAPER_NAMES[b] for b in tested)}", None,
              _variant_delta(detector_acc, tested)),
        Claim("Verified pseudo-labels beat unverified ones on grounding-heavy benchmarks, each detector at its own "
              "thresholds", "§3.2 (direction only: no ablation number printed)",
              f"mean accuracy, {', '.join(PAPER_NAMES[b] for b in tested)}, each detector answering at the pair "
              "its calls fare best at on the held-out detection set", None,
              _variant_delta(toy.detector.get("accuracy_own") or {}, tested), counted=False),
        Claim("Verified pseudo-labels beat unverified ones on held-out detection",
              "§3.2 (direction only: no ablation number printed)", "held-out mAP x 100", None,
              _delta(maps.get("verified"), maps.get("unverified"), 100)),
        Claim("Fine-tuning on verified pseudo-labels keeps held-out detection (COCO val 48.4 -> 48.7)",
              "project page", "held-out mAP x 100, tuned vs pretrained",
              _delta(PAPER_COCO_MAP["verified"], PAPER_COCO_MAP["pretrained"]),
              _delta(maps.get("verified"), maps.get("pretrained"), 100)),
        Claim("Verification stages raise pseudo-label precision (0.45 -> 0.75)", "§3.2 error analysis",
              "precision x 100, after de-duplication vs after the coarse filter",
              _delta(PAPER_PRECISION["dedup"], PAPER_PRECISION["coarse"], 100),
              _delta(toy.precision.get("dedup"), toy.precision.get("coarse"), 100)),
    ]
    return out


def _variant_delta(accuracy: Mapping[str, Mapping[str, float | None]], benchmarks: Sequence[str]) -> float | None:
    """Mean accuracy over ``benchmarks`` of the verified detectors minus the unverified ones (None: not measured)."""
    return _delta(_kind_mean(accuracy, "verified", benchmarks), _kind_mean(accuracy, "unverified", benchmarks))


def _kind_mean(accuracy: Mapping[str, Mapping[str, float | None]], kind: str,
               benchmarks: Sequence[str]) -> float | None:
    """A detector kind's mean accuracy over ``benchmarks`` (None: one is not measured)."""
    return _mean({b: accuracy.get(b, {}).get(kind) for b in benchmarks}, benchmarks)


def claims_table(items: Sequence[Claim]) -> pd.DataFrame:
    """One row per claim: claim, source, measure, paper delta, toy delta, agrees, counted."""
    return pd.DataFrame([{"claim": c.claim, "source": c.source, "measure": c.measure, "paper delta": c.paper_delta,
                          "toy delta": c.toy_delta, "agrees": c.agrees, "counted": c.counted} for c in items])


def claim_count(items: Sequence[Claim]) -> tuple[int, int]:
    """(claims that hold, claims measured) among the counted ones."""
    counted = [c for c in items if c.counted]
    return sum(c.agrees is True for c in counted), sum(c.agrees is not None for c in counted)


# ---------------------------------------------------------------------------------- Tables 10/11 vs params

@dataclass(frozen=True)
class HparamRule:
    """Where a paper hyperparameter lives in this repository: ``read`` takes the effective settings and returns
    our value; ``compare=False`` shows the value without judging it; no ``read``: fixed in code (``note``)."""

    key: str
    read: Callable[[Mapping[str, Any]], Any] | None = None
    compare: bool = True
    note: str = ""


def _param(key: str) -> HparamRule:
    return HparamRule(key, lambda v: v[key])


def _epochs(limit: str) -> HparamRule:
    """Epochs, unless a step/batch cap (``limit``) cuts them short (then a string that matches nothing)."""
    return HparamRule(f"epochs, {limit}",
                      lambda v: v["epochs"] if v[limit] is None else f"{v['epochs']} (capped: {limit}={v[limit]})")


SCHEDULER_NAMES = {"step": "StepLR", "cosine": "cosine"}
MODEL_NOTE = "set by the GroundingDINO-T checkpoint the detector spec names"

GRPO_RULES: dict[str, HparamRule] = {
    "Batch size": _param("batch_size"),
    "Group size": _param("group_size"),
    "Max prompt length": _param("max_prompt_tokens"),
    "Max response length": _param("max_response_tokens"),
    "Learning rate": _param("lr"),
    "Optimizer": HparamRule("-", note="AdamW, fixed in code (valor_lib/policy/grpo.py; verl's actor default)"),
    "Weight decay": _param("weight_decay"),
    "KL coefficient": _param("kl_coef"),
    "Clip ratio": _param("clip_ratio"),
    "Epochs": _epochs("max_steps"),
    "Rollout engine": HparamRule("vllm, trainer", lambda v: "vLLM" if v["vllm"] or v["trainer"] == "verl"
                                 else "transformers generate"),
    "Temperature": _param("temperature"),
    "Top-p": _param("top_p"),
    "Gradient clipping": _param("grad_clip"),
}
DETECTOR_RULES: dict[str, HparamRule] = {
    "Batch size": _param("batch_size"),
    "Optimizer": HparamRule("-", note="AdamW, fixed in code (valor_lib/detection/train.py, valor_lib/grounding/train.py)"),
    "Weight decay": _param("weight_decay"),
    "Epochs": _epochs("batches_per_epoch"),
    "Learning rate": _param("lr"),
    "Scheduler": HparamRule("scheduler", lambda v: SCHEDULER_NAMES[v["scheduler"]]),
    "Step schedule": HparamRule("lr_step_epochs", lambda v: [v["lr_step_epochs"]] if v["scheduler"] == "step" else None),
    "Gamma": _param("lr_gamma"),
    "Freeze vision backbone": _param("freeze_backbone"),
    "Freeze language encoder": _param("freeze_text"),
    "Vision backbone": HparamRule("common.backends.detector", lambda v: v["detector"], compare=False, note=MODEL_NOTE),
    "Language encoder": HparamRule("common.backends.detector", lambda v: v["detector"], compare=False, note=MODEL_NOTE),
    "Gradient clipping": _param("grad_clip"),
}


def parse_paper_value(text: str) -> Any:
    """A hyperparameter as printed -> a Python value: ``True``, ``1e-6``, ``[4]``, ``Max norm 1.0`` -> 1.0; names
    (``AdamW``, ``StepLR``) stay strings."""
    text = text.strip()
    if text in ("True", "False"):
        return text == "True"
    if text.lower().startswith("max norm"):
        text = text[len("max norm"):].strip()
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def same_value(paper: Any, ours: Any) -> bool:
    """Equal as hyperparameters: booleans exactly, numbers to rounding, lists element-wise, names ignoring case."""
    if isinstance(paper, bool) or isinstance(ours, bool):
        return type(paper) is type(ours) and paper == ours
    if isinstance(paper, int | float):
        return isinstance(ours, int | float) and math.isclose(paper, ours, rel_tol=1e-9, abs_tol=0.0)
    if isinstance(paper, list):
        return isinstance(ours, list) and len(paper) == len(ours) and all(map(same_value, paper, ours))
    return isinstance(ours, str) and str(paper).lower() == ours.lower()


def effective_hparams(raw: Mapping[str, Any], profile: str) -> dict[int, tuple[str, dict[str, Any]]]:
    """Per table (10, 11): where the settings come from and the settings a run with ``profile`` trains with
    (GRPO: the validated ``grpo_training`` section; detector: ``training`` with its ``preset`` applied, exactly
    as ``valor_lib.grounding.train.finetune_config`` builds it)."""
    from valor_lib.grounding.train import finetune_config

    sections = apply_profile(dict(raw), profile)
    common = validate_common(sections["common"])
    grpo = validate_section("grpo_training", sections["grpo_training"])
    detector = validate_section("detector_finetuning", sections["detector_finetuning"])
    training = asdict(finetune_config(detector.training, detector.preset))  # type: ignore[attr-defined]
    spec = common.backends.detector
    return {10: ("grpo_training", {**grpo.model_dump(), "detector": spec}),
            11: (f"detector_finetuning.training + preset {detector.preset!r}",  # type: ignore[attr-defined]
                 {**training, "detector": spec})}


def hyperparameter_check(raw: Mapping[str, Any] | None = None, profile: str = "full",
                         paper_dir: str | Path | None = None) -> pd.DataFrame:
    """Tables 10 and 11 against params.yaml (``raw``: its contents, default the repository's) with ``profile``
    applied: one row per paper hyperparameter with our value and a status (match, MISMATCH, fixed in code,
    model, unmapped)."""
    settings = effective_hparams(raw if raw is not None else load_raw(), profile)
    rules = {10: GRPO_RULES, 11: DETECTOR_RULES}
    rows = []
    for number, (where, values) in settings.items():
        for item in load_paper_table(number, paper_dir).itertuples():
            rule = rules[number].get(item.hyperparameter)
            row = {"table": f"Table {number}", "hyperparameter": item.hyperparameter, "paper": item.value,
                   "params": where, "key": rule.key if rule else None, "ours": None, "status": "unmapped", "note": ""}
            if rule is not None:
                row["note"] = rule.note
                if rule.read is None:
                    row["status"] = "fixed in code"
                else:
                    ours = rule.read(values)
                    row["ours"] = ours
                    row["status"] = ("match" if same_value(parse_paper_value(item.value), ours) else "MISMATCH"
                                     ) if rule.compare else "model"
            rows.append(row)
    frame = pd.DataFrame(rows)
    frame["ours"] = frame["ours"].map(lambda v: v if v is None or isinstance(v, str) else repr(v))
    return frame


# ----------------------------------------------------------------------------------- sweeps (DVC experiments)

def dvc_experiments(timeout_s: float = 300.0, commits: int = 20) -> tuple[list[dict[str, Any]], str | None]:
    """``dvc exp show --json`` over the last ``commits`` commits: (entries, None), or ([], why it could not be
    read). Experiments of earlier commits count where :func:`comparable` says they ran the same code."""
    try:
        done = subprocess.run([sys.executable, "-m", "dvc", "exp", "show", "--json", "--num", str(commits)],
                              cwd=repo_root(), capture_output=True, text=True, timeout=timeout_s)
    except (OSError, subprocess.TimeoutExpired) as err:
        return [], f"dvc exp show did not run: {err}"
    if done.returncode != 0:
        return [], f"dvc exp show failed: {done.stderr.strip()[-400:]}"
    try:
        entries = json.loads(done.stdout)
    except json.JSONDecodeError as err:
        return [], f"dvc exp show printed no JSON: {err}"
    return (entries if isinstance(entries, list) else []), None


def _run_of(rev: Mapping[str, Any], state: str | None = None) -> dict[str, Any]:
    data = rev.get("data") or {}
    return {"experiment": rev.get("name") or str(rev.get("rev", ""))[:7], "state": state, "rev": rev.get("rev"),
            "params": ((data.get("params") or {}).get("params.yaml") or {}).get("data") or {},
            "metrics": {path: (value or {}).get("data") for path, value in (data.get("metrics") or {}).items()},
            "deps": {path: (value or {}).get("hash") for path, value in (data.get("deps") or {}).items()}}


def experiment_runs(entries: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The experiments under each baseline commit of ``dvc exp show --json``: name, queue state ("queued",
    "running", "success", "failed"; None when run outside the queue), its commit (``rev``), params.yaml values, the
    contents of each metrics file as DVC reads them (scalars only: lists are dropped; a queued or running
    experiment shows its baseline's committed ones) and the hash of each dependency in its dvc.lock."""
    return [_run_of(rev, (group.get("executor") or {}).get("state")) for baseline in entries
            for group in baseline.get("experiments") or () for rev in group.get("revs") or ()]


def workspace_run(entries: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """The workspace entry of ``dvc exp show --json`` (params.yaml and dvc.lock as they are now), if listed."""
    return next((_run_of(e) for e in entries if e.get("rev") == "workspace"), None)


def _stages() -> dict[str, dict[str, list[str]]]:
    """Each stage of dvc.yaml with its dependency and output paths (metrics included)."""
    import yaml

    stages = yaml.safe_load((repo_root() / "dvc.yaml").read_text())["stages"]

    def paths(entries: Iterable[Any]) -> list[str]:
        return [next(iter(e)) if isinstance(e, Mapping) else str(e) for e in entries]

    return {name: {"deps": paths(st.get("deps") or ()), "outs": paths([*(st.get("outs") or ()),
                                                                         *(st.get("metrics") or ())])}
            for name, st in stages.items()}


def upstream_sources(stage: str) -> set[str]:
    """The dependencies of ``stage`` and of every stage it reads from that no stage writes: its code, notebooks
    and inputs, whose dvc.lock hashes say whether two runs of it ran the same thing."""
    stages = _stages()
    written = {out: name for name, st in stages.items() for out in st["outs"]}

    def writer(dep: str) -> str | None:
        return next((name for out, name in written.items() if dep == out or dep.startswith(out + "/")), None)

    sources: set[str] = set()
    todo, seen = [stage], set()
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        for dep in stages[current]["deps"]:
            if (upstream := writer(dep)) is None:
                sources.add(dep)
            else:
                todo.append(upstream)
    return sources


def _without(values: Mapping[str, Any], key: str) -> dict[str, Any]:
    """``values`` without the dotted ``key``, emptied mappings pruned."""
    head, _, rest = key.partition(".")
    out = dict(values)
    inner = out.pop(head, None)
    if rest and isinstance(inner, Mapping) and (inner := _without(inner, rest)):
        out[head] = inner
    return out


def comparable(run: Mapping[str, Any], workspace: Mapping[str, Any] | None, param: str, stage: str) -> bool:
    """Whether an experiment that set ``param`` is a point of this run's sweep: every other parameter as now,
    and the same code, notebooks and inputs for ``stage`` and the stages before it (dvc.lock hashes; a markdown
    edit counts too). Without a workspace entry everything counts; without its hashes, only the parameters."""
    if workspace is None:
        return True
    if _without(run["params"], param) != _without(workspace["params"], param):
        return False
    return not workspace["deps"] or all(run["deps"].get(p) == workspace["deps"].get(p)
                                        for p in upstream_sources(stage))


def committed_json(rev: str | None, path: str) -> dict[str, Any] | None:
    """The JSON object in file ``path`` as committed at ``rev`` (an experiment's commit id), read with ``git show``
    (each call reads it: about 10 ms); None where ``rev`` is not a commit id or git has no such JSON object there.
    ``dvc exp show`` keeps only a metrics file's scalars, and the stage metrics hold lists too (the item scores of
    notebook 07, bootstrap intervals)."""
    text = _committed_text(rev, path) if rev and re.fullmatch(r"[0-9a-f]{7,64}", rev) else None
    try:
        loaded = json.loads(text) if text is not None else None
    except json.JSONDecodeError:
        return None
    return loaded if isinstance(loaded, dict) else None


def _committed_text(rev: str, path: str) -> str | None:
    """``git show <rev>:<path>`` as UTF-8 text; None where git or the decoding fails."""
    try:
        done = subprocess.run(["git", "show", f"{rev}:{path}"], cwd=repo_root(), capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    try:
        return done.stdout.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _dotted(values: Mapping[str, Any], key: str) -> Any:
    for part in key.split("."):
        if not isinstance(values, Mapping):
            return None
        values = values.get(part)  # type: ignore[assignment]
    return values


def _finished(entries: Sequence[Mapping[str, Any]], param: str, stage: str,
              ) -> Iterator[tuple[str, Any, Mapping[str, Any]]]:
    """(experiment, value, the stage's metrics) for each finished, :func:`comparable` experiment that set
    ``param``; the metrics as committed in the experiment (:func:`committed_json`), else as ``dvc exp show`` read
    them."""
    workspace = workspace_run(entries)
    for run in experiment_runs(entries):
        if run["state"] not in (None, "success") or not comparable(run, workspace, param, stage):
            continue
        value = _dotted(run["params"], param)
        path = f"results/{stage}/metrics.json"
        committed = committed_json(run["rev"], path)
        payload = committed if isinstance((committed or {}).get("metrics"), Mapping) else run["metrics"].get(path)
        if value is not None and isinstance(payload, Mapping) and isinstance(payload.get("metrics"), Mapping):
            yield run["experiment"], value, payload["metrics"]


def sweep_points(entries: Sequence[Mapping[str, Any]], param: str, stage: str,
                 extract: Callable[[Mapping[str, Any]], Mapping[str, Any]]) -> pd.DataFrame:
    """One row per finished experiment that set ``param`` (a dotted params.yaml key): its name, the value, and what
    ``extract`` reads from the stage's metrics."""
    return pd.DataFrame([{"experiment": name, param: value, **extract(metrics)}
                         for name, value, metrics in _finished(entries, param, stage)])


DETECTOR_SEED = "toy_world.detector.seed"


def detector_draws(toy: ToyResults, entries: Sequence[Mapping[str, Any]],
                   benchmarks: Sequence[str] | None = None) -> pd.DataFrame:
    """The pretrained / verified / unverified comparison of notebook 07 for each draw of the toy detector: this
    run's, then each finished experiment that set ``toy_world.detector.seed`` (``seed <n> (exp <name>)``); one
    row per draw and detector, as :func:`grounding_points`, plus the mean accuracy at the common and at the
    detector's own thresholds."""
    return pd.concat([_draw_rows(detector, benchmarks).assign(draw=name) for name, detector in _draws(toy, entries)],
                     ignore_index=True).set_index(["draw", "detector"])


def _draws(toy: ToyResults, entries: Sequence[Mapping[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """(draw name, parsed detector stage): this run's, then each finished experiment's that set
    ``toy_world.detector.seed``."""
    return [("this run", toy.detector)] + [
        (f"seed {seed} (exp {name})", parse_stage("detector_finetuning", metrics))
        for name, seed, metrics in _finished(entries, DETECTOR_SEED, "detector_finetuning")]


ANSWERING_MODES = {"common": "common thresholds", "own": "own thresholds"}


def pooled_grounding(toy: ToyResults, entries: Sequence[Mapping[str, Any]], benchmarks: Sequence[str],
                     seed: int = 0) -> pd.DataFrame:
    """The grounding comparisons (verified / unverified / pretrained) in mean accuracy over ``benchmarks``, pooled
    over the draws of :func:`detector_draws` that kept item scores, at the common thresholds and with each detector
    at its own (:func:`valor_lib.grounding.paired.pooled_rows`: 95% intervals over draws and items, and a verdict)."""
    from valor_lib.grounding.paired import POOLED_COLUMNS, pooled_rows

    draws = _draws(toy, entries)
    by_mode = {label: {name: d["item_scores"][mode] for name, d in draws if mode in d["item_scores"]}
               for mode, label in ANSWERING_MODES.items()}
    rows = pooled_rows(by_mode, _benchmarks_run(toy.detector, benchmarks), seed=seed)
    return pd.DataFrame(rows, columns=list(POOLED_COLUMNS))


SHARED_MEAN, OWN_MEAN = "mean, common thresholds", "mean, own thresholds"


def _draw_rows(detector: Mapping[str, Any], benchmarks: Sequence[str] | None) -> pd.DataFrame:
    """:func:`_detector_rows` plus the mean accuracy over the same benchmarks at ``common.gd_thresholds``
    (:data:`SHARED_MEAN`) and with each detector at its own answering thresholds (:data:`OWN_MEAN`; None where
    the draw chose none)."""
    rows = _detector_rows(detector, benchmarks)
    used = _benchmarks_run(detector, benchmarks)
    for column, accuracy in ((SHARED_MEAN, detector["accuracy"]), (OWN_MEAN, detector.get("accuracy_own") or {})):
        means = [_kind_mean(accuracy, kind, used) for kind in rows["detector"]]
        rows[column] = [None if m is None else round(m, 2) for m in means]
    return rows


def draw_differences(draws: pd.DataFrame) -> pd.DataFrame:
    """Per draw of :func:`detector_draws`: held-out mAP x 100 and mean accuracy over its benchmarks (at
    ``common.gd_thresholds``, and at each detector's own thresholds) of each fine-tuned variant minus the
    pretrained detector's, and verified minus unverified (the paper's ablation); a pair with a detector the draw
    did not train, or a measure the draw did not take, is left out."""
    both = draws[["mAP x 100", SHARED_MEAN, OWN_MEAN]].astype(float).unstack("detector")
    pairs = (("verified", "pretrained"), ("unverified", "pretrained"), ("verified", "unverified"))
    return pd.DataFrame.from_dict(
        {draw: {f"{measure}: {first} - {second}": round(row[(measure, first)] - row[(measure, second)], 2)
                for measure in ("mAP x 100", SHARED_MEAN, OWN_MEAN) for first, second in pairs
                if not pd.isna(row.get((measure, first))) and not pd.isna(row.get((measure, second)))}
         for draw, row in both.iterrows()}, orient="index").rename_axis("draw")


def claims_over_draws(this_run: Sequence[Claim], entries: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Each claim of this run (:func:`claims`) in this run and in each finished experiment that set
    ``toy_world.detector.seed``: "holds" / "fails" with the toy delta ("-": not measured), and a last row with how
    many of the counted claims (not the sensitivity checks) hold of those measured."""
    runs = {"this run": {c.claim: {"toy_delta": c.toy_delta, "agrees": c.agrees} for c in this_run}}
    runs |= {f"seed {seed} (exp {name})": metrics.get("claims") or {}
             for name, seed, metrics in _finished(entries, DETECTOR_SEED, "paper_tables")}

    def cell(result: Mapping[str, Any] | None) -> str:
        if not result or result.get("agrees") is None:
            return "-"
        return f"{'holds' if result['agrees'] else 'fails'} {result['toy_delta']:+.2f}"

    table = pd.DataFrame({draw: {c.claim: cell(found.get(c.claim)) for c in this_run} for draw, found in runs.items()})
    counted = {c.claim for c in this_run if c.counted}
    table.loc["claims holding"] = [
        f"{sum(r.get('agrees') is True for k, r in found.items() if k in counted)} of "
        f"{sum(r.get('agrees') is not None for k, r in found.items() if k in counted)}" for found in runs.values()]
    return table.rename_axis("claim")


def training_size_point(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """A Table 5 point from a ``grpo_training`` experiment: RL queries used and seed-mean Omni3D-Bench accuracy."""
    grpo = parse_stage("grpo_training", metrics)
    return {"queries": grpo["queries"], "omni3d-bench": grpo["grpo"].get("omni3d-bench")}


def pseudo_label_point(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """A Figure 7 point from a ``detector_finetuning`` experiment: verified boxes used, held-out mAP x 100 and
    accuracy per benchmark (seed means)."""
    detector = parse_stage("detector_finetuning", metrics)
    mean_map = detector["map"].get("verified")
    return {"pseudo-labels": detector["boxes"].get("verified"),
            "mAP x 100": None if mean_map is None else round(100 * mean_map, 2),
            **{PAPER_NAMES[b]: per.get("verified") for b, per in detector["accuracy"].items()}}


def sweep_commands(param: str, values: Iterable[int], extra: str = "") -> list[str]:
    """The DVC commands that queue one experiment per value of ``param`` and run them."""
    flags = f" {extra}" if extra else ""
    return [f"dvc exp run --queue -S {param}={v}{flags}" for v in values] + ["dvc exp run --run-all --jobs 1",
                                                                            "dvc exp show --json"]


# ------------------------------------------------------------------------------------------------- figures

def claims_figure(table: pd.DataFrame) -> Any:
    """Horizontal bars: each claim's delta in the paper (hatched) and in the toy run (solid)."""
    import matplotlib.pyplot as plt
    import numpy as np

    y = np.arange(len(table))
    fig, ax = plt.subplots(figsize=(12, 0.45 * len(table) + 1.2))
    paper = table["paper delta"].astype(float).to_numpy()
    toy = table["toy delta"].astype(float).to_numpy()
    ax.barh(y - 0.2, np.nan_to_num(paper), 0.4, color="tab:gray", hatch="//", alpha=0.5, label="paper")
    colors = {True: "tab:green", False: "tab:red", None: "lightgray"}
    ax.barh(y + 0.2, np.nan_to_num(toy), 0.4, color=[colors[a] for a in table["agrees"]],
            label="toy (green: same direction, red: opposite)")
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_yticks(y, [c if len(c) < 70 else c[:67] + "..." for c in table["claim"]], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("delta (points)")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.tight_layout()
    return fig


def grounding_figure(points: pd.DataFrame) -> Any:
    """Figure 7's axes for the toy run: accuracy (%) per grounding-heavy benchmark vs the pseudo-labels a detector
    was fine-tuned on; a line through the pretrained detector, the verified run(s) and any sweep points (rows
    named ``exp ...``), the unverified ablation as crosses."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    columns = [c for c in points.columns if c in BENCHMARK_KEYS]
    verified = points[[k == "pretrained" or k == "verified" or str(k).startswith("exp ") for k in points.index]]
    verified = verified.sort_values("pseudo-labels")
    for n, column in enumerate(columns):
        color = f"C{n}"
        ax.plot(verified["pseudo-labels"], verified[column], marker="o", color=color, label=column)
        if "unverified" in points.index:
            ax.scatter(points.loc["unverified", "pseudo-labels"], points.loc["unverified", column], marker="x",
                       color=color, s=60, label="unverified labels" if n == 0 else None)
    ax.set_xlabel("pseudo-labels (boxes) the detector was fine-tuned on (0: pretrained)")
    ax.set_ylabel("accuracy (%)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig

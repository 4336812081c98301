"""``params.yaml``: loading, the profile switch, and strict validation.

Layout: a ``common`` section, one section per stage (named after its notebook without the number), and
``profiles.<name>``, a partial copy of those sections deep-merged over them when ``common.profile`` names
it. The base values are the toy profile; ``profiles.full`` holds the paper-scale overrides. Validation is
strict (unknown keys and wrong types are errors) and happens before any stage writes anything.
"""

from __future__ import annotations

import copy
import importlib
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from valor_lib.paths import repo_root
from valor_lib.specs import ROLE_KINDS, SpecError, parse_spec

PARAMS_FILE = "params.yaml"
RESERVED_SECTIONS = ("common", "profiles")

# Stage section -> "module:Class" of its params model (imported lazily so each stage owns its model).
SECTION_MODELS: dict[str, str] = {
    "toy_world": "valor_lib.toyworld.config:ToyWorldParams",
    "query_generation": "valor_lib.querygen.config:QueryGenerationParams",
    "reward_model": "valor_lib.rewards.config:RewardModelParams",
    "verifier_error_analysis": "valor_lib.rewards.config:VerifierErrorAnalysisParams",
    "grpo_training": "valor_lib.policy.config:GRPOTrainingParams",
    "sft_baseline": "valor_lib.policy.config:SFTBaselineParams",
    "pseudo_labelling": "valor_lib.grounding.config:PseudoLabellingParams",
    "detector_finetuning": "valor_lib.grounding.config:DetectorFinetuningParams",
    "evaluation": "valor_lib.evaluation.config:EvaluationParams",
    "paper_tables": "valor_lib.tables_config:PaperTablesParams",
}


class ParamsError(ValueError):
    """params.yaml (or a notebook's parameters) is invalid; the message names the key."""


class StrictModel(BaseModel):
    """Base for every params model: unknown keys are errors, values are not coerced across types."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Backends(StrictModel):
    """One backend spec string per role (see ``valor_lib.specs``)."""

    policy: str
    llm_verifier: str
    vlm_verifier: str
    querygen: str
    vqa: str
    judge: str
    detector: str
    depth: str

    @field_validator("*")
    @classmethod
    def _valid_spec(cls, value: str, info: Any) -> str:
        try:
            parse_spec(value, role=info.field_name)
        except SpecError as err:
            raise ValueError(str(err)) from None
        return value


assert set(Backends.model_fields) == set(ROLE_KINDS), "Backends fields must match specs.ROLE_KINDS"


class CommonParams(StrictModel):
    """Settings every stage receives."""

    profile: Literal["toy", "full"]
    seed: int
    device: Literal["auto", "cpu", "cuda"]
    offline: bool
    gd_thresholds: list[float] = Field(min_length=2, max_length=2, description="[box, text] thresholds of gd_detect")
    gd_nms_iou: float | None = Field(gt=0, le=1, description="class-wise NMS IoU of gd_detect (None: no NMS)")
    backends: Backends


def load_raw(path: str | Path | None = None) -> dict[str, Any]:
    """Read params.yaml as a plain dict (no profile applied, no validation beyond YAML syntax)."""
    p = Path(path) if path else repo_root() / PARAMS_FILE
    try:
        raw = yaml.safe_load(p.read_text())
    except FileNotFoundError:
        raise ParamsError(f"{p} not found") from None
    except yaml.YAMLError as err:
        raise ParamsError(f"{p} is not valid YAML: {err}") from None
    if not isinstance(raw, dict) or "common" not in raw:
        raise ParamsError(f"{p} must be a mapping with a 'common' section")
    return raw


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``base`` with ``override`` merged in recursively (override wins on leaves)."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def apply_profile(raw: dict[str, Any], profile: str | None = None) -> dict[str, Any]:
    """The sections with the chosen profile's overrides merged in (``profile`` defaults to common.profile)."""
    profile = profile or raw["common"].get("profile", "toy")
    sections = {k: v for k, v in raw.items() if k != "profiles"}
    overrides = (raw.get("profiles") or {}).get(profile, {}) or {}
    if profile != "toy" and profile not in (raw.get("profiles") or {}):
        raise ParamsError(f"profile {profile!r} has no 'profiles.{profile}' section in params.yaml")
    for section, values in overrides.items():
        if section not in sections:
            raise ParamsError(f"profiles.{profile}.{section}: no such section in params.yaml")
        if not isinstance(values, dict):
            raise ParamsError(f"profiles.{profile}.{section} must be a mapping")
        sections[section] = deep_merge(sections[section], values)
    sections["common"] = {**sections["common"], "profile": profile}
    return sections


def section_model(section: str) -> type[StrictModel]:
    """The params model class registered for a stage section."""
    if section not in SECTION_MODELS:
        raise ParamsError(f"unknown stage section {section!r}; known: {sorted(SECTION_MODELS)}")
    module, _, cls = SECTION_MODELS[section].partition(":")
    return getattr(importlib.import_module(module), cls)


def _validate(model: type[StrictModel], values: Any, where: str) -> StrictModel:
    if not isinstance(values, dict):
        raise ParamsError(f"{where} must be a mapping, got {type(values).__name__}")
    try:
        return model.model_validate(values)
    except ValidationError as err:
        lines = [f"{where}.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors()]
        raise ParamsError("invalid parameters:\n  " + "\n  ".join(lines)) from None


def validate_common(values: Any) -> CommonParams:
    """Validate the common section."""
    return _validate(CommonParams, values, "common")  # type: ignore[return-value]


def validate_section(section: str, values: Any) -> StrictModel:
    """Validate one stage section against its registered model."""
    return _validate(section_model(section), values, section)


def resolve(section: str, path: str | Path | None = None, profile: str | None = None) -> dict[str, Any]:
    """Validated, profile-resolved parameters of a stage: common keys and section keys in one flat dict."""
    sections = apply_profile(load_raw(path), profile)
    if section not in sections:
        raise ParamsError(f"params.yaml has no section {section!r}")
    common = validate_common(sections["common"])
    stage = validate_section(section, sections[section])
    clash = set(CommonParams.model_fields) & set(type(stage).model_fields)
    if clash:
        raise ParamsError(f"section {section!r} redefines common keys {sorted(clash)}")
    return {**common.model_dump(), **stage.model_dump()}

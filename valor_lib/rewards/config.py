"""Parameters of the ``reward_model`` and ``verifier_error_analysis`` stages (params.yaml sections)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, field_validator, model_validator

from valor_lib.params import StrictModel
from valor_lib.specs import parse_spec

if TYPE_CHECKING:
    from valor_lib.rewards.scorer import RewardScorer


class VerifierSampling(StrictModel):
    """Sampling of the LLM verifier (null: the provider's default; the paper used Gemini's defaults)."""

    temperature: float | None = Field(ge=0)
    max_tokens: int | None = Field(ge=1)
    reasoning_effort: Literal["none", "minimal", "low", "medium", "high"] | None


class PolicySampling(StrictModel):
    """Sampling of the policy when drawing rollouts to score (GRPO: temperature 1, top-p 1)."""

    temperature: float = Field(ge=0)
    top_p: float = Field(gt=0, le=1)
    max_tokens: int = Field(ge=1)


class ScorerParams(StrictModel):
    """How the reward model calls its verifier (see ``valor_lib.rewards.RewardScorer``)."""

    failure_policy: Literal["drop", "zero"] = Field(description="a sample with a failed head: drop it or score 0")
    verdict_attempts: int = Field(ge=1, description="requests per head before an unparsable verdict is a failure")
    syntax_timeout_s: float = Field(gt=0, description="wall limit of one dummy-tool run")
    max_concurrency: int = Field(ge=1, description="verifier calls in flight at once")
    sampling: VerifierSampling

    def build(self, verifier: str, **client_options: Any) -> RewardScorer:
        """A scorer over the verifier spec with these settings (``client_options`` go to its ChatClient)."""
        from valor_lib.clients import SamplingParams
        from valor_lib.rewards.scorer import RewardScorer

        return RewardScorer(verifier, failure_policy=self.failure_policy, verdict_attempts=self.verdict_attempts,
                            syntax_timeout_s=self.syntax_timeout_s, max_concurrency=self.max_concurrency,
                            sampling=SamplingParams(**self.sampling.model_dump()), **client_options)


class RewardModelParams(StrictModel):
    """The ``reward_model`` stage: the heads on hand-picked programs, and rewards of base-policy samples."""

    verifier_options: dict[str, Any] | None = Field(
        description="extra ChatClient options of common.backends.llm_verifier (e.g. a toy brain's error rate)")
    scorer: ScorerParams
    queries: int = Field(ge=1, description="RL queries (a seeded sample) whose base-policy rollouts are scored")
    rollouts: int = Field(ge=1, description="samples per query (a GRPO group)")
    policy_sampling: PolicySampling


class VerifierEntry(StrictModel):
    """One verifier compared against the annotations."""

    name: str
    spec: str
    client_options: dict[str, Any] = Field(description="extra ChatClient options (e.g. brain_options, base_url)")

    @field_validator("spec")
    @classmethod
    def _valid_spec(cls, value: str) -> str:
        parse_spec(value, role="llm_verifier")
        return value


class VerifierErrorAnalysisParams(StrictModel):
    """The ``verifier_error_analysis`` stage: verifiers' agreement with annotated rewards (paper §3.1)."""

    outputs: int = Field(ge=1, description="base-policy rollouts of the reward_model stage to annotate (paper: 100)")
    labels: Literal["oracle", "file"] = Field(
        description="oracle: toy labels from program semantics and scene ground truth; file: hand labels")
    annotations_file: str = Field(
        description="hand labels (labels=file): read when it exists, else the outputs to label are written there")
    verifiers: list[VerifierEntry] = Field(min_length=1)
    scorer: ScorerParams

    @model_validator(mode="after")
    def _unique_names(self) -> VerifierErrorAnalysisParams:
        names = [v.name for v in self.verifiers]
        if len(set(names)) != len(names):
            raise ValueError(f"verifier names must be unique: {names}")
        return self

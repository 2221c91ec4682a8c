"""What the main job runs: :class:`PipelineConfig` (one typed config per stage; None turns an optional stage off) and
the presets, which are instances of it. Measurements behind each preset: ``experiments/README.md``."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from st_drama.augment.config import AugmentConfig, CropConfig, MiningConfig
from st_drama.config_tools import nested, updated
from st_drama.defaults import DEFAULT_LLM_NAME
from st_drama.evaluation.config import EvaluateConfig
from st_drama.evaluation.hybrid import FusionConfig
from st_drama.llara.config import LlaraConfig
from st_drama.pruning.config import PruneConfig, RecoveryConfig
from st_drama.training.config import TrainConfig

STAGES = ("prune", "llara", "augment", "train", "evaluate")
OPTIONAL_STAGES = ("prune", "llara", "evaluate")

# The prune stage when a preset leaves it off and the caller turns it on (--prune-params): more calibration text
# than `st-drama prune`'s default and a distillation recovery, since the pruned model is then trained further.
PIPELINE_PRUNE = PruneConfig(calibration_tokens=200_000, recovery=RecoveryConfig(steps=200))
# The llara stage when a preset leaves it off and the caller turns it on (--llara): a short adaptation.
PIPELINE_LLARA = LlaraConfig(steps=60, batch_size=8, chunk_tokens=128, learning_rate=5e-5)
_STAGE_DEFAULTS: dict[str, Any] = {
    "prune": PIPELINE_PRUNE,
    "llara": PIPELINE_LLARA,
    "evaluate": EvaluateConfig(),
}


@dataclass(frozen=True)
class PipelineConfig:
    """The main job: LLM -> (prune) -> (LLaRA adapt) -> augment -> train -> (evaluate).

    Args:
        model: The source LLM (folder, hub id or ``"smollm2-135m"``).
        preset: The preset this config was made from (a label in results and the model card).
        prune: The prune stage, or None.
        llara: The LLaRA adaptation stage, or None; training then uses LLaRA's framing.
        augment: The augmentation stage (reads only the collection's ``corpus.jsonl``).
        train: The contrastive training stage.
        evaluate: The evaluation stage (needs ``queries.jsonl`` and ``qrels/test.tsv``), or None.
    """

    model: str = DEFAULT_LLM_NAME
    preset: str | None = None
    prune: PruneConfig | None = None
    llara: LlaraConfig | None = None
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    evaluate: EvaluateConfig | None = field(default_factory=EvaluateConfig)

    def __post_init__(self) -> None:
        for name, config_class in (
            ("prune", PruneConfig),
            ("llara", LlaraConfig),
            ("augment", AugmentConfig),
            ("train", TrainConfig),
            ("evaluate", EvaluateConfig),
        ):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, nested(value, config_class))
        if self.augment is None or self.train is None:
            raise ValueError("The augment and train stages cannot be turned off.")
        if self.prune is not None and not self.prune.target.to_dict():
            raise ValueError("The prune stage needs a target, e.g. params='60M' (--prune-params 60M).")
        if self.train.distill_weight > 0:
            raise ValueError(
                f"train.distill_weight={self.train.distill_weight}: the augment stage writes no teacher scores to "
                "distil; train on scored rows with `st-drama train --distill-weight` instead."
            )
        if self.llara is not None and self.train.style != "llara":
            raise ValueError(
                f"train.style={self.train.style!r} cannot follow the llara stage: the adapted model is trained in "
                "LLaRA's framing. Turn the llara stage off (--no-llara) or use style 'llara'."
            )

    @classmethod
    def from_preset(cls, preset: str = "quick", **changes: Any) -> PipelineConfig:
        """The named preset with ``changes`` applied (see :meth:`changed`)."""
        if preset not in PRESETS:
            raise ValueError(f"Unknown preset {preset!r}; presets: {sorted(PRESETS)}.")
        return PRESETS[preset].changed(changes)

    def changed(self, changes: Mapping[str, Any] | None = None) -> PipelineConfig:
        """A copy with ``changes`` applied by stage: a mapping merges into the stage's config (an optional stage that
        is off starts from the pipeline's default for it), None turns an optional stage off, a config replaces it.
        Turning the llara stage on also sets the training's framing to LLaRA's unless the same changes set it."""
        if not changes:
            return self
        unknown = sorted(set(changes) - {field.name for field in dataclasses.fields(self)})
        if unknown:
            raise ValueError(f"Unknown pipeline setting {unknown[0]!r}; stages: {STAGES}, and 'model'.")
        values: dict[str, Any] = {}
        for name, change in changes.items():
            current = getattr(self, name)
            if change is None and name not in OPTIONAL_STAGES:
                raise ValueError(f"The {name} stage cannot be turned off.")
            if isinstance(change, Mapping):
                base = current if current is not None else _STAGE_DEFAULTS[name]
                change = updated(base, change)
            values[name] = change
        if values.get("llara") is not None and self.llara is None:
            train_change = changes.get("train")
            if not (isinstance(train_change, Mapping) and "style" in train_change):
                values["train"] = updated(values.get("train", self.train), {"style": "llara"})
        return dataclasses.replace(self, **values)

    def with_seed(self, seed: int) -> PipelineConfig:
        """Every stage seeded with ``seed``."""
        changes = {name: {"seed": seed} for name in ("prune", "llara", "augment", "train") if getattr(self, name)}
        return self.changed(changes)


# About eight minutes on a 2-core CPU (Cranfield, set-up included): cropped-sentence queries cut out of their
# positives and title queries, one hard negative, 16 steps of 16 in LLaRA's framing, which learns faster in a short
# run than DRAMA's bidirectional attention and mean pooling; evaluation at 128 tokens.
QUICK_PRESET = PipelineConfig(
    preset="quick",
    augment=AugmentConfig(
        sources=("crop", "title"),
        rerank="none",
        batch_size=16,
        crop=CropConfig(context_removal=1.0),
        mining=MiningConfig(num_negatives=1),
    ),
    train=TrainConfig(
        style="llara",
        steps=16,
        batch_size=16,
        learning_rate=2e-4,
        num_negatives=1,
        max_seq_length=128,
        temperature=0.02,
    ),
    # The model fused with BM25 is reported next to it: measured to beat BM25 on every shared collection.
    evaluate=EvaluateConfig(max_seq_length=128, batch_size=32, hybrids=(FusionConfig(),)),
)
# About an hour of training on a 2-core CPU: quick's rows and settings for 192 steps, saved 70% of the way from the
# LLM to the trained weights (WiSE-FT), which keeps what the long run learned and undoes part of its drift.
FULL_PRESET = updated(QUICK_PRESET, {"preset": "full", "train": {"steps": 192, "wise_alpha": 0.7}})
# DRAMA's data recipe after LLaRA's adaptation, for a GPU and a strong --augment-llm: cropped and LLM-written queries,
# seven hard negatives, one epoch at 256 tokens, evaluation at 512.
GPU_PRESET = PipelineConfig(
    preset="gpu",
    llara=LlaraConfig(steps=200, batch_size=16, chunk_tokens=128, learning_rate=5e-5),
    augment=updated(QUICK_PRESET.augment, {"sources": ("crop", "synthetic"), "mining": {"num_negatives": 7}}),
    train=TrainConfig(
        style="llara",
        epochs=1.0,
        batch_size=32,
        learning_rate=1e-4,
        num_negatives=7,
        max_seq_length=256,
        temperature=0.02,
    ),
    evaluate=updated(QUICK_PRESET.evaluate, {"max_seq_length": 512}),
)
PRESETS: dict[str, PipelineConfig] = {"quick": QUICK_PRESET, "full": FULL_PRESET, "gpu": GPU_PRESET}

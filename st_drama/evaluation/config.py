"""The evaluation stage's settings: the single home of their defaults (``st-drama evaluate`` and the pipeline's
presets start from these)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from st_drama.defaults import DEFAULT_STYLE, check_style

from .hybrid import FusionConfig

BASELINES = ("bm25", "minilm", "backbone")
# The untrained backbone costs a full encoding of the collection and only shows what training added: opt-in.
DEFAULT_BASELINES = ("bm25", "minilm")


@dataclass(frozen=True)
class EvaluateConfig:
    """How a model and its baselines are evaluated with MTEB.

    Args:
        baselines: Any of ``"bm25"``, ``"minilm"`` (all-MiniLM-L6-v2) and ``"backbone"`` (the untrained model
            st-drama builds from the LLM).
        style: The untrained backbone's style, and the model's when it is an LLM.
        backbone: The LLM of the untrained-backbone baseline; None: the model when it is an LLM, else the embedded
            default.
        model_name: The model's MTEB name (``"org/name"``); None: ``st-drama/<folder name>``.
        bf16: Encode LLM-based models under bf16 autocast; None decides per model (on for LLM backbones where bf16
            is fast, off for small encoders such as MiniLM).
        batch_size: Texts per forward pass for the dense models.
        max_seq_length: Maximum tokens per text for the model and the untrained backbone (None: their own);
            all-MiniLM-L6-v2 keeps its own.
        max_chunks: Cut texts longer than ``max_seq_length`` into up to this many windows whose embeddings are
            averaged (st-drama models only; None: their own, 1 truncates).
        device: Device for the dense models (None: sentence-transformers' choice).
        hybrids: Fusions of each dense model with BM25 to evaluate too (``FusionConfig``, or ``"rsf:0.3"``: method
            and the dense model's weight, 0.3 when left out), each reported as its own run.
        per_query: Keep each judged query's nDCG@10 and Recall@100 (``TaskScores.per_query``, in ``results.json``)
            for paired comparisons between runs (:func:`st_drama.evaluation.paired_difference`), from the rankings
            MTEB saves under ``OUTPUT/predictions/``; a result already in MTEB's cache is searched again once to get
            its ranking. Retrieval tasks only.
    """

    baselines: tuple[str, ...] = DEFAULT_BASELINES
    style: str = DEFAULT_STYLE
    backbone: str | None = None
    model_name: str | None = None
    bf16: bool | None = None
    batch_size: int = 32
    max_seq_length: int | None = None
    max_chunks: int | None = None
    device: str | None = None
    hybrids: tuple[FusionConfig, ...] = ()
    per_query: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "baselines", check_baselines(self.baselines))
        object.__setattr__(self, "hybrids", parse_fusions(self.hybrids))
        check_style(self.style, "EvaluateConfig.style")
        if self.batch_size < 1:
            raise ValueError(f"EvaluateConfig.batch_size must be at least 1, got {self.batch_size}.")
        if self.max_seq_length is not None and self.max_seq_length < 8:
            raise ValueError(f"EvaluateConfig.max_seq_length must be at least 8, got {self.max_seq_length}.")
        if self.max_chunks is not None and self.max_chunks < 1:
            raise ValueError(f"EvaluateConfig.max_chunks must be at least 1, got {self.max_chunks}.")


def parse_fusions(specs: str | FusionConfig | Mapping[str, Any] | Sequence[Any]) -> tuple[FusionConfig, ...]:
    """Fusions from ``"rrf:0.5,rsf:0.3"`` (method and the dense model's weight), FusionConfigs, or their fields as
    mappings."""
    if isinstance(specs, str):
        specs = [spec.strip() for spec in specs.split(",") if spec.strip() and spec.strip() != "none"]
    elif isinstance(specs, (FusionConfig, Mapping)):
        specs = [specs]
    fusions = []
    for spec in specs:
        if isinstance(spec, str):
            method, _, weight = spec.partition(":")
            try:
                spec = FusionConfig(method, float(weight)) if weight else FusionConfig(method)
            except ValueError as error:
                raise ValueError(f"hybrid {spec!r}: {error} (write METHOD:DENSE_WEIGHT, e.g. rsf:0.3)") from None
        elif isinstance(spec, Mapping):
            spec = FusionConfig(**spec)
        fusions.append(spec)
    return tuple(fusions)


def check_baselines(names: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Baseline names from a list or a comma-separated string, validated, in the given order, without repeats."""
    if isinstance(names, str):
        names = [name.strip() for name in names.split(",")]
    checked: list[str] = []
    for name in names:
        if not name or name in ("none", *checked):
            continue
        if name not in BASELINES:
            raise ValueError(f"Unknown baseline {name!r}; choose from {BASELINES} (comma-separated) or 'none'.")
        checked.append(name)
    return tuple(checked)

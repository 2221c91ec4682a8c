"""The augmentation stage's settings: the single home of their defaults (``st-drama augment`` and the pipeline's
presets start from these). Nested configs group the settings of each step: cropping, synthetic-query generation and
its filters, first-stage mining, reranking and LLM decoding."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from st_drama.config_tools import nested
from st_drama.defaults import DEFAULT_LLM_NAME, DEFAULT_SEED
from st_drama.evaluation.config import parse_fusions
from st_drama.evaluation.hybrid import FusionConfig

SOURCES = ("crop", "synthetic", "title")
# DRAMA's query sources; "title" (a document's title as the query for the rest of it) is opt-in.
DEFAULT_SOURCES = ("crop", "synthetic")
RERANKERS = ("none", "listwise", "pointwise", "likelihood", "pairrm")
LLM_RERANKERS = ("listwise", "pointwise", "likelihood")
# LLM rerankers that read token probabilities, which only the transformers backend gives.
SCORING_RERANKERS = ("pointwise", "likelihood")
BACKENDS = ("auto", "transformers", "vllm")
PRECISIONS = ("auto", "bf16", "fp32")
# Settings that do not change the rows (a resumed run may differ in them).
RUN_ONLY_SETTINGS = ("device",)


@dataclass(frozen=True)
class SamplingConfig:
    """How to decode: greedy when ``temperature`` is 0, else nucleus sampling (DRAMA: 0.8 / 0.9)."""

    max_new_tokens: int = 64
    temperature: float = 0.0
    top_p: float = 1.0

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1 or self.temperature < 0 or not 0 < self.top_p <= 1:
            raise ValueError(f"SamplingConfig needs max_new_tokens >= 1, temperature >= 0, 0 < top_p <= 1: {self}")

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0.0


@dataclass(frozen=True)
class CropConfig:
    """Which sentences qualify as cropped queries, and what happens to the crop's own document.

    Args:
        min_words: Shortest usable sentence (shorter ones, such as headings, are skipped).
        max_words: Longest usable sentence; longer sentences are cut to a random span of this many words.
        span_words: Length of the word span taken when no sentence qualifies.
        context_removal: Probability that the crop is cut out of its document when that document is the row's
            positive (the inverse cloze task), so the query must be matched to its context rather than found
            verbatim. 0 keeps DRAMA's verbatim positives.
        per_document: Crops taken from each document, each from a different sentence (fewer where the document
            has fewer usable sentences). More than one gives a small corpus enough distinct rows for a long run.
    """

    min_words: int = 5
    max_words: int = 48
    span_words: int = 16
    context_removal: float = 1.0
    per_document: int = 1

    def __post_init__(self) -> None:
        if not 0.0 <= self.context_removal <= 1.0:
            raise ValueError(f"context_removal is a probability in [0, 1], got {self.context_removal}")
        if self.per_document < 1:
            raise ValueError(f"per_document is a number of crops per document, at least 1, got {self.per_document}")
        if not 1 <= self.min_words <= self.max_words or self.span_words < 1:
            raise ValueError(f"CropConfig needs 1 <= min_words <= max_words and span_words >= 1: {self}")


@dataclass(frozen=True)
class QueryFilterConfig:
    """Limits for accepting a generated query.

    Args:
        max_words: Longest accepted query.
        copy_ngram_size: Word n-gram size for the document-copy check; queries shorter than this are not checked.
        copy_threshold: Reject when at least this fraction of the query's n-grams occur in the document.
        max_ngram_repeats: Reject when one word trigram occurs more often than this (a degenerate loop).
        reject_unfinished: Reject replies cut off by the token limit (as ``too long``): the query may be truncated.
        min_shared_words: Reject queries sharing fewer content words (3+ characters, not function words, compared
            by their first 4 characters) with the document; 0 disables the check.
    """

    max_words: int = 32
    copy_ngram_size: int = 4
    copy_threshold: float = 0.75
    max_ngram_repeats: int = 2
    reject_unfinished: bool = True
    min_shared_words: int = 1


@dataclass(frozen=True)
class GenerationConfig:
    """Prompt and decoding settings for synthetic queries.

    Args:
        max_document_words: The document is cut to this many words in the prompt.
        few_shot: Number of worked examples before the document (in the document's language when we have them).
        sampling: Decoding; DRAMA samples at temperature 0.8, top-p 0.9.
        queries_per_document: Prompts per document (use sampling for more than one, or they repeat).
    """

    max_document_words: int = 180
    few_shot: int = 2
    sampling: SamplingConfig = field(
        default_factory=lambda: SamplingConfig(max_new_tokens=64, temperature=0.8, top_p=0.9)
    )
    queries_per_document: int = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "sampling", nested(self.sampling, SamplingConfig))
        if self.queries_per_document < 1 or self.few_shot < 0 or self.max_document_words < 1:
            raise ValueError(f"GenerationConfig needs queries_per_document >= 1 and few_shot >= 0: {self}")


@dataclass(frozen=True)
class MiningConfig:
    """Which first-stage ranks supply positives and negatives (1-based, inclusive).

    Args:
        positive_ranks: Ranks whose documents count as positives (never negatives).
        negative_ranks: Ranks that supply hard negatives; when too few survive the guard, later ranks fill in.
        num_negatives: Negatives per row (``negative_1`` ... ``negative_k``).
        positives_per_query: Rows per query, one per positive, taken in order from the source document (synthetic
            and title queries) and then ranks ``positive_ranks``.
        max_negative_score_ratio: A candidate scoring at least this fraction of the positive's score is a likely
            false negative and skipped (None disables the check).
    """

    positive_ranks: tuple[int, int] = (1, 10)
    negative_ranks: tuple[int, int] = (30, 50)
    num_negatives: int = 7
    positives_per_query: int = 1
    max_negative_score_ratio: float | None = 0.95

    def __post_init__(self) -> None:
        for name in ("positive_ranks", "negative_ranks"):
            ranks = getattr(self, name)
            if not isinstance(ranks, (list, tuple)) or len(ranks) != 2 or not all(isinstance(r, int) for r in ranks):
                raise ValueError(f"{name} must be [low, high] (1-based ranks), got {ranks!r}")
            object.__setattr__(self, name, tuple(ranks))
            low, high = ranks
            if not 1 <= low <= high:
                raise ValueError(f"{name} must be 1-based and ordered (low <= high), got {(low, high)}")
        if self.num_negatives < 1 or self.positives_per_query < 1:
            raise ValueError("num_negatives and positives_per_query must be at least 1")

    @property
    def retrieval_depth(self) -> int:
        """How many candidates to retrieve: the negative range plus room to replace guarded ones."""
        return self.negative_ranks[1] + 2 * self.num_negatives


@dataclass(frozen=True)
class RerankConfig:
    """LLM reranking of the first-stage candidates.

    Args:
        depth: How many first-stage candidates are reranked (DRAMA: 20).
        negative_ranks: Reranked ranks that supply negatives (DRAMA: 10-20).
        window: Passages per listwise window.
        step: Listwise window step.
        max_passage_words: Each passage is cut to this many words in the prompt (DRAMA cuts to 256 tokens).
    """

    depth: int = 20
    negative_ranks: tuple[int, int] = (10, 20)
    window: int = 10
    step: int = 5
    max_passage_words: int = 100

    def __post_init__(self) -> None:
        object.__setattr__(self, "negative_ranks", tuple(self.negative_ranks))
        low, high = self.negative_ranks
        if not 1 <= low <= high or self.depth < 1 or self.window < 2 or self.step < 1:
            raise ValueError(f"RerankConfig needs 1 <= low <= high, depth >= 1, window >= 2 and step >= 1: {self}")


@dataclass(frozen=True)
class AugmentConfig:
    """Everything that shapes the augmented rows.

    Args:
        sources: Query sources, any of ``"crop"`` (a random sentence of the document), ``"synthetic"`` (LLM-written
            queries) and ``"title"`` (the document's title as a query for its text, as in E5's title-passage
            pairs; documents without a title make no such query).
        llm: Causal LM with a chat template for synthetic queries and LLM reranking: a local folder or
            ``"smollm2-135m"`` (the embedded default).
        backend: ``"auto"``, ``"transformers"`` or ``"vllm"`` (see :func:`st_drama.augment.llm.load_chat_lm`).
        precision: ``"auto"`` (bf16 autocast where it is fast), ``"bf16"`` or ``"fp32"``.
        batch_size: Prompts per LLM batch (and texts per batch of a dense first-stage retriever).
        retriever: First stage: ``"bm25"`` (bm25s), ``"minilm"`` (the installed all-MiniLM-L6-v2) or a
            SentenceTransformer folder.
        retriever_fusion: Fuse a dense first stage with BM25 this way (a :class:`FusionConfig`, or ``"rsf:0.3"``:
            method and the dense ranking's weight, as the evaluation's hybrids); None: the dense ranking alone.
        rerank: ``"none"``, ``"listwise"``, ``"pointwise"``, ``"likelihood"`` (log p(query | passage)) or
            ``"pairrm"``.
        seed: Seeds every random choice (per chunk and per document, never per process).
        chunk_size: Documents per output chunk (the unit of resuming and sharding).
        max_docs: Make queries from the first N documents only (the whole corpus is still indexed, so negatives
            come from all of it).
        crop, generation, filters, mining, reranking: The steps' own settings.
        pairrm_weights: Local PairRM folder for ``rerank="pairrm"``.
        pairrm_backbone: Local backbone folder for PairRM when its config does not name one.
        device: Torch device for the LLM and rerankers (does not change the rows' recipe).
    """

    sources: tuple[str, ...] = DEFAULT_SOURCES
    llm: str = DEFAULT_LLM_NAME
    backend: str = "auto"
    precision: str = "auto"
    batch_size: int = 8
    retriever: str = "bm25"
    retriever_fusion: FusionConfig | None = None
    rerank: str = "none"
    seed: int = DEFAULT_SEED
    chunk_size: int = 32
    max_docs: int | None = None
    crop: CropConfig = field(default_factory=CropConfig)
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    filters: QueryFilterConfig = field(default_factory=QueryFilterConfig)
    mining: MiningConfig = field(default_factory=MiningConfig)
    reranking: RerankConfig = field(default_factory=RerankConfig)
    pairrm_weights: str | None = None
    pairrm_backbone: str | None = None
    device: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "sources", checked_sources(self.sources))
        for name, config_class in (
            ("crop", CropConfig),
            ("generation", GenerationConfig),
            ("filters", QueryFilterConfig),
            ("mining", MiningConfig),
            ("reranking", RerankConfig),
        ):
            object.__setattr__(self, name, nested(getattr(self, name), config_class))
        if self.max_docs is not None and self.max_docs < 1:
            raise ValueError(f"max_docs must be positive, got {self.max_docs}")
        if self.rerank not in RERANKERS:
            raise ValueError(f"rerank must be one of {RERANKERS}, got {self.rerank!r}")
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {self.backend!r}")
        if self.rerank in SCORING_RERANKERS and self.backend == "vllm":
            raise ValueError(
                f"The {self.rerank} reranker reads token probabilities, which only the transformers backend gives; "
                "use backend 'transformers' or 'auto'."
            )
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.batch_size < 1 or self.chunk_size < 1:
            raise ValueError("batch_size and chunk_size must be at least 1")
        if self.retriever_fusion is not None:
            object.__setattr__(self, "retriever_fusion", single_fusion(self.retriever_fusion))
            if self.retriever == "bm25":
                raise ValueError("retriever_fusion fuses a dense first stage with BM25, but the retriever is 'bm25'.")

    @property
    def num_negatives(self) -> int:
        return self.mining.num_negatives

    @property
    def needs_llm(self) -> bool:
        return "synthetic" in self.sources or self.rerank in LLM_RERANKERS

    def recipe(self) -> dict[str, Any]:
        """The settings as JSON-ready data, without run-only ones (compared when resuming)."""
        data = json.loads(json.dumps(dataclasses.asdict(self)))
        for name in RUN_ONLY_SETTINGS:
            data.pop(name, None)
        data["num_negatives"] = self.num_negatives
        return data


def single_fusion(spec: FusionConfig | str | Mapping[str, Any]) -> FusionConfig:
    """One fusion from a FusionConfig, ``"rsf:0.3"`` or its fields."""
    fusions = parse_fusions(spec)
    if len(fusions) != 1:
        raise ValueError(f"retriever_fusion is one fusion (e.g. 'rsf:0.3'), got {spec!r}.")
    return fusions[0]


def checked_sources(sources: Sequence[str]) -> tuple[str, ...]:
    """``sources`` as a tuple, or a ValueError when it is empty, a bare string or names an unknown source."""
    if not sources or isinstance(sources, str) or set(sources) - set(SOURCES):
        raise ValueError(f"augment sources must be a non-empty list drawn from {SOURCES}, got {sources!r}.")
    return tuple(sources)

"""LLM data augmentation, DRAMA style: cropped-sentence and LLM synthetic queries, first-stage candidate mining,
optional LLM reranking (listwise, pointwise, query likelihood, llm-blender PairRM), written as resumable,
shardable parquet chunks.

Command line: ``st-drama augment CORPUS OUTPUT_DIR [--sources crop,synthetic] [--rerank ...] [--shard i/n]``.
Python::

    from st_drama.augment import AugmentConfig, Augmenter

    dataset = Augmenter(AugmentConfig(sources=("crop", "title"))).generate("cranfield", "augmented/", progress=False)

The output folder holds parquet files under ``data/`` (one per chunk of documents): ``datasets.load_dataset(
"augmented/", split="train")`` reads them, with columns ``query, positive, negative_1 .. negative_k, source, doc_id,
language``. ``SentenceTransformerTrainer`` takes ``dataset.select_columns(["query", "positive", "negative_1", ...])``
(the first columns in order; a loss such as ``MultipleNegativesRankingLoss`` reads them as anchor, positive and
negatives). See :mod:`st_drama.augment.writer` for the layout and resuming, :mod:`st_drama.augment.sharding` for
``--shard``.

Heavy dependencies (torch, transformers, datasets, bm25s, llm-blender, vLLM) load only when used.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "AugmentConfig": "config",
    "CropConfig": "config",
    "GenerationConfig": "config",
    "MiningConfig": "config",
    "QueryFilterConfig": "config",
    "RerankConfig": "config",
    "SamplingConfig": "config",
    "Augmenter": "augmenter",
    "SyntheticQueryGenerator": "synthetic_queries",
    "BM25Retriever": "mining",
    "SentenceTransformerRetriever": "mining",
    "ListwiseReranker": "rerank",
    "PointwiseReranker": "rerank",
    "PairRMReranker": "pairrm",
    "TransformersChatLM": "llm",
    "load_chat_lm": "llm",
    "Shard": "sharding",
    "load_augmented_dataset": "writer",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

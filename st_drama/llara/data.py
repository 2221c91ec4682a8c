"""(text, next passage) rows for LLaRA's EBAE and EBAR tasks, cut from any corpus."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from typing import Any

from datasets import Dataset

from st_drama.corpus import ReadReport, load_corpus

logger = logging.getLogger(__name__)


def chunk_document(token_ids: list[int], chunk_tokens: int, min_chunk_tokens: int) -> list[list[int]]:
    """Consecutive chunks of ``chunk_tokens`` tokens; a last chunk shorter than ``min_chunk_tokens`` joins the one
    before it (so no row predicts from or towards a scrap)."""
    chunks = [token_ids[start : start + chunk_tokens] for start in range(0, len(token_ids), chunk_tokens)]
    if len(chunks) > 1 and len(chunks[-1]) < min_chunk_tokens:
        tail = chunks.pop()
        chunks[-1] = chunks[-1] + tail
    return chunks


def build_pretraining_dataset(
    corpus: str | os.PathLike | Iterable[Any],
    tokenizer: Any,
    chunk_tokens: int = 128,
    min_chunk_tokens: int | None = None,
    max_documents: int | None = None,
    skip_malformed: bool = False,
    report: ReadReport | None = None,
) -> Dataset:
    """Split each document into consecutive chunks of ``chunk_tokens`` tokens and pair each chunk with the next.

    Every chunk appears once as ``text``: paired with the following chunk as ``next`` (EBAE and EBAR), and the last
    chunk of a document (or a document too short to split) with an empty ``next`` (EBAE only).

    Args:
        corpus: A BEIR folder, JSONL file, folder of text files, ``datasets.Dataset`` or list of strings (see
            :func:`st_drama.corpus.load_corpus`; bad rows raise an error naming file and line).
        tokenizer: The model's tokenizer (chunks are measured in its tokens).
        chunk_tokens: Tokens per chunk.
        min_chunk_tokens: Shortest last chunk kept on its own (default: a quarter of ``chunk_tokens``).
        max_documents: Use only the first documents.
        skip_malformed: Skip and count bad or empty documents instead of raising.
        report: Receives the skip counts.

    Returns:
        A ``datasets.Dataset`` with columns ``text`` and ``next``.
    """
    if chunk_tokens < 8:
        raise ValueError(f"chunk_tokens must be at least 8, got {chunk_tokens}.")
    min_chunk_tokens = chunk_tokens // 4 if min_chunk_tokens is None else min_chunk_tokens
    documents = load_corpus(corpus, skip_malformed=skip_malformed, report=report)[:max_documents]
    texts, nexts = [], []
    for document in documents:
        token_ids = tokenizer(document.full_text, add_special_tokens=False)["input_ids"]
        chunks = [tokenizer.decode(chunk) for chunk in chunk_document(token_ids, chunk_tokens, min_chunk_tokens)]
        texts.extend(chunks)
        nexts.extend([*chunks[1:], ""])
    pairs = sum(1 for next_text in nexts if next_text)
    empty = sum(1 for document in documents if not document.full_text.strip())
    logger.info(
        f"{len(documents)} documents -> {len(texts)} rows ({pairs} with a next passage, EBAE+EBAR; {empty} documents "
        "without text make none)"
    )
    return Dataset.from_dict({"text": texts, "next": nexts})

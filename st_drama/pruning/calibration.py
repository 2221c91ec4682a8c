"""Calibration and training text for pruning: any text source, packed into fixed-length token blocks under a
token budget.

Texts are tokenized one at a time and joined with the EOS token, so a budget of N tokens reads only as many texts
as it needs from a long (or endless) stream.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import torch

from st_drama.corpus import CorpusFormatError, bundled_collection, load_corpus

logger = logging.getLogger(__name__)

DEFAULT_SEQUENCE_LENGTH = 256


@dataclass
class TokenBlocks:
    """Token ids packed into blocks of ``sequence_length`` (the last block may be shorter)."""

    blocks: list[torch.Tensor]
    sequence_length: int
    source: str
    texts_read: int

    @property
    def num_tokens(self) -> int:
        return sum(int(block.numel()) for block in self.blocks)

    def batches(self, batch_size: int) -> Iterator[torch.Tensor]:
        """``[batch, length]`` tensors; blocks of different lengths never share a batch (no padding needed)."""
        for start in range(0, len(self.blocks), batch_size):
            chunk = self.blocks[start : start + batch_size]
            by_length: dict[int, list[torch.Tensor]] = {}
            for block in chunk:
                by_length.setdefault(int(block.numel()), []).append(block)
            for same_length in by_length.values():
                yield torch.stack(same_length)

    def num_batches(self, batch_size: int) -> int:
        return sum(1 for _ in self.batches(batch_size))


def describe_text_source(source: Any) -> str:
    """A short, JSON-friendly description of where texts came from (for provenance)."""
    if source is None:
        return f"bundled:{bundled_collection('cranfield')}"
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    if hasattr(source, "path"):  # a corpus path read ahead (the pruner checks it before loading the model)
        return str(source.path)
    if hasattr(source, "column_names"):
        return f"dataset with columns {list(source.column_names)} ({len(source)} rows)"
    if isinstance(source, (list, tuple)):
        # A digest, so that a rerun with other texts of the same count is not taken for the same run.
        digest = hashlib.sha256("\x00".join(map(str, source)).encode("utf-8", "replace")).hexdigest()[:12]
        return f"{len(source)} texts given in memory (sha256 {digest})"
    return f"texts from a {type(source).__name__}"


def iter_texts(source: Any) -> Iterator[str]:
    """Texts from ``source``: None (the bundled Cranfield corpus), a corpus path (anything
    :func:`st_drama.corpus.load_corpus` reads), a ``datasets.Dataset`` with a ``text`` column, or any iterable of
    strings (read lazily)."""
    if source is None:
        source = bundled_collection("cranfield")
    if isinstance(source, (str, os.PathLike)) or hasattr(source, "column_names"):
        # Empty documents carry no tokens: keeping them is harmless, rejecting them would refuse real corpora.
        for document in load_corpus(source, keep_empty=True):
            yield document.full_text
        return
    if not isinstance(source, Iterable):
        raise TypeError(f"Calibration texts must be an iterable of strings or a corpus path, got {type(source)}.")
    for index, text in enumerate(source):
        if not isinstance(text, str):
            raise CorpusFormatError(f"Calibration text {index} is a {type(text).__name__}, not a string.")
        yield text


def pack_token_blocks(
    tokenizer: Any,
    texts: Iterable[str],
    max_tokens: int,
    sequence_length: int = DEFAULT_SEQUENCE_LENGTH,
    source: str = "texts",
) -> TokenBlocks:
    """Tokenize texts in order, separate them with EOS, and cut the stream into blocks until ``max_tokens``.

    Raises:
        ValueError: when the texts hold no tokens at all.
    """
    if max_tokens < 2:
        raise ValueError(f"The token budget must be at least 2 tokens, got {max_tokens}.")
    if sequence_length < 2:
        raise ValueError(f"sequence_length must be at least 2, got {sequence_length}.")
    separator = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    stream: list[int] = []
    blocks: list[torch.Tensor] = []
    taken = 0
    texts_read = 0
    for text in texts:
        if not text.strip():
            continue
        texts_read += 1
        stream.extend(tokenizer(text, add_special_tokens=False)["input_ids"])
        stream.extend(separator)
        while len(stream) >= sequence_length and taken < max_tokens:
            length = min(sequence_length, max_tokens - taken)
            if length < 2:
                taken = max_tokens
                break
            blocks.append(torch.tensor(stream[:length], dtype=torch.long))
            del stream[:length]
            taken += length
        if taken >= max_tokens:
            break
    if taken < max_tokens and len(stream) >= 2:
        length = min(len(stream), max_tokens - taken)
        blocks.append(torch.tensor(stream[:length], dtype=torch.long))
        taken += length
    if not blocks:
        raise ValueError(f"The texts from {source} hold no tokens to calibrate or train on.")
    if taken < max_tokens:
        logger.info(f"{source} holds only {taken:,} tokens (budget {max_tokens:,}); using all of them.")
    return TokenBlocks(blocks=blocks, sequence_length=sequence_length, source=source, texts_read=texts_read)


def token_blocks(
    tokenizer: Any, source: Any, max_tokens: int, sequence_length: int = DEFAULT_SEQUENCE_LENGTH
) -> TokenBlocks:
    """:func:`pack_token_blocks` over :func:`iter_texts` of ``source``."""
    description = describe_text_source(source)
    return pack_token_blocks(tokenizer, iter_texts(source), max_tokens, sequence_length, source=description)

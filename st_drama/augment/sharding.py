"""Deterministic work split: documents are cut into fixed chunks, and ``--shard i/n`` takes a contiguous run of
chunks. Every chunk is made the same way whichever process makes it (its randomness is seeded from the run's seed
and the chunk's index), so the shards' outputs, concatenated in shard order, equal a single run's."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Shard:
    """Part ``index`` (1-based) of ``count``."""

    index: int = 1
    count: int = 1

    def __post_init__(self) -> None:
        if self.count < 1 or not 1 <= self.index <= self.count:
            raise ValueError(f"Invalid shard {self.index}/{self.count}: shards are numbered 1..n, e.g. 1/4 ... 4/4.")

    def chunk_range(self, num_chunks: int) -> range:
        """This shard's chunks: a contiguous run, the runs of all shards covering ``range(num_chunks)`` in order."""
        start = num_chunks * (self.index - 1) // self.count
        end = num_chunks * self.index // self.count
        return range(start, end)

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str) -> Shard:
    """``"2/4"`` -> ``Shard(2, 4)``."""
    parts = text.split("/")
    if len(parts) != 2 or not all(part.strip().isdigit() for part in parts):
        raise ValueError(f"--shard expects i/n (e.g. 2/4), got {text!r}")
    return Shard(int(parts[0]), int(parts[1]))


def chunk_bounds(num_documents: int, chunk_size: int) -> list[tuple[int, int]]:
    """``(start, end)`` document positions of each chunk."""
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be at least 1, got {chunk_size}")
    return [(start, min(start + chunk_size, num_documents)) for start in range(0, num_documents, chunk_size)]


def derive_seed(seed: int, *parts: object) -> int:
    """A 31-bit seed from the run's seed and a label, stable across processes and Python versions."""
    digest = hashlib.sha256("\x1f".join(str(part) for part in (seed, *parts)).encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF

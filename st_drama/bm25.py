"""BM25, the one home for it: a bm25s index over a fixed list of texts, used by augmentation (first-stage mining),
evaluation (the BM25 baseline under MTEB) and hybrid retrieval.

The plain baseline: bm25s' lowercase word tokens, English stopwords for English text and none otherwise, no
stemming, Lucene's BM25 (k1=1.5, b=0.75). mteb ships its own bm25s wrapper, but it stems every language it knows
with PyStemmer (not a dependency here) and removes frequent words from languages without a stopword list.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

BM25_METHODS = ("lucene", "robertson", "atire", "bm25l", "bm25+")


class BM25Index:
    """bm25s over ``texts``; :meth:`search` gives, per query, the indices of the best texts and their scores.

    Args:
        texts: The documents (title and text as one string, the way the dense models see them).
        english_stopwords: Remove English stopwords from documents and queries (for English text).
        k1: Term-frequency saturation.
        b: Length normalisation.
        method: bm25s' variant (``"lucene"``, ``"robertson"``, ``"atire"``, ``"bm25l"``, ``"bm25+"``).
    """

    def __init__(
        self,
        texts: Sequence[str],
        english_stopwords: bool = False,
        k1: float = 1.5,
        b: float = 0.75,
        method: str = "lucene",
    ) -> None:
        import bm25s

        if method not in BM25_METHODS:
            raise ValueError(f"BM25 method must be one of {BM25_METHODS}, got {method!r}.")
        logging.getLogger("bm25s").setLevel(logging.WARNING)  # it logs every index build at DEBUG
        self.stopwords = "en" if english_stopwords else None
        self.num_documents = len(texts)
        self.index = bm25s.BM25(k1=k1, b=b, method=method)
        if texts:
            self.index.index(
                bm25s.tokenize(list(texts), stopwords=self.stopwords, show_progress=False), show_progress=False
            )

    def search(self, queries: Sequence[str], top_k: int) -> tuple[list[list[int]], list[list[float]]]:
        """For each query, the indices of its ``top_k`` best texts (best first) and their scores; texts sharing no
        word with the query come last, with score 0."""
        import bm25s

        if not queries or not self.num_documents:
            return [[] for _ in queries], [[] for _ in queries]
        tokens = bm25s.tokenize(list(queries), stopwords=self.stopwords, show_progress=False)
        k = min(top_k, self.num_documents)
        indices, scores = self.index.retrieve(tokens, k=k, show_progress=False, n_threads=1)
        return indices.tolist(), scores.tolist()

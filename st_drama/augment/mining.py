"""First-stage candidate mining: retrieve for each query, then pick positives and hard negatives by rank.

DRAMA: positives from ranks 1-10, hard negatives from ranks 30-50. The false-negative guard never lets a negative be
the query's source document, one of its positives, an exact duplicate (same normalised text) of a positive, or a
document the retriever scores almost as high as the positive.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from .text import normalize_text

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from st_drama.corpus import Document

REJECT_NO_MATCH = "no retrieval match"
REJECT_FEW_NEGATIVES = "too few negatives"


class Retriever(Protocol):
    """A first-stage retriever over a fixed corpus."""

    def search(self, queries: Sequence[str], top_k: int) -> tuple[list[list[int]], list[list[float]]]:
        """For each query, document indices best first and their scores."""
        ...


@dataclass(frozen=True)
class MiningSettings:
    """Which ranks supply positives and negatives (1-based, inclusive).

    Args:
        positive_ranks: Ranks whose documents count as positives (never negatives).
        negative_ranks: Ranks that supply hard negatives; when too few survive the guard, later ranks fill in.
        num_negatives: Negatives per row (``negative_1`` ... ``negative_k``).
        positives_per_query: Rows per query, one per positive, taken in order from the source document (synthetic
            queries) and then ranks ``positive_ranks``.
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
            low, high = getattr(self, name)
            if not 1 <= low <= high:
                raise ValueError(f"{name} must be 1-based and ordered (low <= high), got {(low, high)}")
        if self.num_negatives < 1 or self.positives_per_query < 1:
            raise ValueError("num_negatives and positives_per_query must be at least 1")

    @property
    def retrieval_depth(self) -> int:
        """How many candidates to retrieve: the negative range plus room to replace guarded ones."""
        return self.negative_ranks[1] + 2 * self.num_negatives


@dataclass(frozen=True)
class MinedRow:
    """One training row as document indices."""

    positive: int
    negatives: list[int]


class BM25Retriever:
    """bm25s over the documents' title + text, with English stop words removed when the corpus is English.

    Args:
        documents: The corpus.
        language: The corpus language (``"en"`` enables English stop words).
    """

    def __init__(self, documents: Sequence[Document], language: str = "en") -> None:
        import bm25s
        from bm25s.tokenization import Tokenizer

        logging.getLogger("bm25s").setLevel(logging.WARNING)  # it logs every index build at DEBUG
        self.tokenizer = Tokenizer(stopwords="en" if language == "en" else None)
        corpus_ids = self.tokenizer.tokenize(
            [document.full_text for document in documents], return_as="ids", show_progress=False
        )
        self.index = bm25s.BM25()
        self.index.index(corpus_ids, show_progress=False)
        self.num_documents = len(documents)

    def search(self, queries: Sequence[str], top_k: int) -> tuple[list[list[int]], list[list[float]]]:
        if not queries:
            return [], []
        query_ids = self.tokenizer.tokenize(list(queries), return_as="ids", update_vocab=False, show_progress=False)
        k = min(top_k, self.num_documents)
        indices, scores = self.index.retrieve(query_ids, k=k, show_progress=False, n_threads=1)
        return indices.tolist(), scores.tolist()


class SentenceTransformerRetriever:
    """Exact dense search with any SentenceTransformer (``encode_query`` / ``encode_document``, cosine).

    Args:
        model: A loaded SentenceTransformer, or a local folder to load.
        documents: The corpus.
        batch_size: Encoding batch size.
    """

    def __init__(self, model: SentenceTransformer | str, documents: Sequence[Document], batch_size: int = 32) -> None:
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(model) if isinstance(model, str) else model
        self.batch_size = batch_size
        self.document_embeddings = self.model.encode_document(
            [document.full_text for document in documents],
            batch_size=batch_size,
            convert_to_tensor=True,
            normalize_embeddings=True,
        )

    def search(self, queries: Sequence[str], top_k: int) -> tuple[list[list[int]], list[list[float]]]:
        import torch

        if not queries:
            return [], []
        query_embeddings = self.model.encode_query(
            list(queries), batch_size=self.batch_size, convert_to_tensor=True, normalize_embeddings=True
        )
        scores = query_embeddings @ self.document_embeddings.T
        top = torch.topk(scores, k=min(top_k, scores.shape[1]), dim=1)
        return top.indices.tolist(), top.values.float().tolist()


class CandidateSelector:
    """Positives and guarded hard negatives from a ranked candidate list.

    Args:
        documents: The corpus (for the exact-duplicate check).
        settings: Rank ranges and counts.
    """

    def __init__(self, documents: Sequence[Document], settings: MiningSettings) -> None:
        self.documents = documents
        self.settings = settings
        self._normalized: dict[int, str] = {}

    def normalized(self, doc_index: int) -> str:
        """The document's normalised text (cached: only candidates are ever normalised)."""
        if doc_index not in self._normalized:
            self._normalized[doc_index] = normalize_text(self.documents[doc_index].full_text)
        return self._normalized[doc_index]

    def from_retrieval(
        self, ranked: list[int], scores: list[float], source: int, source_is_positive: bool
    ) -> list[MinedRow] | str:
        """Rows from first-stage ranks, or a rejection reason.

        Args:
            ranked: Document indices, best first.
            scores: Their retrieval scores.
            source: The document the query was made from (never a negative).
            source_is_positive: Put the source document first among the positives (synthetic queries); such a
                query is kept even when the retriever matches nothing (its negatives are then arbitrary documents).
        """
        # Without any retrieval match, only a query whose positive is known (its source document) is usable.
        if not ranked or (scores[0] <= 0 and not source_is_positive):
            return REJECT_NO_MATCH
        low, high = self.settings.positive_ranks
        pool = ([source] if source_is_positive else []) + ranked[low - 1 : high]
        positives = list(dict.fromkeys(pool))[: self.settings.positives_per_query]
        score_of = dict(zip(ranked, scores, strict=True))
        positive_score = max((score_of[index] for index in positives if index in score_of), default=None)
        start = self.settings.negative_ranks[0] - 1
        negatives = self.guarded_negatives(
            ranked[start:],
            excluded={source, *pool},
            positives=positives,
            scores=score_of,
            positive_score=positive_score,
        )
        if len(negatives) < self.settings.num_negatives:
            return REJECT_FEW_NEGATIVES
        return [MinedRow(positive=positive, negatives=negatives) for positive in positives]

    def from_reranking(
        self, reranked: list[int], fallback: list[int], source: int, rerank_negative_ranks: tuple[int, int]
    ) -> list[MinedRow] | str:
        """One row: positive = reranked #1, negatives from reranked ``rerank_negative_ranks`` (DRAMA: 10-20),
        topped up from ``fallback`` (first-stage candidates past the reranked ones) when the guard removes some."""
        if not reranked:
            return REJECT_NO_MATCH
        positive = reranked[0]
        low, high = rerank_negative_ranks
        candidates = reranked[low - 1 : high] + [index for index in fallback if index not in set(reranked)]
        negatives = self.guarded_negatives(candidates, excluded={source, positive}, positives=[positive])
        if len(negatives) < self.settings.num_negatives:
            return REJECT_FEW_NEGATIVES
        return [MinedRow(positive=positive, negatives=negatives)]

    def guarded_negatives(
        self,
        candidates: list[int],
        excluded: set[int],
        positives: list[int],
        scores: dict[int, float] | None = None,
        positive_score: float | None = None,
    ) -> list[int]:
        """The first ``num_negatives`` candidates that pass the false-negative guard."""
        positive_texts = {self.normalized(index) for index in positives}
        ratio = self.settings.max_negative_score_ratio
        score_limit = ratio * positive_score if ratio is not None and positive_score and positive_score > 0 else None
        negatives: list[int] = []
        for index in candidates:
            if index in excluded or index in negatives:
                continue
            if score_limit is not None and scores is not None and scores.get(index, 0.0) >= score_limit:
                continue
            if self.normalized(index) in positive_texts:
                continue
            negatives.append(index)
            if len(negatives) == self.settings.num_negatives:
                break
        return negatives

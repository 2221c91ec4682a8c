"""First-stage candidate mining: retrieve for each query, then pick positives and hard negatives by rank.

DRAMA: positives from ranks 1-10, hard negatives from ranks 30-50. The false-negative guard never lets a negative be
the query's source document, one of its positives, an exact duplicate (same normalised text) of a positive, or a
document the retriever scores almost as high as the positive.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from .config import MiningConfig
from .text import normalize_text

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from st_drama.corpus import Document
    from st_drama.evaluation.hybrid import FusionConfig

REJECT_NO_MATCH = "no retrieval match"
REJECT_FEW_NEGATIVES = "too few negatives"


class Retriever(Protocol):
    """A first-stage retriever over a fixed corpus."""

    def search(self, queries: Sequence[str], top_k: int) -> tuple[list[list[int]], list[list[float]]]:
        """For each query, document indices best first and their scores."""
        ...


@dataclass(frozen=True)
class MinedRow:
    """One training row as document indices."""

    positive: int
    negatives: list[int]


class BM25Retriever:
    """BM25 (:class:`st_drama.bm25.BM25Index`) over the documents' title + text.

    Args:
        documents: The corpus.
        english_stopwords: Remove English stop words (for an English corpus).
    """

    def __init__(self, documents: Sequence[Document], english_stopwords: bool = True) -> None:
        from st_drama.bm25 import BM25Index

        self.index = BM25Index([document.full_text for document in documents], english_stopwords=english_stopwords)

    def search(self, queries: Sequence[str], top_k: int) -> tuple[list[list[int]], list[list[float]]]:
        if not queries:
            return [], []
        return self.index.search(queries, top_k)


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


class FusedRetriever:
    """A dense first stage fused with BM25 the way the evaluation fuses them (:func:`st_drama.evaluation.hybrid.fuse`):
    each ranking contributes its top ``fusion.depth`` documents (at least as many as asked for), BM25's only where it
    matches a word.

    Args:
        dense: The dense retriever (first in the fusion, weighted ``fusion.dense_weight``).
        bm25: The BM25 retriever.
        fusion: How the two rankings are fused.
    """

    def __init__(self, dense: Retriever, bm25: Retriever, fusion: FusionConfig) -> None:
        self.dense = dense
        self.bm25 = bm25
        self.fusion = fusion

    def search(self, queries: Sequence[str], top_k: int) -> tuple[list[list[int]], list[list[float]]]:
        from st_drama.evaluation.hybrid import fused_top

        depth = max(top_k, self.fusion.depth)
        dense_ranked, dense_scores = self.dense.search(queries, depth)
        bm25_ranked, bm25_scores = self.bm25.search(queries, depth)
        ranked: list[list[int]] = []
        scores: list[list[float]] = []
        for row in range(len(queries)):
            dense_ranking = dict(zip(dense_ranked[row], dense_scores[row], strict=True))
            bm25_ranking = dict(zip(bm25_ranked[row], bm25_scores[row], strict=True))
            best = fused_top(dense_ranking, bm25_ranking, self.fusion, top_k)
            ranked.append([index for index, _ in best])
            scores.append([score for _, score in best])
        return ranked, scores


class CandidateSelector:
    """Positives and guarded hard negatives from a ranked candidate list.

    Args:
        documents: The corpus (for the exact-duplicate check).
        settings: Rank ranges and counts.
    """

    def __init__(self, documents: Sequence[Document], settings: MiningConfig) -> None:
        self.documents = documents
        self.settings = settings
        self._normalized: dict[int, str] = {}

    def normalized(self, doc_index: int) -> str:
        """The document's normalised text (cached: only candidates are ever normalised)."""
        if doc_index not in self._normalized:
            self._normalized[doc_index] = normalize_text(self.documents[doc_index].full_text)
        return self._normalized[doc_index]

    def has_text(self, doc_index: int) -> bool:
        """Whether the document has text: an empty document (kept by the corpus reader) is never a training text."""
        return bool(self.normalized(doc_index))

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
        positives = [index for index in dict.fromkeys(pool) if self.has_text(index)][
            : self.settings.positives_per_query
        ]
        if not positives:
            return REJECT_NO_MATCH
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
        reranked = [index for index in reranked if self.has_text(index)]
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
            if index in excluded or index in negatives or not self.has_text(index):
                continue
            if score_limit is not None and scores is not None and scores.get(index, 0.0) >= score_limit:
                continue
            if self.normalized(index) in positive_texts:
                continue
            negatives.append(index)
            if len(negatives) == self.settings.num_negatives:
                break
        return negatives

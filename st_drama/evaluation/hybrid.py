"""Hybrid retrieval: a dense model fused with BM25, as an MTEB search model and on your own corpus.

Fusion is mteb's (``mteb.models.HybridSearch`` and its fusion functions): reciprocal rank fusion (``"rrf"``,
``weight / (k + rank)`` summed over the two rankings), relative score fusion (``"rsf"``, each ranking's scores
min-max normalised, then a weighted sum) or distribution-based score fusion (``"dbsf"``, scores normalised by their
mean and three standard deviations). Each retriever contributes its top ``depth`` documents; ``dense_weight`` is the
dense model's share of the fused score, BM25 gets the rest. Example::

    from st_drama import build_model
    from st_drama.evaluation.hybrid import FusionConfig, HybridRetriever

    model = build_model("smollm2-135m", max_seq_length=64)
    documents = ["Lift rises with the angle of attack.", "The boundary layer thickens downstream."]
    retriever = HybridRetriever(model, documents)  # FusionConfig(): relative score fusion, dense weight 0.3
    print(retriever.search(["what increases lift"], top_k=2))  # per query: [(document id, score), ...] best first
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

FUSION_METHODS = ("rrf", "rsf", "dbsf")


@dataclass(frozen=True)
class FusionConfig:
    """How a dense ranking and BM25's are fused.

    Args:
        method: ``"rrf"``, ``"rsf"`` or ``"dbsf"`` (see the module docstring).
        dense_weight: The dense model's share of the fused score, in [0, 1]; BM25 gets ``1 - dense_weight``.
        rrf_k: Reciprocal rank fusion's rank constant.
        depth: Documents each retriever contributes.
    """

    # Relative score fusion at 0.3 was the only fusion measured to beat BM25 on every shared collection (its mean
    # within noise of the best; a higher dense weight lost to BM25 where the model is weak); experiments/quality.md.
    method: str = "rsf"
    dense_weight: float = 0.3
    rrf_k: int = 60
    depth: int = 100

    def __post_init__(self) -> None:
        if self.method not in FUSION_METHODS:
            raise ValueError(f"fusion method must be one of {FUSION_METHODS}, got {self.method!r}.")
        if not 0.0 <= self.dense_weight <= 1.0:
            raise ValueError(f"dense_weight is a share in [0, 1], got {self.dense_weight}.")
        if self.rrf_k < 0 or self.depth < 1:
            raise ValueError(f"rrf_k must be >= 0 and depth >= 1, got {self.rrf_k} and {self.depth}.")

    @property
    def weights(self) -> list[float]:
        """``[dense, bm25]`` weights."""
        return [self.dense_weight, 1.0 - self.dense_weight]

    @property
    def label(self) -> str:
        """A short name: ``rsf-0.3``."""
        return f"{self.method}-{self.dense_weight:g}"


def fuse(rankings: Sequence[Mapping[str, float]], fusion: FusionConfig) -> dict[str, float]:
    """One query's fused scores from its ``[dense, bm25]`` rankings (``{document id: score}``), with mteb's fusion."""
    from mteb.models.hybrid_wrappers import fuse_dbsf, fuse_relative_score_fusion, fuse_rrf

    if fusion.method == "rrf":
        return dict(fuse_rrf(rankings, fusion.weights, rrf_k=fusion.rrf_k))
    if fusion.method == "rsf":
        return dict(fuse_relative_score_fusion(rankings, fusion.weights))
    return dict(fuse_dbsf(rankings, fusion.weights))


def fused_top(
    dense: Mapping[Any, float], bm25: Mapping[Any, float], fusion: FusionConfig, top_k: int
) -> list[tuple[Any, float]]:
    """One query's ``top_k`` (document, fused score), best first (ties by document), from its dense and BM25
    rankings; BM25 counts only the documents it matches (score above zero)."""
    matched = {document: score for document, score in bm25.items() if score > 0}
    fused = fuse([dense, matched], fusion)
    return sorted(fused.items(), key=lambda item: (-item[1], item[0]))[:top_k]


def hybrid_search(dense: Any, fusion: FusionConfig, bm25: Any = None) -> Any:
    """An MTEB search model fusing ``dense`` (an MTEB encoder, e.g. :class:`~st_drama.evaluation.STDramaEncoder`, or
    a search model) with BM25 (:class:`~st_drama.evaluation.BM25Search` by default). Its ModelMeta names both and
    the fusion, and its revision is the dense model's with the fusion settings, so MTEB's cache keeps each hybrid
    apart."""
    from mteb.models import HybridSearch

    from st_drama.runs import fingerprint

    from .bm25_search import BM25Search

    bm25 = bm25 if bm25 is not None else BM25Search()
    search = HybridSearch(
        [dense, bm25],
        weights=fusion.weights,
        sub_model_top_k=fusion.depth,
        fusion_strategy=lambda rankings, weights: fuse(rankings, fusion),
        rrf_k=fusion.rrf_k,
    )
    dense_meta = dense.mteb_model_meta
    revision = f"{dense_meta.revision}-{fingerprint({**asdict(fusion), 'bm25': bm25.settings()}, length=8)}"
    search.mteb_model_meta = dense_meta.model_copy(
        update={"name": f"{dense_meta.name}-bm25-{fusion.label}", "revision": revision, "model_type": ["hybrid"]}
    )
    return search


class HybridRetriever:
    """Search your own documents with a dense model fused with BM25.

    Args:
        model: A SentenceTransformer (queries through ``encode_query``, documents through ``encode_document``).
        documents: The corpus: texts, or anything :func:`st_drama.corpus.load_corpus` reads (a BEIR folder, a JSONL
            file, a folder of text files, a ``datasets.Dataset``).
        fusion: How the two rankings are fused.
        batch_size: Texts per encoding batch.
    """

    def __init__(self, model: Any, documents: Any, fusion: FusionConfig | None = None, batch_size: int = 32) -> None:
        from st_drama.bm25 import BM25Index
        from st_drama.corpus import load_corpus
        from st_drama.languages import corpus_language

        self.model = model
        self.fusion = fusion or FusionConfig()
        self.batch_size = batch_size
        self.documents = load_corpus(documents)
        texts = [document.full_text for document in self.documents]
        self.bm25 = BM25Index(texts, english_stopwords=corpus_language(texts).is_english)
        self.document_embeddings = model.encode_document(
            texts, batch_size=batch_size, convert_to_tensor=True, normalize_embeddings=True
        )

    def search(self, queries: Sequence[str], top_k: int = 10) -> list[list[tuple[str, float]]]:
        """Per query, ``(document id, fused score)`` of its ``top_k`` documents, best first."""
        import torch

        queries = list(queries)
        if not queries:
            return []
        depth = min(self.fusion.depth, len(self.documents))
        query_embeddings = self.model.encode_query(
            queries, batch_size=self.batch_size, convert_to_tensor=True, normalize_embeddings=True
        )
        dense = torch.topk(query_embeddings @ self.document_embeddings.T, k=depth, dim=1)
        bm25_indices, bm25_scores = self.bm25.search(queries, depth)
        results = []
        for row in range(len(queries)):
            dense_ranking = {
                self.documents[index].doc_id: float(score)
                for index, score in zip(dense.indices[row].tolist(), dense.values[row].tolist(), strict=True)
            }
            bm25_ranking = {
                self.documents[index].doc_id: score
                for index, score in zip(bm25_indices[row], bm25_scores[row], strict=True)
            }
            results.append(fused_top(dense_ranking, bm25_ranking, self.fusion, top_k))
        return results

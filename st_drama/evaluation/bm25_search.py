"""BM25 (:class:`st_drama.bm25.BM25Index`) as an MTEB search model, scored by the same retrieval evaluation as the
dense models: English stopwords for English tasks and none otherwise."""

from __future__ import annotations

import hashlib
import logging
from typing import TYPE_CHECKING, Any

from mteb.models import ModelMeta

from st_drama.bm25 import BM25Index
from st_drama.languages import iso639_3

if TYPE_CHECKING:
    from mteb.abstasks.task_metadata import TaskMetadata

logger = logging.getLogger(__name__)

BM25_MODEL_NAME = "baselines/bm25s"
BM25_REFERENCE = "https://github.com/xhluca/bm25s"


class BM25Search:
    """A BM25 retriever implementing MTEB's ``SearchProtocol`` (``index`` then ``search``).

    Args:
        k1: Term-frequency saturation.
        b: Length normalisation.
        method: bm25s' variant (``"lucene"``, ``"robertson"``, ``"atire"``, ``"bm25l"``, ``"bm25+"``).
        english_stopwords: Remove English stopwords for tasks whose language is English.
    """

    def __init__(
        self, k1: float = 1.5, b: float = 0.75, method: str = "lucene", english_stopwords: bool = True
    ) -> None:
        self.k1 = k1
        self.b = b
        self.method = method
        self.english_stopwords = english_stopwords
        self.stopwords: str | None = None
        self.retriever: BM25Index | None = None
        self.document_ids: list[str] = []
        self._meta = _bm25_model_meta(self.settings())

    def settings(self) -> dict[str, Any]:
        import bm25s

        return {
            "bm25s": bm25s.__version__,
            "k1": self.k1,
            "b": self.b,
            "method": self.method,
            "english_stopwords": self.english_stopwords,
        }

    @property
    def mteb_model_meta(self) -> ModelMeta:
        return self._meta

    def index(self, corpus: Any, *, task_metadata: TaskMetadata, hf_subset: str, **kwargs: Any) -> None:
        """Tokenize and index the corpus (title and text, as the dense models see them)."""
        self.stopwords = self._stopwords_for(task_metadata, hf_subset)
        self.document_ids = [str(row["id"]) for row in corpus]
        self.retriever = BM25Index(
            [_document_text(row) for row in corpus],
            english_stopwords=self.stopwords == "en",
            k1=self.k1,
            b=self.b,
            method=self.method,
        )

    def search(
        self,
        queries: Any,
        *,
        top_k: int,
        top_ranked: dict[str, list[str]] | None = None,
        **kwargs: Any,
    ) -> dict[str, dict[str, float]]:
        """``{query_id: {document_id: score}}`` for each query's ``top_k`` documents (only documents with a
        positive score: BM25 gives nothing to a document without a query word)."""
        if self.retriever is None:
            raise RuntimeError("BM25Search.search() called before index().")
        query_ids = [str(query_id) for query_id in queries["id"]]
        indices, scores = self.retriever.search(list(queries["text"]), top_k)
        results: dict[str, dict[str, float]] = {}
        for row, query_id in enumerate(query_ids):
            allowed = set(top_ranked[query_id]) if top_ranked and query_id in top_ranked else None
            ranked = {}
            for index, score in zip(indices[row], scores[row], strict=True):
                doc_id = self.document_ids[int(index)]
                if score > 0 and (allowed is None or doc_id in allowed):
                    ranked[doc_id] = float(score)
            results[query_id] = ranked
        return results

    def _stopwords_for(self, task_metadata: TaskMetadata, hf_subset: str) -> str | None:
        languages = task_metadata.eval_langs
        if isinstance(languages, dict):
            languages = languages.get(hf_subset, [])
        isos = {iso639_3(code) for code in languages}
        if self.english_stopwords and isos == {"eng"}:
            return "en"
        return None


def _document_text(row: dict[str, Any]) -> str:
    title = row.get("title") or ""
    return f"{title} {row['text']}".strip() if title else row["text"]


def _bm25_model_meta(settings: dict[str, Any]) -> ModelMeta:
    revision = hashlib.sha256(repr(sorted(settings.items())).encode()).hexdigest()[:12]
    return ModelMeta(
        loader=None,
        name=BM25_MODEL_NAME,
        revision=revision,
        release_date=None,
        languages=None,
        n_parameters=0,
        memory_usage_mb=None,
        max_tokens=None,
        embed_dim=None,
        license="mit",
        open_weights=True,
        public_training_code=None,
        public_training_data=None,
        framework=[],
        reference=BM25_REFERENCE,
        similarity_fn_name=None,
        use_instructions=False,
        training_datasets=set(),
        model_type=["sparse"],
    )

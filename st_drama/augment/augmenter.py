"""The augmenter: queries (cropped sentences, LLM synthetic queries, titles) -> first-stage candidates ->
optional LLM reranking -> rows ``query, positive, negative_1..k, source, doc_id, language``, written chunk by chunk.

Each chunk of documents is made from the corpus, the settings, the seed and the chunk's index only, so a killed run
resumes where it stopped and ``--shard i/n`` runs concatenate to the single-run result (see :mod:`.sharding`). For
the same reason duplicate queries are detected within a chunk, not across chunks.
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
import re
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from st_drama.corpus import Document, ReadReport, load_corpus
from st_drama.languages import corpus_language, detect_language
from st_drama.runs import check_output_dir

from .config import LLM_RERANKERS, SCORING_RERANKERS, AugmentConfig
from .crop import REJECT_NO_SPAN, crop_queries, without_crop
from .feasibility import feasible_config
from .mining import (
    BM25Retriever,
    CandidateSelector,
    FusedRetriever,
    MinedRow,
    Retriever,
    SentenceTransformerRetriever,
)
from .rerank import Reranker, make_reranker, reply_counts
from .sharding import Shard, chunk_bounds, derive_seed
from .synthetic_queries import REJECT_DUPLICATE, SyntheticQueryGenerator
from .text import normalize_text
from .writer import AugmentOutput, load_augmented_dataset

if TYPE_CHECKING:
    import datasets

    from .chat import ChatLM

logger = logging.getLogger(__name__)

# Which query stays when two sources make the same one for a document: a title row pairs the title with the rest of
# the document, whereas a crop that happens to be the title keeps it in its positive.
_DUPLICATE_PRIORITY = ("title", "crop", "synthetic")
# Sources whose query is made from a known document, which is then its positive whatever the retriever ranks first.
_SOURCE_IS_POSITIVE = ("synthetic", "title")
STEPS = ("index", "crop", "generation", "mining", "rerank", "write")
REJECT_NO_BODY = "no text besides the title"
# Rejected replies and queries are kept in the chunk markers up to this length.
_KEPT_CHARS = 300
# An LLM whose replies are mostly unusable (below this share valid or repaired) is not doing its job; judged once it
# has given this many replies of a kind.
MIN_USABLE_SHARE = 0.5
MIN_REPLIES_TO_JUDGE = 8


class NoRowsError(ValueError):
    """An augmentation run that ended with no row; the message gives the rejections per source and reason."""


class UnusableLLMError(RuntimeError):
    """The LLM's replies are mostly unusable (reranking replies that are no ranking, rejected synthetic queries)."""


def unusable_llm_problems(replies: dict[str, int], config: AugmentConfig, minimum: int = 1) -> list[str]:
    """What the reply counts say about the LLM: one line per task (reranking, synthetic queries) where fewer than
    half of at least ``minimum`` replies were usable. A reranker's usable replies are its complete rankings (or
    yes/no answers); repaired rankings are mostly the first-stage order, so they do not count."""
    problems = []
    rerank = {status: replies.get(f"rerank {status}", 0) for status in ("valid", "repaired", "invalid")}
    total = sum(rerank.values())
    if total >= minimum and rerank["valid"] < MIN_USABLE_SHARE * total:
        problems.append(
            f"The {config.rerank} reranker is not working with the LLM {config.llm!r}: only {rerank['valid']} of "
            f"{total} replies were complete rankings or answers ({rerank['repaired']} repaired into the first-stage "
            f"order, {rerank['invalid']} unusable). Use --rerank none, another reranker, or a stronger --llm."
        )
    synthetic = {status: replies.get(f"synthetic {status}", 0) for status in ("valid", "repaired", "rejected")}
    total = sum(synthetic.values())
    if total >= minimum and synthetic["rejected"] > (1 - MIN_USABLE_SHARE) * total:
        problems.append(
            f"Most synthetic queries from the LLM {config.llm!r} were rejected ({synthetic['rejected']} of {total}; "
            "reasons in the summary): it may be too small to write queries. Consider a stronger --llm or other "
            "--sources."
        )
    return problems


@dataclass(frozen=True)
class _Query:
    doc_index: int
    source: str
    text: str


@dataclass
class _ChunkCounts:
    documents: int = 0
    languages: Counter = field(default_factory=Counter)
    attempted: Counter = field(default_factory=Counter)
    rejections: dict[str, Counter] = field(default_factory=dict)
    rows: Counter = field(default_factory=Counter)
    rerank: Counter = field(default_factory=Counter)
    llm_replies: Counter = field(default_factory=Counter)
    rejected: list[dict[str, str]] = field(default_factory=list)

    def reject(self, source: str, reason: str, doc_id: str, text: str) -> None:
        """Count a rejection and keep what was rejected (the LLM's reply or the query) for auditing."""
        self.rejections.setdefault(source, Counter())[reason] += 1
        self.rejected.append({"source": source, "reason": reason, "doc_id": doc_id, "text": text[:_KEPT_CHARS]})

    def as_marker(self) -> dict[str, Any]:
        return {
            "documents": self.documents,
            "languages": dict(self.languages),
            "queries_per_source": dict(self.attempted),
            "rejections": {source: dict(reasons) for source, reasons in self.rejections.items()},
            "rows_per_source": dict(self.rows),
            "rerank": dict(self.rerank),
            "llm_replies": dict(self.llm_replies),
            "rejected": self.rejected,
        }


@dataclass
class StageTimes:
    """Seconds and items (queries or documents) per augmentation step, for throughput reports."""

    seconds: Counter = field(default_factory=Counter)
    items: Counter = field(default_factory=Counter)

    def add(self, step: str, started: float, items: int) -> None:
        self.seconds[step] += time.perf_counter() - started
        self.items[step] += items

    def throughput(self) -> dict[str, dict[str, float]]:
        return {
            step: {
                "seconds": round(self.seconds[step], 3),
                "items": self.items[step],
                "items_per_second": round(self.items[step] / self.seconds[step], 3) if self.seconds[step] else 0.0,
            }
            for step in STEPS
            if step in self.seconds
        }


class Augmenter:
    """Contrastive training data from any corpus, DRAMA style.

    Args:
        config: The recipe.
        chat_lm: An already loaded LLM backend (else loaded from ``config.llm`` when needed).
        reranker: An already built reranker (else built from ``config.rerank``).
        retriever_model: A loaded SentenceTransformer for the first stage (else ``config.retriever``).

    Example::

        from st_drama.augment import AugmentConfig, Augmenter

        config = AugmentConfig(sources=("crop", "title"), mining={"num_negatives": 3})
        dataset = Augmenter(config).generate("cranfield", "augmented/", progress=False)
        train_dataset = dataset.select_columns(["query", "positive", "negative_1", "negative_2", "negative_3"])
    """

    def __init__(
        self,
        config: AugmentConfig | None = None,
        chat_lm: ChatLM | None = None,
        reranker: Reranker | None = None,
        retriever_model: Any | None = None,
    ) -> None:
        self.config = config or AugmentConfig()
        self._chat_lm = chat_lm
        self._reranker = reranker
        self._retriever_model = retriever_model
        self.times = StageTimes()
        self._unusable_llm = "warn"
        self.last_summary: dict[str, Any] = {}
        self.read_report = ReadReport()

    def generate(
        self,
        corpus: str | os.PathLike | Iterable[Any],
        output_dir: str | os.PathLike,
        shard: Shard | None = None,
        skip_malformed: bool = False,
        progress: bool = True,
        unusable_llm: str = "warn",
    ) -> datasets.Dataset:
        """Make (or finish) this shard's chunks in ``output_dir`` and return all rows the folder holds.

        The settings are checked against the corpus before any model loads
        (:func:`~st_drama.augment.feasibility.feasible_config`). The LLM's replies are counted by status (valid,
        repaired, rejected or invalid) in the summary; when most of them are unusable the LLM is not doing its job.

        Args:
            corpus: Anything :func:`st_drama.corpus.load_corpus` reads, or a list of ``Document``.
            output_dir: Output folder; rerun with the same settings to resume.
            shard: Which part of the corpus this process makes.
            skip_malformed: Skip and count malformed corpus rows instead of raising.
            progress: Show a progress bar.
            unusable_llm: ``"warn"`` or ``"error"`` (stop at the first chunk that shows it) when most of the LLM's
                reranking replies are not complete rankings (or answers), or most of its synthetic queries are
                rejected.

        Raises:
            InfeasibleAugmentationError: The settings cannot make rows from this corpus (nothing is written).
            NoRowsError: The run ended with no row at all; the message gives the rejections per reason.
            UnusableLLMError: ``unusable_llm="error"`` and the LLM's replies are mostly unusable.
        """
        if unusable_llm not in ("warn", "error"):
            raise ValueError(f"unusable_llm must be 'warn' or 'error', got {unusable_llm!r}")
        shard = shard or Shard()
        check_output_dir(output_dir)
        documents = self._documents(corpus, skip_malformed)
        self.config = feasible_config(self.config, documents)
        self._unusable_llm = unusable_llm
        num_query_documents = min(len(documents), self.config.max_docs or len(documents))
        bounds = chunk_bounds(num_query_documents, self.config.chunk_size)
        output = AugmentOutput(output_dir, self.config.num_negatives)
        output.check_config({**self.config.recipe(), "corpus": _fingerprint(documents)})
        todo = [index for index in shard.chunk_range(len(bounds)) if index not in output.done_chunks()]
        if todo:
            self._run_chunks(documents, bounds, todo, output, progress)
        self.last_summary = {
            **output.summary(len(bounds)),
            "corpus_rows_skipped": dict(self.read_report.skipped),
            "empty_documents": self.read_report.empty_documents,
            "this_run": {"shard": str(shard), "chunks_made": len(todo), "steps": self.times.throughput()},
        }
        output.write_summary(self.last_summary, self.config.num_negatives)
        for problem in unusable_llm_problems(self.last_summary["llm_replies"], self.config):
            logger.warning(problem)
        if self.last_summary["rows"] == 0 and self.last_summary["chunks_done"] == len(bounds):
            raise NoRowsError(
                f"No training row was made from {len(documents)} documents:\n{format_summary(self.last_summary)}"
            )
        return load_augmented_dataset(output_dir)

    def _documents(self, corpus: Any, skip_malformed: bool) -> list[Document]:
        if isinstance(corpus, Sequence) and corpus and all(isinstance(item, Document) for item in corpus):
            return list(corpus)
        return load_corpus(corpus, skip_malformed=skip_malformed, report=self.read_report)

    def _run_chunks(
        self,
        documents: list[Document],
        bounds: list[tuple[int, int]],
        todo: list[int],
        output: AugmentOutput,
        progress: bool,
    ) -> None:
        from tqdm.auto import tqdm

        chunk_maker = _ChunkMaker(self, documents)
        replies: Counter = Counter()
        for index in tqdm(todo, desc="augment chunks", disable=not progress, unit="chunk"):
            start, end = bounds[index]
            rows, counts = chunk_maker.make_chunk(index, range(start, end))
            replies.update(counts.llm_replies)
            problems = unusable_llm_problems(replies, self.config, minimum=MIN_REPLIES_TO_JUDGE)
            if problems and self._unusable_llm == "error":
                # Not written: a rerun with other settings starts this chunk afresh.
                raise UnusableLLMError(" ".join(problems))
            started = time.perf_counter()
            output.write_chunk(index, rows, counts.as_marker())
            self.times.add("write", started, len(rows))

    def chat_lm(self) -> ChatLM:
        """The LLM backend, loaded on first use."""
        if self._chat_lm is None:
            from st_drama.default_llm import resolve_model_path

            from .llm import load_chat_lm

            backend = self.config.backend
            if backend == "auto" and self.config.rerank in SCORING_RERANKERS:
                backend = "transformers"  # their scores need token probabilities
            self._chat_lm = load_chat_lm(
                resolve_model_path(self.config.llm),
                backend=backend,
                precision=self.config.precision,
                batch_size=self.config.batch_size,
                device=self.config.device,
            )
        return self._chat_lm

    def reranker(self) -> Reranker | None:
        """The reranker, built on first use (None when reranking is off)."""
        if self._reranker is None and self.config.rerank != "none":
            needs_llm = self.config.rerank in LLM_RERANKERS
            self._reranker = make_reranker(
                self.config.rerank,
                chat_lm=self.chat_lm() if needs_llm else None,
                settings=self.config.reranking,
                pairrm_weights=self.config.pairrm_weights,
                pairrm_backbone=self.config.pairrm_backbone,
                device=self.config.device,
            )
        return self._reranker

    def retriever(self, documents: list[Document]) -> Retriever:
        """The first-stage retriever over the whole corpus (every shard indexes all documents)."""
        if self._retriever_model is None and self.config.retriever == "bm25":
            return bm25_retriever(documents)
        model = self._retriever_model if self._retriever_model is not None else self.config.retriever
        if model == "minilm":
            from st_drama.evaluation.baselines import load_minilm

            model = load_minilm(self.config.device)
        dense = SentenceTransformerRetriever(model, documents, batch_size=self.config.batch_size)
        if self.config.retriever_fusion is None:
            return dense
        return FusedRetriever(dense, bm25_retriever(documents), self.config.retriever_fusion)


def bm25_retriever(documents: list[Document]) -> BM25Retriever:
    """BM25 over the corpus, without English stop words when the corpus is in another language."""
    language = corpus_language(document.full_text for document in documents)
    return BM25Retriever(documents, english_stopwords=language.is_english)


class _ChunkMaker:
    """The augmentation steps for one corpus: built once per run, then called per chunk."""

    def __init__(self, generator: Augmenter, documents: list[Document]) -> None:
        self.generator = generator
        self.config = generator.config
        self.documents = documents
        self.times = generator.times
        started = time.perf_counter()
        self.retriever = generator.retriever(documents)
        self.times.add("index", started, len(documents))
        self.selector = CandidateSelector(documents, self.config.mining)
        self.synthetic = (
            SyntheticQueryGenerator(generator.chat_lm(), self.config.generation, self.config.filters)
            if "synthetic" in self.config.sources
            else None
        )
        self.reranker = generator.reranker()

    def make_chunk(self, chunk_index: int, doc_indices: range) -> tuple[list[dict[str, str]], _ChunkCounts]:
        counts = _ChunkCounts(documents=len(doc_indices))
        languages = {index: detect_language(self.documents[index].full_text[:2000]).iso for index in doc_indices}
        counts.languages.update(languages.values())
        queries = (
            self._crop_queries(doc_indices, counts)
            + self._synthetic_queries(chunk_index, doc_indices, languages, counts)
            + self._title_queries(doc_indices, counts)
        )
        queries = _deduplicated(queries, counts, self.documents)
        rows = self._rows(queries, languages, counts)
        return rows, counts

    def _crop_queries(self, doc_indices: range, counts: _ChunkCounts) -> list[_Query]:
        if "crop" not in self.config.sources:
            return []
        started = time.perf_counter()
        queries = []
        for index in doc_indices:
            document = self.documents[index]
            # Seeded per document, so a document's crops never depend on the chunk or shard it falls in.
            rng = random.Random(derive_seed(self.config.seed, "crop", document.doc_id))
            texts = crop_queries(document.full_text, rng, self.config.crop, self.config.crop.per_document)
            counts.attempted["crop"] += max(1, len(texts))
            if not texts:
                counts.reject("crop", REJECT_NO_SPAN, document.doc_id, document.full_text)
            queries.extend(_Query(index, "crop", text) for text in texts)
        self.times.add("crop", started, len(doc_indices))
        return queries

    def _synthetic_queries(
        self, chunk_index: int, doc_indices: range, languages: dict[int, str], counts: _ChunkCounts
    ) -> list[_Query]:
        if self.synthetic is None:
            return []
        started = time.perf_counter()
        texts = [self.documents[index].full_text for index in doc_indices]
        generated = self.synthetic.generate(
            texts,
            [languages[index] for index in doc_indices],
            seed=derive_seed(self.config.seed, "synthetic", chunk_index),
        )
        queries = []
        for item in generated:
            counts.attempted["synthetic"] += 1
            counts.llm_replies[f"synthetic {item.status}"] += 1
            if item.query is None:
                doc_id = self.documents[doc_indices[item.doc_index]].doc_id
                counts.reject("synthetic", item.rejection or "unknown", doc_id, item.reply)
            else:
                queries.append(_Query(doc_indices[item.doc_index], "synthetic", item.query))
        self.times.add("generation", started, len(generated))
        return queries

    def _title_queries(self, doc_indices: range, counts: _ChunkCounts) -> list[_Query]:
        if "title" not in self.config.sources:
            return []
        queries = []
        for index in doc_indices:
            document = self.documents[index]
            if not document.title.strip():
                continue
            counts.attempted["title"] += 1
            if not body_without_title(document).strip():
                counts.reject("title", REJECT_NO_BODY, document.doc_id, document.title)
            else:
                queries.append(_Query(index, "title", document.title.strip()))
        return queries

    def _rows(self, queries: list[_Query], languages: dict[int, str], counts: _ChunkCounts) -> list[dict[str, str]]:
        started = time.perf_counter()
        depth = max(self.config.mining.retrieval_depth, self.config.reranking.depth)
        ranked, scores = self.retriever.search([query.text for query in queries], depth)
        self.times.add("mining", started, len(queries))
        reranked = self._reranked(queries, ranked, counts) if self.reranker is not None else None
        rows = []
        for position, query in enumerate(queries):
            if reranked is None:
                mined = self.selector.from_retrieval(
                    ranked[position],
                    scores[position],
                    query.doc_index,
                    source_is_positive=query.source in _SOURCE_IS_POSITIVE,
                )
            else:
                fallback = ranked[position][self.config.mining.negative_ranks[0] - 1 :]
                mined = self.selector.from_reranking(
                    reranked[position], fallback, query.doc_index, self.config.reranking.negative_ranks
                )
            if isinstance(mined, str):
                counts.reject(query.source, mined, self.documents[query.doc_index].doc_id, query.text)
                continue
            rows.extend(self._row(query, row, languages[query.doc_index]) for row in mined)
            counts.rows[query.source] += len(mined)
        return rows

    def _reranked(self, queries: list[_Query], ranked: list[list[int]], counts: _ChunkCounts) -> list[list[int]]:
        started = time.perf_counter()
        depth = self.config.reranking.depth
        candidate_lists = []
        for query, candidates in zip(queries, ranked, strict=True):
            candidates = list(candidates[:depth])
            # The source document of a synthetic or title query is a known positive: make sure the reranker sees it.
            if query.source in _SOURCE_IS_POSITIVE and query.doc_index not in candidates:
                candidates[-1:] = [query.doc_index]
            candidate_lists.append(candidates)
        before = Counter(self.reranker.stats)
        orders = self.reranker.rerank(
            [query.text for query in queries],
            [[self.documents[index].full_text for index in candidates] for candidates in candidate_lists],
        )
        done = Counter(self.reranker.stats) - before
        counts.rerank.update(done)
        counts.llm_replies.update({f"rerank {status}": count for status, count in reply_counts(done).items()})
        self.times.add("rerank", started, len(queries))
        pairs = zip(candidate_lists, orders, strict=True)
        return [[candidates[position] for position in order] for candidates, order in pairs]

    def _row(self, query: _Query, mined: MinedRow, language: str) -> dict[str, str]:
        row = {"query": query.text, "positive": self._positive_text(query, mined.positive)}
        for number, negative in enumerate(mined.negatives, start=1):
            row[f"negative_{number}"] = self.documents[negative].full_text
        row.update(source=query.source, doc_id=self.documents[query.doc_index].doc_id, language=language)
        return row

    def _positive_text(self, query: _Query, positive: int) -> str:
        """The positive's text; a crop's own document loses the crop (with probability ``crop.context_removal``)
        and a title's own document loses its title."""
        document = self.documents[positive]
        if query.source == "title" and positive == query.doc_index:
            return body_without_title(document)
        if query.source != "crop" or positive != query.doc_index:
            return document.full_text
        rng = random.Random(derive_seed(self.config.seed, "crop-context", document.doc_id))
        if rng.random() >= self.config.crop.context_removal:
            return document.full_text
        return without_crop(document.full_text, query.text, self.config.crop.min_words, title=document.title)


_OPENING_QUOTE = "[\"'\u2018\u201c\u00ab]?"
_CLOSING_QUOTE = "[\"'\u2019\u201d\u00bb]?"


def body_without_title(document: Document) -> str:
    """The document's text without its title, also where the text repeats the title at its start (Cranfield)."""
    text = document.text.strip()
    words = document.title.split()
    if not words:
        return text
    quoted_title = _OPENING_QUOTE + r"\s+".join(re.escape(word) for word in words) + _CLOSING_QUOTE
    leading_title = re.match(quoted_title + r"(?=[.,:;]?(\s|$))", text, re.IGNORECASE)
    return text[leading_title.end() :].lstrip(" \t\n.:;,-") if leading_title else text


def _deduplicated(queries: list[_Query], counts: _ChunkCounts, documents: list[Document]) -> list[_Query]:
    """Queries in document order (title, crop, synthetic), dropping repeats of an earlier query in the chunk."""
    ordered = sorted(queries, key=lambda query: (query.doc_index, _DUPLICATE_PRIORITY.index(query.source)))
    seen: set[str] = set()
    kept = []
    for query in ordered:
        key = normalize_text(query.text)
        if key in seen:
            counts.reject(query.source, REJECT_DUPLICATE, documents[query.doc_index].doc_id, query.text)
            continue
        seen.add(key)
        kept.append(query)
    return kept


def _fingerprint(documents: list[Document]) -> dict[str, Any]:
    digest = hashlib.sha256()
    for document in documents:
        digest.update(f"{document.doc_id}\x1f{document.title}\x1f{document.text}\x1e".encode())
    return {"documents": len(documents), "sha256": digest.hexdigest()}


def format_summary(summary: dict[str, Any]) -> str:
    """A short human-readable summary for the command line."""
    lines = [
        f"Rows: {summary['rows']} from {summary['documents']} documents "
        f"({summary['chunks_done']}/{summary['chunks_total']} chunks done)",
    ]
    for source, attempted in summary["queries_attempted_per_source"].items():
        rejected = summary["rejections"].get(source, {})
        reasons = ", ".join(f"{reason}: {count}" for reason, count in rejected.items()) or "none"
        lines.append(
            f"  {source}: {attempted} queries tried, {summary['rows_per_source'].get(source, 0)} rows, "
            f"rejected {sum(rejected.values())} ({summary['rejection_rate_per_source'].get(source, 0.0):.1%}): "
            f"{reasons}"
        )
    if summary.get("rerank"):
        lines.append(f"  rerank: {summary['rerank']}")
    if summary.get("llm_replies"):
        replies = ", ".join(f"{status}: {count}" for status, count in summary["llm_replies"].items())
        lines.append(f"  LLM replies: {replies}")
    if summary.get("empty_documents"):
        lines.append(f"  documents without text (no queries): {summary['empty_documents']}")
    if summary.get("corpus_rows_skipped"):
        lines.append(f"  malformed corpus rows skipped: {summary['corpus_rows_skipped']}")
    for step, numbers in summary["this_run"]["steps"].items():
        lines.append(
            f"  step {step}: {numbers['items']} items in {numbers['seconds']:.1f} s "
            f"({numbers['items_per_second']:.2f}/s)"
        )
    return "\n".join(lines)

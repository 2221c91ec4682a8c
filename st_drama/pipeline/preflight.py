"""What the pipeline checks before its first stage, so that nothing fails after hours of work: the corpus (read
with the same policy every stage uses), the augmentation's feasibility, whether augmentation can make a batch of
rows, the training's negatives, the evaluation's queries and judgements, and the prune target."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from st_drama.augment.feasibility import feasible_config
from st_drama.config_tools import updated
from st_drama.corpus import Document, ReadReport, load_corpus
from st_drama.languages import corpus_language

from .presets import PipelineConfig

logger = logging.getLogger(__name__)


def has_judgements(corpus: Path) -> bool:
    return (corpus / "queries.jsonl").is_file() and (corpus / "qrels" / "test.tsv").is_file()


@dataclass(frozen=True)
class Preflight:
    """What the checks found: the config as it will run, and the corpus's language (ISO 639-1)."""

    config: PipelineConfig
    language: str


def preflight(corpus: Path, config: PipelineConfig, skip_malformed: bool) -> Preflight:
    """``config`` as it will run (a rerank depth lowered to fit the corpus, see
    :func:`~st_drama.augment.feasibility.feasible_config`) and the corpus's language, or the first problem as an
    error."""
    if not (corpus / "corpus.jsonl").is_file():
        raise FileNotFoundError(f"{corpus}: no corpus.jsonl (the pipeline takes a BEIR-layout folder).")
    report = ReadReport()
    documents = load_corpus(corpus / "corpus.jsonl", skip_malformed=skip_malformed, report=report)
    augment = feasible_config(config.augment, documents)
    _check_rows_for_a_batch(config, documents)
    if config.train.num_negatives is not None and config.train.num_negatives > augment.num_negatives:
        raise ValueError(
            f"train.num_negatives={config.train.num_negatives} but augmentation makes {augment.num_negatives} hard "
            "negatives per row; raise the augment stage's num_negatives or lower the training's."
        )
    if config.evaluate is not None and has_judgements(corpus):
        from st_drama.evaluation.beir_task import BeirRetrievalTask

        BeirRetrievalTask(corpus, skip_malformed=skip_malformed)  # reads and checks queries and judgements
    if config.prune is not None:
        _check_prune_target(config)
    language = corpus_language(document.full_text for document in documents).iso
    return Preflight(updated(config, {"augment": augment}) if augment != config.augment else config, language)


def _check_rows_for_a_batch(config: PipelineConfig, documents: list[Document]) -> None:
    """Augmentation makes at most this many rows; fewer than a training batch would train nothing."""
    augment = config.augment
    query_documents = documents[: augment.max_docs] if augment.max_docs else documents
    with_text = sum(1 for document in query_documents if len(document.full_text.split()) >= augment.crop.min_words)
    most_queries = 0
    if "crop" in augment.sources:
        most_queries += augment.crop.per_document * with_text
    if "title" in augment.sources:
        most_queries += sum(1 for document in query_documents if document.title.strip())
    if "synthetic" in augment.sources:
        most_queries += augment.generation.queries_per_document * len(query_documents)
    most_rows = most_queries * augment.mining.positives_per_query
    if most_rows < config.train.batch_size:
        raise ValueError(
            f"Augmentation can make at most {most_rows} rows from {len(query_documents)} documents with the sources "
            f"{list(augment.sources)}, fewer than one training batch of {config.train.batch_size}: nothing would be "
            "trained. Use a larger corpus, more --crops-per-doc, or a smaller training batch."
        )


def _check_prune_target(config: PipelineConfig) -> None:
    from transformers import AutoConfig

    from st_drama.default_llm import resolve_model_path

    config.prune.target.resolve(AutoConfig.from_pretrained(resolve_model_path(config.model)))

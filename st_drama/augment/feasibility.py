"""Before any model loads or any LLM is called: can these settings make rows from this corpus?

Checked: the corpus is large enough for the first-stage ranks that supply hard negatives (and, with reranking, for
the reranked ranks); each requested query source can make at least one query; the LLM, the PairRM weights and a
dense first-stage retriever exist where they are needed. A setting that merely exceeds the corpus without harm (a
rerank depth larger than the corpus) is lowered to fit and logged; anything else is refused with every problem,
its numbers and the option to change.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from st_drama.config_tools import updated
from st_drama.corpus import Document

from .config import LLM_RERANKERS, AugmentConfig, CropConfig

logger = logging.getLogger(__name__)


class InfeasibleAugmentationError(ValueError):
    """Settings that cannot make any row from the given corpus; the message names the numbers and the options."""


def feasible_config(config: AugmentConfig, documents: Sequence[Document]) -> AugmentConfig:
    """``config``, with a rerank depth larger than the corpus lowered to its size; or an
    :class:`InfeasibleAugmentationError` listing every problem."""
    count = len(documents)
    if config.rerank != "none" and config.reranking.depth > count:
        logger.warning(
            f"The corpus has {count} documents, fewer than the rerank depth {config.reranking.depth} "
            f"(--rerank-depth): reranking the top {count} instead."
        )
        config = updated(config, {"reranking": {"depth": count}})
    config = _without_idle_sources(config, documents)
    problems = [*_mining_problems(config, count), *_source_problems(config, documents), *_resource_problems(config)]
    if problems:
        raise InfeasibleAugmentationError(
            "These augmentation settings cannot make rows from this corpus:\n- " + "\n- ".join(problems)
        )
    return config


def minimum_documents(config: AugmentConfig) -> int:
    """The fewest documents a corpus needs for a row: those ranked before the first usable negative (first-stage
    negatives never come from the positives' ranks), the negatives themselves, and one more in case the query's own
    document falls among them. Reranking takes negatives from its own ranks, after its #1."""
    if config.rerank != "none":
        ranked_before = config.reranking.negative_ranks[0] - 1
    else:
        ranked_before = max(config.mining.negative_ranks[0] - 1, config.mining.positive_ranks[1])
    return ranked_before + config.num_negatives + 1


def _mining_problems(config: AugmentConfig, count: int) -> list[str]:
    needed = minimum_documents(config)
    if count >= needed:
        return []
    if config.rerank != "none":
        low, high = config.reranking.negative_ranks
        ranks = f"reranked ranks {low}-{high} (--rerank-negative-ranks)"
        option = "--rerank-negative-ranks"
    else:
        low, high = config.mining.negative_ranks
        positive_low, positive_high = config.mining.positive_ranks
        ranks = (
            f"first-stage ranks {low}-{high} (--negative-ranks), never the positives' ranks "
            f"{positive_low}-{positive_high} (--positive-ranks),"
        )
        option = "--positive-ranks/--negative-ranks"
    return [
        f"The corpus has {count} documents, but hard negatives come from {ranks} and each row needs "
        f"{config.num_negatives} of them (--negatives): that takes at least {needed} documents. Lower {option} "
        "or --negatives, or use a larger corpus."
    ]


def _idle_sources(config: AugmentConfig, documents: Sequence[Document]) -> list[str]:
    """The requested sources that cannot make a single query from these documents."""
    idle = []
    if "crop" in config.sources and not any(_has_crop(document.full_text, config.crop) for document in documents):
        idle.append("crop")
    if "title" in config.sources and not any(document.title.strip() for document in documents):
        idle.append("title")
    return idle


def _without_idle_sources(config: AugmentConfig, documents: Sequence[Document]) -> AugmentConfig:
    """A source that can make nothing here (titles in a corpus without titles) is dropped, with a warning, when
    another source remains; alone, it is refused (see :func:`_source_problems`)."""
    idle = _idle_sources(config, documents)
    remaining = tuple(source for source in config.sources if source not in idle)
    if not idle or not remaining:
        return config
    logger.warning(f"Dropping the query source(s) {idle}: they can make no query from this corpus ({_why(idle)}).")
    return updated(config, {"sources": remaining})


def _why(idle: list[str]) -> str:
    return "; ".join(
        "no document has a title" if source == "title" else "no document has enough words" for source in idle
    )


def _source_problems(config: AugmentConfig, documents: Sequence[Document]) -> list[str]:
    problems = []
    if "crop" in config.sources and not any(_has_crop(document.full_text, config.crop) for document in documents):
        problems.append(
            f"source 'crop': no document has the {config.crop.min_words} words a cropped query needs; drop 'crop' "
            "from --sources."
        )
    if "title" in config.sources and not any(document.title.strip() for document in documents):
        problems.append("source 'title': no document has a title; drop 'title' from --sources.")
    return problems


def _has_crop(text: str, crop: CropConfig) -> bool:
    """Whether :func:`~st_drama.augment.crop.crop_queries` finds something: a text of ``min_words`` words has a
    usable sentence or, failing that, a usable span."""
    return len(text.split()) >= crop.min_words


def _resource_problems(config: AugmentConfig) -> list[str]:
    from st_drama.defaults import DEFAULT_LLM_NAME

    problems = []
    if config.needs_llm and config.llm.lower() != DEFAULT_LLM_NAME and not Path(config.llm).is_dir():
        uses = ["synthetic queries"] if "synthetic" in config.sources else []
        uses += [f"{config.rerank} reranking"] if config.rerank in LLM_RERANKERS else []
        problems.append(
            f"--llm {config.llm!r} (for {' and '.join(uses)}) is not a local model folder; models are not downloaded."
        )
    if config.rerank == "pairrm":
        from .pairrm import check_pairrm_folder

        try:
            check_pairrm_folder(config.pairrm_weights, config.pairrm_backbone)
        except FileNotFoundError as error:
            problems.append(str(error))
    if config.retriever == "minilm":
        from st_drama.evaluation.baselines import BaselineUnavailableError, minilm_path

        try:
            minilm_path()
        except BaselineUnavailableError as error:
            problems.append(f"--retriever minilm: {error}")
    elif config.retriever != "bm25" and not (Path(config.retriever) / "modules.json").is_file():
        problems.append(
            f"--retriever {config.retriever!r} is neither 'bm25', 'minilm' nor a local SentenceTransformer folder."
        )
    return problems

"""The pipeline's stages: each takes its stage's config, its inputs and its own folder, calls the stage's Python
function, and returns the path of what it made. Heavy imports happen inside, when a stage actually runs."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from st_drama.augment.config import AugmentConfig
from st_drama.config_tools import updated
from st_drama.evaluation.config import EvaluateConfig
from st_drama.llara.config import LlaraConfig
from st_drama.pruning.config import PruneConfig
from st_drama.training.config import TrainConfig

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer


def prune_stage(model: str, corpus: Path, stage_dir: Path, config: PruneConfig, show_progress: bool) -> str:
    """The pruned LLM, calibrated (and recovered) on the collection's corpus."""
    from st_drama.pruning import prune

    output = stage_dir / "model"
    prune(model, config, calibration_texts=corpus, output_dir=output, show_progress=show_progress)
    return str(output)


def llara_stage(
    model: str, corpus: Path, stage_dir: Path, config: LlaraConfig, skip_malformed: bool, show_progress: bool
) -> str:
    """The LLaRA-adapted model (a LLaRA-style SentenceTransformer folder)."""
    from st_drama.llara import pretrain

    return pretrain(
        model, corpus, stage_dir, config, resume=True, skip_malformed=skip_malformed, show_progress=show_progress
    )


def augment_stage(
    corpus: Path, stage_dir: Path, config: AugmentConfig, skip_malformed: bool, show_progress: bool
) -> str:
    """The training rows made from the collection's corpus."""
    from st_drama.augment import Augmenter

    output = stage_dir / "data"
    # In the pipeline an LLM that is not doing its job stops the run instead of feeding training repaired rankings.
    Augmenter(config).generate(
        corpus, output, skip_malformed=skip_malformed, progress=show_progress, unusable_llm="error"
    )
    return str(output)


def train_stage(
    model: str, data: str, stage_dir: Path, final_dir: Path, config: TrainConfig, show_progress: bool
) -> str:
    """The trained model, moved to ``final_dir`` (the run's ``model`` folder)."""
    from st_drama.training.contrastive import train

    trained = train(model, data, stage_dir, config, resume=True, show_progress=show_progress)
    if final_dir.exists():
        shutil.rmtree(final_dir)
    os.replace(trained, final_dir)
    return str(final_dir)


def evaluation_config(config: EvaluateConfig, model: str, train: TrainConfig) -> EvaluateConfig:
    """The pipeline scores the untrained backbone (when asked for) as the LLM it started from, in the training's
    framing."""
    return updated(config, {"style": train.style, "backbone": config.backbone or model})


def save_inference_settings(model: SentenceTransformer, folder: str) -> None:
    """Write ``model``'s encoding length (and st-drama's windows) into its saved ``folder`` without rewriting the
    weights: st-drama's backbone keeps them in its config, sentence-transformers' Transformer in the tokenizer's."""
    first = model[0]
    if hasattr(first, "task_formats"):
        first.save_config(folder)
    else:
        first.tokenizer.save_pretrained(folder)


def evaluate_stage(
    model: str,
    corpus: Path,
    stage_dir: Path,
    cache_dir: Path,
    config: EvaluateConfig,
    skip_malformed: bool,
    show_progress: bool,
) -> str:
    """The evaluation folder (results.json, results.md, MTEB's result files) of the trained model and the baselines.
    The MTEB cache lives outside the stage folder, so a rerun with other training settings does not evaluate the
    unchanged baselines again."""
    from sentence_transformers import SentenceTransformer

    from st_drama.evaluation import evaluate

    trained = SentenceTransformer(model, trust_remote_code=True)
    model_name = config.model_name or f"st-drama/{Path(model).parent.name}-trained"
    from st_drama.evaluation.beir_task import task_name_for_folder
    from st_drama.evaluation.runner import trained_matryoshka_dims

    evaluate(
        trained,
        [corpus],
        updated(config, {"model_name": model_name}),
        output_dir=stage_dir,
        # Trained on pseudo-queries from this collection's corpus: not zero-shot on it.
        trained_on=[task_name_for_folder(corpus)],
        matryoshka_dims=trained_matryoshka_dims(model),
        cache_dir=cache_dir,
        skip_malformed=skip_malformed,
        show_progress=show_progress,
    )
    # evaluate() set the evaluation's length (and windows) on `trained`: save them so the model encodes as evaluated.
    save_inference_settings(trained, model)
    return str(stage_dir)


def describe_model(model: str, results: dict[str, Any], evaluation_table: str | None, language: str) -> None:
    """The trained model's card: how it was made (the pipeline's config), from what (the collection's corpus only)
    and how it scored."""
    from sentence_transformers import SentenceTransformer

    from st_drama.model_card import hub_model_id, write_model_card

    trained = SentenceTransformer(model, trust_remote_code=True)
    collection = Path(results["corpus"]).name
    write_model_card(
        trained,
        model,
        model_name=f"st-drama {results['preset'] or 'custom'} retriever from {Path(results['source_model']).name}, "
        f"adapted to {collection}",
        language=[language] if language != "und" else [],
        base_model=hub_model_id(results["source_model"]),
        recipe=results["config"],
        data_source=(
            f"Made by `st-drama pipeline` from the corpus of `{collection}` alone: pseudo-queries cut from its "
            "documents (and their titles), positives and hard negatives mined from it; its queries and relevance "
            "judgements were used only for the evaluation below. A score on this collection is therefore not "
            "zero-shot."
        ),
        evaluation=_without_title(evaluation_table) if evaluation_table else None,
    )


def _without_title(markdown: str) -> str:
    """A results table without its top-level heading (the card has its own)."""
    return "\n".join(line for line in markdown.splitlines() if not line.startswith("# ")).strip()

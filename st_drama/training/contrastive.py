"""Single-stage contrastive training (DRAMA): InfoNCE with in-batch and hard negatives, Matryoshka dimensions."""

from __future__ import annotations

import inspect
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from datasets import Dataset

from st_drama.config_tools import as_dict, config_from

from .config import DRAMA_MATRYOSHKA_DIMS, TrainConfig
from .data import SCORES_COLUMN

logger = logging.getLogger(__name__)


def matryoshka_dims_for(hidden_size: int, requested: Sequence[int] | str | None = "auto") -> list[int]:
    """The Matryoshka dimensions to train: the full size, then DRAMA's 512 and 256 where smaller than it."""
    if requested is None or (not isinstance(requested, str) and len(requested) == 0):
        return []
    if requested == "auto":
        return [hidden_size, *(dim for dim in DRAMA_MATRYOSHKA_DIMS if dim < hidden_size)]
    dims = sorted({int(dim) for dim in requested}, reverse=True)
    if dims[0] > hidden_size or dims[-1] < 1:
        raise ValueError(f"Matryoshka dims {dims} must lie between 1 and the embedding size {hidden_size}.")
    return dims if dims[0] == hidden_size else [hidden_size, *dims]


def contrastive_loss(
    model: Any,
    temperature: float = 0.05,
    matryoshka_dims: Sequence[int] | str | None = "auto",
    cached: bool = False,
    mini_batch_size: int = 8,
    gather_across_devices: bool | None = None,
    loss_options: dict[str, Any] | None = None,
    distill_weight: float = 0.0,
    teacher_temperature: float = 1.0,
) -> Any:
    """InfoNCE over in-batch and hard negatives (``MultipleNegativesRankingLoss``, or its GradCache variant for
    batches larger than memory), wrapped in ``MatryoshkaLoss`` when dimensions are given. Negatives are gathered
    across processes when training runs distributed (``torchrun``/``accelerate launch``). With ``distill_weight``
    above 0, a KL-divergence term towards the teacher's scores in the rows' labels is added from the same embeddings
    (:class:`~st_drama.losses.ContrastiveDistillationLoss`).

    ``loss_options`` are further arguments of the InfoNCE loss, passed as they are: in sentence-transformers 6,
    ``directions`` (e.g. ``("query_to_doc", "doc_to_query")`` for a symmetric loss, all four for GTE's improved
    contrastive loss), ``partition_mode``, ``hardness_mode`` and ``hardness_strength``.
    """
    from sentence_transformers.sentence_transformer.losses import (
        CachedMultipleNegativesRankingLoss,
        MatryoshkaLoss,
        MultipleNegativesRankingLoss,
    )

    from st_drama.losses import ContrastiveDistillationLoss

    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}.")
    if gather_across_devices is None:
        gather_across_devices = int(os.environ.get("WORLD_SIZE", "1")) > 1
    loss_class = CachedMultipleNegativesRankingLoss if cached else MultipleNegativesRankingLoss
    arguments = {"scale": 1.0 / temperature, "gather_across_devices": gather_across_devices}
    if cached:
        arguments["mini_batch_size"] = mini_batch_size
    arguments |= checked_loss_options(loss_class, loss_options or {}, set_here=set(arguments))
    loss = loss_class(model, **arguments)
    if distill_weight > 0:  # ContrastiveDistillationLoss refuses the cached loss itself
        loss = ContrastiveDistillationLoss(model, loss, distill_weight, teacher_temperature)
    dims = matryoshka_dims_for(model.get_embedding_dimension(), matryoshka_dims)
    return MatryoshkaLoss(model, loss, matryoshka_dims=dims) if dims else loss


def checked_loss_options(loss_class: type, options: dict[str, Any], set_here: set[str]) -> dict[str, Any]:
    """``options`` when ``loss_class`` takes each of them; an option this module sets itself (``scale`` is the
    inverse temperature) or one the installed sentence-transformers lacks is an error naming it."""
    import sentence_transformers

    accepted = set(inspect.signature(loss_class.__init__).parameters) - {"self", "model", *set_here}
    for name in options:
        if name in set_here:
            raise ValueError(
                f"loss option {name!r} is set by st-drama itself (from temperature, mini_batch_size or the launcher)."
            )
        if name not in accepted:
            raise ValueError(
                f"loss option {name!r} is not an argument of {loss_class.__name__} in sentence-transformers "
                f"{sentence_transformers.__version__}; it takes {sorted(accepted)}."
            )
    return dict(options)


def router_mapping_for(columns: list[str]) -> dict[str, str]:
    """Queries are framed as queries, every other text column as documents (the teacher's scores are labels)."""
    return {column: "query" if column == "query" else "document" for column in columns if column != SCORES_COLUMN}


def framing_arguments(model: Any, columns: list[str]) -> dict[str, Any]:
    """How the trainer frames each column as the model frames queries and documents: the task (st-drama's backbone
    frames by task) and, for a model of sentence-transformers' own modules, the task's prompt."""
    tasks = router_mapping_for(columns)
    prompts = {column: model.prompts.get(task, "") for column, task in tasks.items()} if model.prompts else {}
    if hasattr(model[0], "task_formats"):  # st-drama's backbone: the task selects the framing, prompts stay empty
        return {"router_mapping": tasks}
    return {"router_mapping": tasks, "prompts": {column: prompt for column, prompt in prompts.items() if prompt}}


def train(
    model_name_or_path: str,
    data: str | os.PathLike | Dataset,
    output_dir: str | os.PathLike,
    config: TrainConfig | None = None,
    *,
    resume: bool = False,
    show_progress: bool = True,
    callbacks: list[Any] | None = None,
    **overrides: Any,
) -> str:
    """Train a retriever in one contrastive stage on (query, positive, negative_1..k) rows (and, with
    ``config.distill_weight``, a teacher's ``scores`` for each row's positive and negatives).

    Checkpoints go to ``output_dir/checkpoints``; ``resume=True`` continues from the latest one when it was written
    with the same settings. The final model (LoRA merged) is saved as a SentenceTransformer folder in
    ``output_dir/model`` with a model card.

    Args:
        model_name_or_path: An LLM (path, hub id, ``"smollm2-135m"``, a pruned model) or a SentenceTransformer
            folder (e.g. a LLaRA-adapted model, trained in its own framing).
        data: Training rows (see :func:`st_drama.training.data.load_training_data`).
        output_dir: Run folder.
        config: The recipe (default: ``TrainConfig()``).
        resume: Continue from the latest checkpoint.
        show_progress: Show the trainer's progress bar.
        callbacks: ``transformers.TrainerCallback`` objects.
        **overrides: Changes to ``config`` by field name, e.g. ``steps=16, learning_rate=2e-4``.

    Returns:
        The path of the trained model.
    """
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.base.sampler import BatchSamplers
    from transformers import set_seed

    from st_drama import build_model
    from st_drama.model_card import retriever_card_data
    from st_drama.runs import check_output_dir, checkpoint_to_resume

    from .data import TrainingDataError, load_training_data
    from .runtime import add_lora, merge_lora, precision_arguments, save_final_model
    from .weight_interpolation import interpolate_weights, snapshot_weights

    config = config_from(TrainConfig, config, overrides)
    output_dir = Path(output_dir)
    checkpoint_dir = output_dir / "checkpoints"
    dataset = load_training_data(data, num_negatives=config.num_negatives, teacher_scores=config.distill_weight > 0)
    if len(dataset) < config.batch_size:
        # Batches are full or dropped (for cross-device negatives): fewer rows than a batch would train nothing.
        raise TrainingDataError(
            f"{data if not isinstance(data, Dataset) else 'data'}: {len(dataset)} rows, fewer than one batch of "
            f"{config.batch_size} (--batch-size): nothing would be trained. Lower --batch-size or add rows."
        )
    check_output_dir(output_dir)
    checkpoint = checkpoint_to_resume(checkpoint_dir, {"model": str(model_name_or_path), **as_dict(config)}, resume)
    set_seed(config.seed)  # LoRA's initial adapters are drawn before the trainer seeds itself
    model = build_model(model_name_or_path, style=config.style, max_seq_length=config.max_seq_length)
    start_weights = snapshot_weights(model) if config.wise_alpha < 1.0 else None
    loss = contrastive_loss(
        model,
        config.temperature,
        config.matryoshka_dims,
        config.cached,
        config.mini_batch_size,
        loss_options=config.loss_options,
        distill_weight=config.distill_weight,
        teacher_temperature=config.teacher_temperature,
    )
    if config.lora:
        # LLaRA's new prompt tokens get trainable embedding rows; a standard DRAMA model has none.
        prompt_token_ids = getattr(model[0], "prompt_token_ids", [])
        add_lora(model, rank=config.lora_rank, train_token_ids=[int(i) for i in prompt_token_ids] or None)
    schedule = {"max_steps": config.steps} if config.steps else {"num_train_epochs": config.epochs}
    args = SentenceTransformerTrainingArguments(
        output_dir=str(checkpoint_dir),
        per_device_train_batch_size=config.batch_size,
        learning_rate=config.resolved_learning_rate,
        warmup_steps=0.05,
        lr_scheduler_type="linear",
        batch_sampler=BatchSamplers.NO_DUPLICATES,  # a duplicate text in the batch would be a false negative
        **framing_arguments(model, dataset.column_names),
        save_strategy="steps",
        save_steps=config.save_steps,
        save_total_limit=2,
        logging_steps=10,
        report_to=[],
        seed=config.seed,
        dataloader_drop_last=True,  # equal batches on every process for cross-device negatives
        disable_tqdm=not show_progress,
        **schedule,
        **precision_arguments(config.bf16),
    )
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=dataset, loss=loss, callbacks=callbacks)
    started = time.time()
    result = trainer.train(resume_from_checkpoint=checkpoint)
    if result.global_step == 0:
        # The no-duplicates sampler drops batches it cannot fill with distinct texts; saving would pass the
        # untrained model off as a trained one.
        raise TrainingDataError(
            f"{data if not isinstance(data, Dataset) else 'data'}: no batch of {config.batch_size} rows with distinct "
            "texts could be formed, so nothing was trained. Lower --batch-size or add rows with different texts."
        )
    if start_weights is not None:
        merge_lora(model)
        interpolate_weights(model, start_weights, config.wise_alpha)
    metadata = {
        "stage": "contrastive-train",
        "source_model": str(model_name_or_path),
        "config": as_dict(config),
        "data": str(data) if not isinstance(data, Dataset) else "Dataset",
        "rows": len(dataset),
        "columns": dataset.column_names,
        "steps": result.global_step,
        "matryoshka_dims": matryoshka_dims_for(model.get_embedding_dimension(), config.matryoshka_dims),
        "final_train_loss": result.training_loss,
        "seconds": round(time.time() - started, 1),
        "resumed_from": checkpoint,
    }
    retriever_card_data(
        model,
        matryoshka_dims=metadata["matryoshka_dims"][1:],
        recipe={"source_model": str(model_name_or_path), **metadata["config"]},
        data_source=f"Trained contrastively on {len(dataset)} (query, positive, hard negatives) rows from "
        f"`{metadata['data']}` for {result.global_step} steps.",
    )
    if trainer.is_world_process_zero():
        save_final_model(model, output_dir / "model", metadata)
    return str(output_dir / "model")

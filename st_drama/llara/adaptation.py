"""LLaRA adaptation run: EBAE + EBAR on a corpus with SentenceTransformerTrainer."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable
from typing import Any

from st_drama.config_tools import as_dict, config_from
from st_drama.corpus import ReadReport, load_corpus

from .config import LlaraConfig

logger = logging.getLogger(__name__)

FRAMING_ALLOWANCE = 64  # room for the LLaRA prompt and tokenizer round-trip drift beyond chunk_tokens


def pretrain(
    model_name_or_path: str,
    corpus: str | os.PathLike | Iterable[Any],
    output_dir: str | os.PathLike,
    config: LlaraConfig | None = None,
    *,
    resume: bool = False,
    skip_malformed: bool = False,
    show_progress: bool = True,
    callbacks: list[Any] | None = None,
    **overrides: Any,
) -> str:
    """Adapt an LLM for retrieval with LLaRA's EBAE and EBAR tasks (:class:`~st_drama.losses.EBAEEBARLoss`).

    Checkpoints go to ``output_dir/checkpoints`` every ``save_steps`` steps; rerunning with ``resume=True``
    continues from the latest one when it was written with the same settings. The adapted model is saved (LoRA
    merged) as a LLaRA-style SentenceTransformer in ``output_dir/model``, which ``st_drama.build_model`` and
    ``SentenceTransformer(..., trust_remote_code=True)`` load.

    Args:
        model_name_or_path: A Llama-family LLM (path, hub id or ``"smollm2-135m"``) or a LLaRA-style
            SentenceTransformer folder.
        corpus: Texts to adapt on (see :func:`st_drama.llara.build_pretraining_dataset`).
        output_dir: Run folder.
        config: The recipe (default: ``LlaraConfig()``).
        resume: Continue from the latest checkpoint in ``output_dir/checkpoints``.
        skip_malformed: Skip and count bad or empty documents instead of raising.
        show_progress: Show the trainer's progress bar.
        callbacks: ``transformers.TrainerCallback`` objects for the trainer.
        **overrides: Changes to ``config`` by field name, e.g. ``steps=60``.

    Returns:
        The path of the adapted model.
    """
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments

    from st_drama import build_model
    from st_drama.losses import EBAEEBARLoss
    from st_drama.runs import check_output_dir, checkpoint_to_resume
    from st_drama.training.runtime import add_lora, precision_arguments, save_final_model

    from .data import build_pretraining_dataset

    config = config_from(LlaraConfig, config, overrides)
    output_dir = check_output_dir(output_dir)
    checkpoint_dir = output_dir / "checkpoints"
    report = ReadReport()
    # The corpus is read (and refused if bad) before any model loads.
    documents = load_corpus(corpus, skip_malformed=skip_malformed, report=report)
    checkpoint = checkpoint_to_resume(checkpoint_dir, {"model": str(model_name_or_path), **as_dict(config)}, resume)
    model = build_model(model_name_or_path, style="llara", max_seq_length=config.chunk_tokens + FRAMING_ALLOWANCE)
    dataset = build_pretraining_dataset(
        documents,
        model[0].tokenizer,
        config.chunk_tokens,
        max_documents=config.max_documents,
    )
    loss = EBAEEBARLoss(model, **config.loss_options)
    if config.lora:
        add_lora(model, rank=config.lora_rank, train_token_ids=model[0].prompt_token_ids.tolist())
    args = SentenceTransformerTrainingArguments(
        output_dir=str(checkpoint_dir),
        max_steps=config.steps,
        per_device_train_batch_size=config.batch_size,
        learning_rate=config.resolved_learning_rate,
        warmup_steps=max(1, config.steps // 20),
        lr_scheduler_type="cosine",
        save_strategy="steps",
        save_steps=config.save_steps,
        save_total_limit=2,
        logging_steps=max(1, min(10, config.steps // 10)),
        report_to=[],
        seed=config.seed,
        disable_tqdm=not show_progress,
        **precision_arguments(config.bf16),
    )
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=dataset, loss=loss, callbacks=callbacks)
    started = time.time()
    result = trainer.train(resume_from_checkpoint=checkpoint)
    metadata = {
        "stage": "llara-pretrain",
        "source_model": str(model_name_or_path),
        "corpus": str(corpus) if isinstance(corpus, (str, os.PathLike)) else type(corpus).__name__,
        "config": as_dict(config),
        "rows": len(dataset),
        "skipped_documents": report.skipped,
        "empty_documents": report.empty_documents,
        "loss": loss.get_config_dict(),
        "final_train_loss": result.training_loss,
        "seconds": round(time.time() - started, 1),
        "resumed_from": checkpoint,
    }
    return save_final_model(model, output_dir / "model", metadata)

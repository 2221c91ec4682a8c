"""LLaRA adaptation run: EBAE + EBAR on a corpus with SentenceTransformerTrainer."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from st_drama.corpus import ReadReport

logger = logging.getLogger(__name__)

FRAMING_ALLOWANCE = 64  # room for the LLaRA prompt and tokenizer round-trip drift beyond chunk_tokens


def pretrain(
    model_name_or_path: str,
    corpus: str | os.PathLike | Iterable[Any],
    output_dir: str | os.PathLike,
    steps: int = 200,
    batch_size: int = 16,
    chunk_tokens: int = 128,
    learning_rate: float | None = None,
    lora: bool = False,
    lora_rank: int = 16,
    resume: bool = False,
    bf16: bool | None = None,
    save_steps: int = 50,
    max_documents: int | None = None,
    skip_malformed: bool = False,
    seed: int = 42,
    show_progress: bool = True,
    callbacks: list[Any] | None = None,
    **loss_kwargs: Any,
) -> str:
    """Adapt an LLM for retrieval with LLaRA's EBAE and EBAR tasks (:class:`~st_drama.losses.EBAEEBARLoss`).

    Checkpoints go to ``output_dir/checkpoints`` every ``save_steps`` steps; rerunning with ``resume=True``
    continues from the latest one. The adapted model is saved (LoRA merged) as a LLaRA-style SentenceTransformer in
    ``output_dir/model``, which ``st_drama.build_model`` and ``SentenceTransformer(..., trust_remote_code=True)``
    load.

    Args:
        model_name_or_path: A Llama-family LLM (path, hub id or ``"smollm2-135m"``) or a LLaRA-style
            SentenceTransformer folder.
        corpus: Texts to adapt on (see :func:`st_drama.llara.build_pretraining_dataset`).
        output_dir: Run folder.
        steps: Optimisation steps.
        batch_size: Texts per step.
        chunk_tokens: Tokens per text chunk.
        learning_rate: Defaults to 1e-4 with LoRA, 2e-5 for full fine-tuning.
        lora: Train LoRA adapters (plus the new prompt-token embeddings) instead of all weights.
        lora_rank: LoRA rank.
        resume: Continue from the latest checkpoint in ``output_dir/checkpoints``.
        bf16: bf16 autocast (default: where supported).
        save_steps: Checkpoint interval.
        max_documents: Use only the first documents of the corpus.
        skip_malformed: Skip and count bad or empty documents instead of raising.
        seed: Random seed.
        show_progress: Show the trainer's progress bar.
        callbacks: ``transformers.TrainerCallback`` objects for the trainer.
        **loss_kwargs: Passed to :class:`~st_drama.losses.EBAEEBARLoss` (``lm_head``, ``prediction``, ...).

    Returns:
        The path of the adapted model.
    """
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments

    from st_drama import build_model
    from st_drama.losses import EBAEEBARLoss
    from st_drama.training.runtime import add_lora, precision_arguments, resume_checkpoint, save_final_model

    from .data import build_pretraining_dataset

    output_dir = Path(output_dir)
    checkpoint_dir = output_dir / "checkpoints"
    checkpoint = resume_checkpoint(checkpoint_dir, resume)
    model = build_model(model_name_or_path, style="llara", max_seq_length=chunk_tokens + FRAMING_ALLOWANCE)
    report = ReadReport()
    dataset = build_pretraining_dataset(
        corpus,
        model[0].tokenizer,
        chunk_tokens,
        max_documents=max_documents,
        skip_malformed=skip_malformed,
        report=report,
    )
    loss = EBAEEBARLoss(model, **loss_kwargs)
    if lora:
        add_lora(model, rank=lora_rank, train_token_ids=model[0].prompt_token_ids.tolist())
    args = SentenceTransformerTrainingArguments(
        output_dir=str(checkpoint_dir),
        max_steps=steps,
        per_device_train_batch_size=batch_size,
        learning_rate=learning_rate or (1e-4 if lora else 2e-5),
        warmup_steps=max(1, steps // 20),
        lr_scheduler_type="cosine",
        save_strategy="steps",
        save_steps=save_steps,
        save_total_limit=2,
        logging_steps=max(1, min(10, steps // 10)),
        report_to=[],
        seed=seed,
        disable_tqdm=not show_progress,
        **precision_arguments(bf16),
    )
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=dataset, loss=loss, callbacks=callbacks)
    started = time.time()
    result = trainer.train(resume_from_checkpoint=checkpoint)
    metadata = {
        "stage": "llara-pretrain",
        "source_model": str(model_name_or_path),
        "corpus": str(corpus) if isinstance(corpus, (str, os.PathLike)) else type(corpus).__name__,
        "rows": len(dataset),
        "skipped_documents": report.skipped,
        "steps": steps,
        "batch_size": batch_size,
        "chunk_tokens": chunk_tokens,
        "lora": lora,
        "loss": loss.get_config_dict(),
        "final_train_loss": result.training_loss,
        "seconds": round(time.time() - started, 1),
        "resumed_from": checkpoint,
    }
    return save_final_model(model, output_dir / "model", metadata)

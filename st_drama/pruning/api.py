"""``prune``: one call from a Llama checkpoint to a smaller standard ``LlamaForCausalLM``."""

from __future__ import annotations

import copy
import json
import logging
import os
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from torch import nn

from st_drama.default_llm import resolve_model_path
from st_drama.precision import resolve_bf16

from .calibration import DEFAULT_SEQUENCE_LENGTH, TokenBlocks, describe_text_source, token_blocks
from .importance import ImportanceScores, collect_importance
from .learned import LearnedMaskConfig, fold_masks, train_masks
from .recovery import RecoveryConfig, recover
from .slicing import PruningPlan, apply_plan, plan_from_scores
from .target import SUPPORTED_MODEL_TYPES, ModelShape, PruningTarget, PruningTargetError

logger = logging.getLogger(__name__)

METHODS = ("importance", "learned", "random")
DEFAULT_CALIBRATION_TOKENS = 32_768
PROVENANCE_FILE = "st_drama_pruning.json"
PLAN_FILE = "st_drama_pruning_plan.json"
WORK_DIR = ".st_drama_pruning"
RUN_FILE = "run.json"


@dataclass
class _Run:
    """Everything that identifies one pruning run (a rerun with the same settings resumes it)."""

    settings: dict[str, Any]
    output_dir: Path | None
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def work_dir(self) -> Path | None:
        return self.output_dir / WORK_DIR if self.output_dir else None


def prune(
    model_or_path: str | os.PathLike | nn.Module,
    target: PruningTarget | Mapping[str, Any],
    calibration_texts: Any = None,
    method: str = "importance",
    output_dir: str | os.PathLike | None = None,
    *,
    tokenizer: Any = None,
    calibration_tokens: int = DEFAULT_CALIBRATION_TOKENS,
    sequence_length: int = DEFAULT_SEQUENCE_LENGTH,
    batch_size: int = 4,
    rescale_norms: bool = True,
    recover_steps: int = 0,
    recovery: RecoveryConfig | None = None,
    recovery_texts: Any = None,
    recovery_tokens: int | None = None,
    learned: LearnedMaskConfig | None = None,
    bf16: bool | None = None,
    device: str | torch.device | None = None,
    seed: int = 0,
    keep_checkpoints: bool = False,
    show_progress: bool = True,
) -> nn.Module:
    """Prune a Llama model to ``target`` and return a standard ``LlamaForCausalLM`` (saved to ``output_dir``
    when given, with the tokenizer and a provenance file, ``st_drama_pruning.json``).

    The target is checked against the source's config before anything heavy is loaded. A rerun with the same
    arguments and ``output_dir`` continues where the last one stopped (the pruned model and the training
    checkpoints are kept in ``output_dir/.st_drama_pruning`` until the run completes), and returns the saved
    result once it is complete.

    Args:
        model_or_path: A Llama checkpoint folder or hub id, ``"smollm2-135m"`` for st-drama's default LLM, or a
            loaded ``LlamaForCausalLM`` (never modified).
        target: A :class:`PruningTarget` or a dict of its fields, e.g. ``{"params": "60M"}``.
        calibration_texts: Text to score importance on (and to train masks on with ``method="learned"``): an
            iterable of strings, a ``datasets.Dataset`` with a ``text`` column, or a corpus path
            (:func:`st_drama.corpus.load_corpus`). Default: the bundled Cranfield corpus.
        method: ``"importance"`` (forward-only, Minitron-style), ``"learned"`` (Sheared-LLaMA-style hard-concrete
            masks) or ``"random"`` (random pieces of the same shape: the baseline).
        output_dir: Where to save the pruned model.
        tokenizer: The source's tokenizer (default: loaded from the model's folder).
        calibration_tokens: Token budget of the calibration text.
        sequence_length: Tokens per calibration and training block.
        batch_size: Blocks per calibration forward pass.
        rescale_norms: Rescale RMSNorm weights for the removed hidden channels (importance pruning).
        recover_steps: Recovery steps after pruning (shorthand for ``recovery=RecoveryConfig(steps=...)``).
        recovery: Full recovery settings (distillation from the unpruned model by default).
        recovery_texts: Training text for recovery (default: ``calibration_texts``).
        recovery_tokens: Token budget of the recovery text (default: what the steps consume, 2x).
        learned: Settings of ``method="learned"``.
        bf16: bf16 autocast for every forward pass and training step (default: where supported).
        device: Where to run (default: a given model's device; for a path, CUDA when available, else CPU).
        seed: Seed of random pruning and of training.
        keep_checkpoints: Keep ``output_dir/.st_drama_pruning`` after a successful run.
        show_progress: Show progress bars.

    Returns:
        The pruned ``LlamaForCausalLM`` in eval mode.

    Raises:
        PruningTargetError: the target does not fit the source model.
        ValueError: another bad argument, or ``output_dir`` holds something else.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}.")
    if calibration_tokens < 2 or sequence_length < 2 or batch_size < 1:
        raise ValueError("calibration_tokens and sequence_length must be >= 2 and batch_size >= 1.")
    recovery = _recovery_config(recover_steps, recovery, seed)
    if recovery.steps and recovery_texts is None and _is_one_shot(calibration_texts):
        raise ValueError(
            "Recovery reads the calibration texts a second time, but they come from a one-shot iterator; pass a "
            "list, a corpus path, or recovery_texts."
        )
    learned = learned or LearnedMaskConfig(seed=seed)
    source_config, source_name = _source_config(model_or_path)
    target = target if isinstance(target, PruningTarget) else PruningTarget(**dict(target))
    shape = target.resolve(source_config)
    use_bf16 = resolve_bf16(bf16)
    settings = _run_settings(source_name, source_config, method, target, shape, seed)
    settings.update(
        calibration={
            "source": describe_text_source(calibration_texts),
            "max_tokens": calibration_tokens,
            "sequence_length": sequence_length,
        },
        rescale_norms=rescale_norms,
        learned=learned.to_dict() if method == "learned" else None,
        recovery=recovery.to_dict() | {"max_tokens": recovery_tokens} if recovery.steps else None,
        recovery_texts=describe_text_source(recovery_texts) if recovery.steps and recovery_texts else None,
    )
    run = _Run(settings=settings, output_dir=Path(output_dir) if output_dir is not None else None)
    finished = _check_output_dir(run)
    if finished is not None:
        return finished
    _start_work_dir(run)

    model, tokenizer = _load_source(model_or_path, tokenizer, device)
    started = time.perf_counter()
    calibration = token_blocks(tokenizer, calibration_texts, calibration_tokens, sequence_length)
    pruned, plan, teacher = _pruned_model(
        model,
        shape,
        calibration,
        method,
        run,
        replace(learned, bf16=use_bf16) if learned.bf16 is None else learned,
        tokenizer,
        bf16=use_bf16,
        batch_size=batch_size,
        rescale_norms=rescale_norms,
        seed=seed,
        show_progress=show_progress,
    )
    run.timings["pruning"] = time.perf_counter() - started
    recovery_blocks = None
    if recovery.steps:
        started = time.perf_counter()
        budget = recovery_tokens or 2 * recovery.steps * recovery.batch_size * sequence_length
        texts = recovery_texts if recovery_texts is not None else calibration_texts
        recovery_blocks = token_blocks(tokenizer, texts, budget, sequence_length)
        recovery = replace(recovery, bf16=use_bf16) if recovery.bf16 is None else recovery
        pruned = _recover(pruned, teacher, recovery_blocks, recovery, run, tokenizer, show_progress)
        run.timings["recovery"] = time.perf_counter() - started
    pruned = pruned.eval()
    if run.output_dir is not None:
        _save(pruned, tokenizer, plan, run, calibration, recovery_blocks, keep_checkpoints)
    return pruned


def _run_settings(
    source_name: str, source_config: Any, method: str, target: PruningTarget, shape: ModelShape, seed: int
) -> dict[str, Any]:
    return {
        "source": source_name,
        "source_shape": ModelShape.from_config(source_config).to_dict(),
        "method": method,
        "target": target.to_dict(),
        "shape": shape.to_dict(),
        "seed": seed,
    }


def _recover(
    pruned: nn.Module,
    teacher: nn.Module,
    blocks: TokenBlocks,
    recovery: RecoveryConfig,
    run: _Run,
    tokenizer: Any,
    show_progress: bool,
) -> nn.Module:
    return recover(
        pruned,
        blocks,
        _checkpoint_dir(run, "recovery"),
        recovery,
        teacher=teacher if recovery.mode == "distill" else None,
        pad_token_id=tokenizer.pad_token_id,
        run_settings=run.settings,
        show_progress=show_progress,
    )


def _is_one_shot(texts: Any) -> bool:
    return texts is not None and not isinstance(texts, (str, os.PathLike)) and iter(texts) is texts


def _recovery_config(recover_steps: int, recovery: RecoveryConfig | None, seed: int) -> RecoveryConfig:
    if recover_steps < 0:
        raise ValueError(f"recover_steps must be >= 0, got {recover_steps}.")
    if recovery is None:
        return RecoveryConfig(steps=recover_steps, seed=seed)
    if recover_steps and recover_steps != recovery.steps:
        raise ValueError(f"recover_steps={recover_steps} contradicts recovery.steps={recovery.steps}.")
    return recovery


def _source_config(model_or_path: Any) -> tuple[Any, str]:
    """The source's config (without loading weights) and a name for provenance; rejects non-Llama models."""
    if isinstance(model_or_path, nn.Module):
        config = model_or_path.config
        name = getattr(config, "_name_or_path", "") or f"in-memory {type(model_or_path).__name__}"
    else:
        from transformers import AutoConfig

        name = str(model_or_path)
        config = AutoConfig.from_pretrained(resolve_model_path(name))
    if getattr(config, "model_type", None) not in SUPPORTED_MODEL_TYPES:
        raise PruningTargetError(
            f"{name}: structured pruning supports Llama models (model_type {SUPPORTED_MODEL_TYPES}), "
            f"not {getattr(config, 'model_type', None)!r}."
        )
    return config, name


def _load_source(model_or_path: Any, tokenizer: Any, device: str | torch.device | None) -> tuple[nn.Module, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if isinstance(model_or_path, nn.Module):
        model = model_or_path
        folder = getattr(model.config, "_name_or_path", "")
        # A model the caller passed stays where it is unless a device is asked for.
        device = torch.device(device) if device is not None else next(model.parameters()).device
    else:
        folder = resolve_model_path(model_or_path)
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
        device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if tokenizer is None:
        try:
            tokenizer = AutoTokenizer.from_pretrained(folder)
        except (OSError, ValueError) as error:
            raise ValueError(f"Could not load the tokenizer of {folder!r}; pass tokenizer=...") from error
    return model.to(device).eval(), tokenizer


def _pruned_model(
    model: nn.Module,
    shape: ModelShape,
    calibration: TokenBlocks,
    method: str,
    run: _Run,
    learned: LearnedMaskConfig,
    tokenizer: Any,
    *,
    bf16: bool,
    batch_size: int,
    rescale_norms: bool,
    seed: int,
    show_progress: bool,
) -> tuple[nn.Module, PruningPlan, nn.Module]:
    """The pruned model (reused from the work folder when a previous run got this far), its plan, and the
    unchanged source model (the teacher for distillation)."""
    saved = _load_stage(run, model.device)
    if saved is not None:
        return (*saved, model)
    source = ModelShape.from_config(model.config)
    if method == "learned":
        student_source = copy.deepcopy(model)
        masked = train_masks(
            student_source,
            shape,
            calibration,
            _checkpoint_dir(run, "masks"),
            learned,
            pad_token_id=tokenizer.pad_token_id,
            run_settings=run.settings,
            show_progress=show_progress,
        )
        pruned, plan = fold_masks(masked)
        del masked, student_source
    else:
        if method == "random":
            scores = ImportanceScores.random(model, torch.Generator().manual_seed(seed))
        else:
            scores = collect_importance(model, calibration, batch_size, bf16=bf16, show_progress=show_progress)
        plan = plan_from_scores(scores, source, shape, rescale_norms=rescale_norms)
        pruned = apply_plan(model, plan)
    _save_stage(run, pruned, plan)
    return pruned, plan, model


def _checkpoint_dir(run: _Run, name: str) -> Path:
    if run.work_dir is not None:
        return run.work_dir / name
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix=f"st_drama_{name}_"))
    logger.info(f"No output_dir: {name} checkpoints go to {folder} (a rerun cannot resume them).")
    return folder


def _normalized(settings: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(settings, sort_keys=True, default=str))


def _check_output_dir(run: _Run) -> nn.Module | None:
    """Refuse an output folder holding anything but this run; return the result when this run already finished."""
    folder = run.output_dir
    if folder is None or not folder.exists():
        return None
    if not folder.is_dir():
        raise ValueError(f"output_dir {folder} exists and is not a folder.")
    provenance = folder / PROVENANCE_FILE
    if provenance.is_file():
        recorded = json.loads(provenance.read_text(encoding="utf-8")).get("run_settings")
        if recorded == _normalized(run.settings):
            from transformers import AutoModelForCausalLM

            logger.info(f"{folder} already holds the result of this run; loading it.")
            return AutoModelForCausalLM.from_pretrained(folder).eval()
        raise ValueError(f"{folder} holds a model pruned with other settings; choose another output_dir.")
    run_file = run.work_dir / RUN_FILE
    if run_file.is_file():
        if json.loads(run_file.read_text(encoding="utf-8")) != _normalized(run.settings):
            raise ValueError(
                f"{folder} holds an unfinished pruning run with other settings ({run_file}); choose another "
                "output_dir or delete it."
            )
        return None
    if any(folder.iterdir()):
        raise ValueError(f"output_dir {folder} is not empty; choose a new or empty folder.")
    return None


def _start_work_dir(run: _Run) -> None:
    """Record the run's settings first, so that a rerun can tell its own unfinished work from anything else."""
    if run.work_dir is None:
        return
    run.work_dir.mkdir(parents=True, exist_ok=True)
    (run.work_dir / RUN_FILE).write_text(json.dumps(_normalized(run.settings), indent=2), encoding="utf-8")


def _save_stage(run: _Run, pruned: nn.Module, plan: PruningPlan) -> None:
    """Keep the pruned (not yet recovered) model so that a rerun skips straight to recovery."""
    if run.work_dir is None or not run.settings["recovery"]:
        return
    stage = run.work_dir / "pruned"
    partial = stage.with_name("pruned.partial")
    shutil.rmtree(partial, ignore_errors=True)
    pruned.save_pretrained(partial)
    (partial / PLAN_FILE).write_text(json.dumps(plan.to_dict()), encoding="utf-8")
    shutil.rmtree(stage, ignore_errors=True)
    os.replace(partial, stage)


def _load_stage(run: _Run, device: torch.device) -> tuple[nn.Module, PruningPlan] | None:
    if run.work_dir is None:
        return None
    stage = run.work_dir / "pruned"
    if not (stage / PLAN_FILE).is_file():
        return None
    from transformers import AutoModelForCausalLM

    logger.info(f"Reusing the pruned model saved by an earlier run in {stage}.")
    plan = PruningPlan(**json.loads((stage / PLAN_FILE).read_text(encoding="utf-8")))
    return AutoModelForCausalLM.from_pretrained(stage).to(device), plan


def _save(
    pruned: nn.Module,
    tokenizer: Any,
    plan: PruningPlan,
    run: _Run,
    calibration: TokenBlocks,
    recovery_blocks: TokenBlocks | None,
    keep_checkpoints: bool,
) -> None:
    folder = run.output_dir
    folder.mkdir(parents=True, exist_ok=True)
    pruned.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    (folder / PLAN_FILE).write_text(json.dumps(plan.to_dict()), encoding="utf-8")
    provenance = _provenance(pruned, plan, run, calibration, recovery_blocks)
    # Written last: its presence marks the folder complete.
    (folder / PROVENANCE_FILE).write_text(json.dumps(provenance, indent=2), encoding="utf-8")
    if not keep_checkpoints and run.work_dir is not None:
        shutil.rmtree(run.work_dir, ignore_errors=True)
    logger.info(f"Saved the pruned model to {folder}.")


def _provenance(
    pruned: nn.Module,
    plan: PruningPlan,
    run: _Run,
    calibration: TokenBlocks,
    recovery_blocks: TokenBlocks | None,
) -> dict[str, Any]:
    import transformers

    import st_drama

    source_shape = ModelShape(**run.settings["source_shape"])
    shape = ModelShape.from_config(pruned.config)
    settings = run.settings
    return {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "st_drama_version": st_drama.__version__,
        "transformers_version": transformers.__version__,
        "source_model": settings["source"],
        "source_shape": source_shape.pruned_sizes(),
        "source_parameters": {
            "non_embedding": source_shape.non_embedding_parameters(),
            "total": source_shape.total_parameters(),
        },
        "method": settings["method"],
        "target": settings["target"],
        "shape": shape.pruned_sizes() | {"head_dim": shape.head_dim},
        "parameters": {"non_embedding": shape.non_embedding_parameters(), "total": shape.total_parameters()},
        "calibration": {
            "source": calibration.source,
            "tokens": calibration.num_tokens,
            "texts": calibration.texts_read,
            "sequence_length": calibration.sequence_length,
        },
        "layers": plan.summary(source_shape),
        "learned": settings["learned"],
        "recovery": None
        if recovery_blocks is None
        else settings["recovery"] | {"texts": recovery_blocks.source, "tokens": recovery_blocks.num_tokens},
        "seconds": {name: round(value, 1) for name, value in run.timings.items()},
        "run_settings": _normalized(settings),
    }

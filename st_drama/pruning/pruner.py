"""``prune``: one call from a Llama checkpoint to a smaller standard ``LlamaForCausalLM``."""

from __future__ import annotations

import copy
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from torch import nn

from st_drama.config_tools import config_from
from st_drama.default_llm import resolve_model_path
from st_drama.precision import resolve_bf16
from st_drama.runs import check_output_dir, check_run_settings, normalized, read_json, write_json_atomically

from .calibration import TokenBlocks, describe_text_source, token_blocks
from .config import PruneConfig
from .importance import ImportanceScores, collect_importance
from .learned import fold_masks, train_masks
from .recovery import recover
from .slicing import PruningPlan, apply_plan, plan_from_scores
from .target import SUPPORTED_MODEL_TYPES, ModelShape, PruningTarget, PruningTargetError

logger = logging.getLogger(__name__)

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
    config: PruneConfig | None = None,
    calibration_texts: Any = None,
    output_dir: str | os.PathLike | None = None,
    *,
    tokenizer: Any = None,
    recovery_texts: Any = None,
    device: str | torch.device | None = None,
    keep_checkpoints: bool = False,
    show_progress: bool = True,
    **overrides: Any,
) -> nn.Module:
    """Prune a Llama model to ``config.target`` and return a standard ``LlamaForCausalLM`` (saved to ``output_dir``
    when given, with the tokenizer and a provenance file, ``st_drama_pruning.json``).

    The target is checked against the source's config before anything heavy is loaded. A rerun with the same
    arguments and ``output_dir`` continues where the last one stopped (the pruned model and the training
    checkpoints are kept in ``output_dir/.st_drama_pruning`` until the run completes), and returns the saved
    result once it is complete.

    Args:
        model_or_path: A Llama checkpoint folder or hub id, ``"smollm2-135m"`` for st-drama's default LLM, or a
            loaded ``LlamaForCausalLM`` (never modified).
        config: The recipe (default: ``PruneConfig()``); at least ``target`` must be set, here or in
            ``overrides``.
        calibration_texts: Text to score importance on (and to train masks on with ``method="learned"``): an
            iterable of strings, a ``datasets.Dataset`` with a ``text`` column, or a corpus path
            (:func:`st_drama.corpus.load_corpus`). Default: the bundled Cranfield corpus.
        output_dir: Where to save the pruned model.
        tokenizer: The source's tokenizer (default: loaded from the model's folder).
        recovery_texts: Training text for recovery (default: ``calibration_texts``).
        device: Where to run (default: a given model's device; for a path, CUDA when available, else CPU).
        keep_checkpoints: Keep ``output_dir/.st_drama_pruning`` after a successful run.
        show_progress: Show progress bars.
        **overrides: Changes to ``config`` by field name, e.g. ``target={"params": "60M"}, method="random"``.

    Returns:
        The pruned ``LlamaForCausalLM`` in eval mode.

    Raises:
        PruningTargetError: the target does not fit the source model.
        ValueError: another bad argument, or ``output_dir`` holds something else.
    """
    config = config_from(PruneConfig, config, overrides)
    if output_dir is not None:
        check_output_dir(output_dir)
    # Corpus paths are read (and refused if bad) before any model loads.
    calibration_texts, recovery_texts = (_read_if_path(texts) for texts in (calibration_texts, recovery_texts))
    if not config.target.to_dict():
        raise ValueError(
            "Give a target shape: params (e.g. '60M'), or any of num_layers, hidden_size, intermediate_size, "
            "num_heads, num_kv_heads."
        )
    recovery = config.recovery
    if recovery.steps and recovery_texts is None and _is_one_shot(calibration_texts):
        raise ValueError(
            "Recovery reads the calibration texts a second time, but they come from a one-shot iterator; pass a "
            "list, a corpus path, or recovery_texts."
        )
    source_config, source_name = _source_config(model_or_path)
    shape = config.target.resolve(source_config)
    use_bf16 = resolve_bf16(config.bf16)
    settings = _run_settings(source_name, source_config, config.method, config.target, shape, config.seed)
    settings.update(
        calibration={
            "source": describe_text_source(calibration_texts),
            "max_tokens": config.calibration_tokens,
            "sequence_length": config.sequence_length,
        },
        rescale_norms=config.rescale_norms,
        learned=config.learned.to_dict() if config.method == "learned" else None,
        recovery=recovery.to_dict() if recovery.steps else None,
        recovery_texts=describe_text_source(recovery_texts) if recovery.steps and recovery_texts else None,
    )
    run = _Run(settings=settings, output_dir=Path(output_dir) if output_dir is not None else None)
    finished = _check_output_dir(run)
    if finished is not None:
        return finished
    _start_work_dir(run)

    model, tokenizer = _load_source(model_or_path, tokenizer, device)
    started = time.perf_counter()
    calibration = token_blocks(tokenizer, calibration_texts, config.calibration_tokens, config.sequence_length)
    pruned, plan, teacher = _pruned_model(
        model,
        shape,
        calibration,
        config,
        run,
        tokenizer,
        bf16=use_bf16,
        show_progress=show_progress,
    )
    run.timings["pruning"] = time.perf_counter() - started
    recovery_blocks = None
    if recovery.steps:
        started = time.perf_counter()
        budget = recovery.max_tokens or 2 * recovery.steps * recovery.batch_size * config.sequence_length
        texts = recovery_texts if recovery_texts is not None else calibration_texts
        recovery_blocks = token_blocks(tokenizer, texts, budget, config.sequence_length)
        pruned = _recover(pruned, teacher, recovery_blocks, config, use_bf16, run, tokenizer, show_progress)
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
    config: PruneConfig,
    bf16: bool,
    run: _Run,
    tokenizer: Any,
    show_progress: bool,
) -> nn.Module:
    return recover(
        pruned,
        blocks,
        _checkpoint_dir(run, "recovery"),
        config.recovery,
        teacher=teacher if config.recovery.mode == "distill" else None,
        pad_token_id=tokenizer.pad_token_id,
        run_settings=run.settings,
        show_progress=show_progress,
        seed=config.seed,
        bf16=bf16,
    )


def _read_if_path(texts: Any) -> Any:
    """A corpus path's texts as a list (read and checked now); anything else as it is."""
    if not isinstance(texts, (str, os.PathLike)):
        return texts
    from st_drama.corpus import load_corpus

    return _PathTexts(texts, [document.full_text for document in load_corpus(texts)])


class _PathTexts(list):
    """A corpus path's texts, still described by the path in the pruning's provenance."""

    def __init__(self, path: str | os.PathLike, texts: list[str]) -> None:
        super().__init__(texts)
        self.path = str(path)


def _is_one_shot(texts: Any) -> bool:
    return texts is not None and not isinstance(texts, (str, os.PathLike)) and iter(texts) is texts


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
    config: PruneConfig,
    run: _Run,
    tokenizer: Any,
    *,
    bf16: bool,
    show_progress: bool,
) -> tuple[nn.Module, PruningPlan, nn.Module]:
    """The pruned model (reused from the work folder when a previous run got this far), its plan, and the
    unchanged source model (the teacher for distillation)."""
    saved = _load_stage(run, model.device)
    if saved is not None:
        return (*saved, model)
    source = ModelShape.from_config(model.config)
    if config.method == "learned":
        student_source = copy.deepcopy(model)
        masked = train_masks(
            student_source,
            shape,
            calibration,
            _checkpoint_dir(run, "masks"),
            config.learned,
            pad_token_id=tokenizer.pad_token_id,
            run_settings=run.settings,
            show_progress=show_progress,
            seed=config.seed,
            bf16=bf16,
        )
        pruned, plan = fold_masks(masked)
        del masked, student_source
    else:
        if config.method == "random":
            scores = ImportanceScores.random(model, torch.Generator().manual_seed(config.seed))
        else:
            scores = collect_importance(model, calibration, config.batch_size, bf16=bf16, show_progress=show_progress)
        plan = plan_from_scores(scores, source, shape, rescale_norms=config.rescale_norms)
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


def _check_output_dir(run: _Run) -> nn.Module | None:
    """Refuse an output folder holding anything but this run; return the result when this run already finished."""
    folder = run.output_dir
    if folder is None or not folder.exists():
        return None
    if not folder.is_dir():
        raise ValueError(f"output_dir {folder} exists and is not a folder.")
    provenance = folder / PROVENANCE_FILE
    if provenance.is_file():
        recorded = (read_json(provenance) or {}).get("run_settings")
        if recorded == normalized(run.settings):
            from transformers import AutoModelForCausalLM

            logger.info(f"{folder} already holds the result of this run; loading it.")
            return AutoModelForCausalLM.from_pretrained(folder).eval()
        raise ValueError(f"{folder} holds a model pruned with other settings; choose another output_dir.")
    run_file = run.work_dir / RUN_FILE
    if run_file.is_file():
        check_run_settings(run_file, run.settings, what=f"The unfinished pruning run in {folder}")
        return None
    if any(folder.iterdir()):
        raise ValueError(f"output_dir {folder} is not empty; choose a new or empty folder.")
    return None


def _start_work_dir(run: _Run) -> None:
    """Record the run's settings first, so that a rerun can tell its own unfinished work from anything else."""
    if run.work_dir is None:
        return
    write_json_atomically(run.work_dir / RUN_FILE, normalized(run.settings))


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
        "run_settings": normalized(settings),
    }

"""``evaluate``: run a model and its baselines through MTEB on the same tasks and write the results.

Every model, the baselines included, is scored by MTEB's own retrieval evaluation (pytrec_eval, trec_eval's
linear-gain nDCG); dense models are wrapped by mteb's SentenceTransformer wrapper, which encodes queries with
``encode_query`` and documents with ``encode_document``. Results are cached by MTEB under ``OUTPUT/mteb`` keyed by
model fingerprint and collection fingerprint, so a rerun of the same command skips what is done.
"""

from __future__ import annotations

import gc
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mteb
import torch
from mteb import ResultCache
from mteb.abstasks import AbsTaskRetrieval
from mteb.abstasks.abstask import AbsTask
from mteb.models import ModelMeta
from sentence_transformers import SentenceTransformer

from .. import __version__
from ..config_tools import config_from
from ..default_llm import DEFAULT_LLM_NAME
from ..runs import check_output_dir
from .baselines import MINILM_MODEL_NAME, load_backbone, load_minilm
from .beir_task import load_tasks
from .bm25_search import BM25Search
from .config import EvaluateConfig
from .encoders import STDramaEncoder, default_bf16, model_fingerprint
from .model_meta import build_model_meta, save_model_meta
from .per_query import per_query_scores
from .results import MODEL_KEY, EvaluationResults, ModelRun, TaskScores

logger = logging.getLogger(__name__)


@dataclass
class _Candidate:
    """A model to evaluate, loaded only when its turn comes (one model in memory at a time)."""

    key: str
    label: str
    load: Callable[[], Any]


def evaluate(
    model: str | os.PathLike | SentenceTransformer,
    tasks: str | os.PathLike | AbsTask | Sequence[str | os.PathLike | AbsTask],
    config: EvaluateConfig | None = None,
    output_dir: str | os.PathLike = "st-drama-evaluation",
    *,
    model_meta: ModelMeta | None = None,
    trained_on: Sequence[str] = (),
    matryoshka_dims: Sequence[int] | None = None,
    cache_dir: str | os.PathLike | None = None,
    overwrite: bool = False,
    skip_malformed: bool = False,
    show_progress: bool = True,
    **overrides: Any,
) -> EvaluationResults:
    """Evaluate ``model`` and the baselines on ``tasks`` with MTEB and write MTEB's result files, ``results.json``,
    ``results.md`` (nDCG@10 / Recall@100 per model and task) and ``ndcg_at_10.png``.

    Args:
        model: A SentenceTransformer, a saved SentenceTransformer folder, or an LLM (folder, hub id or
            ``"smollm2-135m"``) turned into an untrained retriever by :func:`st_drama.build_model`.
        tasks: BEIR-layout folders, ``"cranfield"`` (bundled), MTEB task or benchmark names, or MTEB task objects.
        config: Baselines, precision, lengths (default: ``EvaluateConfig()``).
        output_dir: Where the results go.
        model_meta: A full leaderboard :class:`mteb.ModelMeta` for the model (see :func:`build_model_meta`);
            overrides ``config.model_name``, ``trained_on`` and ``matryoshka_dims``.
        trained_on: Names of the MTEB tasks (for a BEIR folder: its task name) whose data, its corpus included, the
            model was trained on; the model is not zero-shot on them (MTEB's ``training_datasets``).
        matryoshka_dims: Truncations the model was trained for (default: read from a saved folder's
            ``st_drama_run.json``), listed in the ModelMeta's ``embed_dim``.
        cache_dir: MTEB's result cache (default: ``output_dir`` itself). Share one between runs so that unchanged
            models (the baselines) are not evaluated again; the results of this run are copied into
            ``output_dir/results`` either way.
        overwrite: Recompute results already in the MTEB cache.
        skip_malformed: Skip and count malformed rows of a BEIR folder's corpus instead of refusing it.
        show_progress: Show progress bars.
        **overrides: Changes to ``config`` by field name, e.g. ``baselines=("bm25",), max_seq_length=128``.
    """
    config = config_from(EvaluateConfig, config, overrides)
    task_list = load_tasks(tasks, skip_malformed=skip_malformed)
    _check_model_source(model)
    output_dir = check_output_dir(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    cache = ResultCache(Path(cache_dir) if cache_dir else output_dir)
    model_name = model_meta.name if model_meta else config.model_name
    if matryoshka_dims is None and not isinstance(model, SentenceTransformer):
        matryoshka_dims = trained_matryoshka_dims(model)
    candidates = _candidates(model, config, model_name)

    runs: list[ModelRun] = []
    files: dict[str, Path] = {}
    for candidate in candidates:
        logger.info(f"Loading {candidate.label} ...")
        start = time.perf_counter()
        loaded = candidate.load()
        load_time = time.perf_counter() - start
        if isinstance(loaded, SentenceTransformer):
            if candidate.key in (MODEL_KEY, "backbone"):
                apply_inference_settings(loaded, config.max_seq_length, config.max_chunks)
            use_bf16 = default_bf16(loaded) if config.bf16 is None else config.bf16
            facts = {"trained_on": trained_on, "matryoshka_dims": matryoshka_dims, "bf16": use_bf16}
            meta = _dense_meta(candidate, loaded, model_name, model_meta, facts)
            if candidate.key == MODEL_KEY:
                files["model_meta"] = save_model_meta(meta, output_dir / "model_meta.json")
            runner: Any = STDramaEncoder(loaded, meta, bf16=use_bf16)
            if config.hybrids:  # the hybrids reuse the dense run's embeddings instead of encoding again
                runner = _with_embedding_cache(runner, cache)
            settings = {"bf16": use_bf16, "batch_size": config.batch_size, "device": str(loaded.device)}
        else:
            runner, meta, settings = loaded, loaded.mteb_model_meta, loaded.settings()
        run = ModelRun(candidate.key, candidate.label, str(meta.name), str(meta.revision), load_time, settings)
        predictions = _predictions_folder(output_dir, meta) if config.per_query else None
        for task in task_list:
            _evaluate_one(run, runner, task, cache, config.batch_size, overwrite, show_progress, predictions)
        runs.append(run)
        if isinstance(loaded, SentenceTransformer):
            runs += _hybrid_runs(
                candidate, runner, settings, task_list, cache, config, overwrite, show_progress, output_dir
            )
        del runner, loaded
        gc.collect()

    results = EvaluationResults([task.metadata.name for task in task_list], runs, _global_settings(), files)
    _export_results(runs, cache, output_dir)
    _write_outputs(results, output_dir)
    return results


def apply_inference_settings(
    model: SentenceTransformer, max_seq_length: int | None = None, max_chunks: int | None = None
) -> None:
    """Set the encoding length and, on an st-drama backbone, the number of windows per long text (None: keep)."""
    if max_seq_length:
        model.max_seq_length = max_seq_length
    if max_chunks is None:
        return
    first_module = model[0]
    if not hasattr(first_module, "max_chunks"):
        if max_chunks > 1:
            raise ValueError(
                f"max_chunks={max_chunks} needs an st-drama LlamaBackbone; this model starts with "
                f"{type(first_module).__name__}."
            )
        return
    first_module.max_chunks = max_chunks


def _check_model_source(model: Any) -> None:
    """A model given by name is a local folder, the embedded default, or a hub id (``org/name``); anything else is
    an error before any evaluation starts."""
    if isinstance(model, SentenceTransformer):
        return
    text = str(model)
    if Path(text).exists() or text.lower() == DEFAULT_LLM_NAME or (text.count("/") == 1 and not text.startswith(".")):
        return
    raise FileNotFoundError(
        f"{text}: no such model folder (nor the embedded {DEFAULT_LLM_NAME!r}, nor a hub id org/name)."
    )


def _candidates(
    model: str | os.PathLike | SentenceTransformer, config: EvaluateConfig, model_name: str | None
) -> list[_Candidate]:
    from ..builder import _is_sentence_transformer_folder, build_model

    style, device = config.style, config.device

    model_is_llm = not isinstance(model, SentenceTransformer) and not _is_sentence_transformer_folder(model)
    if isinstance(model, SentenceTransformer):
        label = model_name.split("/")[-1] if model_name else "model"
        candidates = [_Candidate(MODEL_KEY, label, lambda: model)]
    else:
        candidates = [
            _Candidate(MODEL_KEY, _folder_label(model), lambda: build_model(str(model), style=style, device=device))
        ]
    for name in config.baselines:
        if name == "bm25":
            candidates.append(_Candidate("bm25", "BM25", BM25Search))
        elif name == "minilm":
            candidates.append(_Candidate("minilm", "all-MiniLM-L6-v2", lambda: load_minilm(device)))
        elif name == "backbone":
            llm = config.backbone or (str(model) if model_is_llm else DEFAULT_LLM_NAME)
            if model_is_llm and llm == str(model):
                logger.info("The model is itself the untrained backbone; the 'backbone' baseline would repeat it.")
                continue
            candidates.append(
                _Candidate(
                    "backbone",
                    f"{_folder_label(llm)} untrained",
                    lambda llm=llm: load_backbone(llm, style=style, device=device),
                )
            )
    return candidates


def _dense_meta(
    candidate: _Candidate,
    model: SentenceTransformer,
    model_name: str | None,
    model_meta: ModelMeta | None,
    facts: dict[str, Any],
) -> ModelMeta:
    """The run's ModelMeta. Its revision fingerprints the weights, the encoding settings and the precision (bf16
    changes the embeddings slightly), so MTEB's cache never mixes two of them, and the results folder and
    ``model_meta.json`` name the same revision."""
    revision = model_fingerprint(model, {"bf16": True} if facts["bf16"] else None)
    if candidate.key == MODEL_KEY:
        if model_meta is not None:
            return model_meta
        return build_model_meta(
            model,
            model_name or f"st-drama/{_safe_name(candidate.label)}",
            revision=revision,
            training_datasets=facts["trained_on"],
            matryoshka_dims=facts["matryoshka_dims"],
        )
    if candidate.key == "minilm":
        return build_model_meta(
            model,
            MINILM_MODEL_NAME,
            revision=revision,
            license="apache-2.0",
            training_datasets=None,
            public_training_code=None,
            adapted_from="nreimers/MiniLM-L6-H384-uncased",
        )
    return build_model_meta(model, f"st-drama/{_safe_name(candidate.label)}", revision=revision, languages=None)


def _with_embedding_cache(encoder: Any, cache: ResultCache) -> Any:
    """``encoder`` behind mteb's embedding cache, one folder per model revision next to the result cache."""
    from mteb.models import CachedEmbeddingWrapper

    meta = encoder.mteb_model_meta
    folder = cache.cache_path / "embeddings" / meta.model_name_as_path() / meta.revision
    return CachedEmbeddingWrapper(encoder, folder)


def _hybrid_runs(
    candidate: _Candidate,
    encoder: Any,
    settings: dict[str, Any],
    task_list: list[AbsTask],
    cache: ResultCache,
    config: EvaluateConfig,
    overwrite: bool,
    show_progress: bool,
    output_dir: Path,
) -> list[ModelRun]:
    """One run per fusion in ``config.hybrids``: the dense run fused with BM25."""
    from .hybrid import hybrid_search

    runs = []
    for fusion in config.hybrids:
        search = hybrid_search(encoder, fusion)
        meta = search.mteb_model_meta
        key, label = f"{candidate.key}+bm25:{fusion.label}", f"{candidate.label} + BM25 ({fusion.label})"
        run = ModelRun(key, label, str(meta.name), str(meta.revision), 0.0, {**settings, "fusion": fusion.label})
        predictions = _predictions_folder(output_dir, meta) if config.per_query else None
        for task in task_list:
            _evaluate_one(run, search, task, cache, config.batch_size, overwrite, show_progress, predictions)
        runs.append(run)
    return runs


def trained_matryoshka_dims(model: str | os.PathLike) -> list[int] | None:
    """The truncations a saved model supports below its full size, from its ``st_drama_run.json`` (st-drama
    training, which lists the full size first) or ``st_drama_conversion.json`` (a converted release); None when
    unknown."""
    import json

    folder = Path(str(model))
    for name, skip in (("st_drama_run.json", 1), ("st_drama_conversion.json", 0)):
        if (folder / name).is_file():
            dims = json.loads((folder / name).read_text(encoding="utf-8")).get("matryoshka_dims") or []
            return [int(dim) for dim in dims[skip:]] or None
    return None


def _predictions_folder(output_dir: Path, meta: ModelMeta) -> Path:
    """Where MTEB keeps a run's rankings, one folder per model revision (the results' layout), so that a ranking is
    never read for another revision of the model."""
    return output_dir / "predictions" / meta.model_name_as_path() / str(meta.revision)


def _export_results(runs: list[ModelRun], cache: ResultCache, output_dir: Path) -> None:
    """Copy each run's MTEB result folder (``results/<org>__<name>/<revision>/``, the results repository's layout)
    into ``output_dir`` when the cache lives elsewhere."""
    import shutil

    target = output_dir / "results"
    if cache.cache_path.resolve() == output_dir.resolve():
        return
    for run in runs:
        source = cache.cache_path / "results" / run.name.replace("/", "__") / run.revision
        if source.is_dir():
            shutil.copytree(source, target / source.parent.name / source.name, dirs_exist_ok=True)


def _evaluate_one(
    run: ModelRun,
    runner: Any,
    task: AbsTask,
    cache: ResultCache,
    batch_size: int,
    overwrite: bool,
    show_progress: bool,
    predictions: Path | None = None,
) -> None:
    """Score ``runner`` on ``task`` (reusing MTEB's cached result); with ``predictions`` (a folder), keep MTEB's
    ranking there and each query's scores in the run."""
    name = task.metadata.name
    if isinstance(runner, BM25Search) and not getattr(task, "_support_search", False):
        run.skipped_tasks[name] = f"BM25 only runs retrieval tasks, not {task.metadata.type}"
        return
    strategy, cached = _overwrite_strategy(task, runner.mteb_model_meta, cache, overwrite)
    per_query = predictions is not None and isinstance(task, AbsTaskRetrieval)
    if per_query:
        # Per-query scores need the ranking, which a cached result does not keep: search again without it. One
        # folder per collection revision, so that a ranking is never scored against changed judgements. The data is
        # loaded here so that MTEB keeps it (it unloads only what it loaded), for the judgements.
        predictions = predictions / str(task.metadata.revision)
        predictions_file = task._predictions_path(predictions)
        if not predictions_file.is_file():
            strategy, cached = "always", False
        task.load_data()
    logger.info(f"Evaluating {run.label} on {name} ...")
    start = time.perf_counter()
    model_result = mteb.evaluate(
        runner,
        task,
        cache=cache,
        overwrite_strategy=strategy,
        encode_kwargs={"batch_size": batch_size, "show_progress_bar": show_progress},
        show_progress_bar=show_progress,
        co2_tracker=False,
        prediction_folder=predictions if per_query else None,
    )
    wall_time = time.perf_counter() - start
    if model_result.exceptions:
        raise RuntimeError(f"MTEB failed on {name} for {run.label}: {model_result.exceptions[0].exception}")
    (task_result,) = model_result.task_results
    run.scores[name] = _task_scores(task_result, task, wall_time, cached=cached)
    if per_query:
        run.scores[name].per_query = per_query_scores(predictions_file, task)
    score = run.scores[name]
    logger.info(f"{run.label} on {name}: {score.main_metric} = {score.main_score:.4f} ({wall_time:.1f} s)")


def _overwrite_strategy(task: AbsTask, meta: ModelMeta, cache: ResultCache, overwrite: bool) -> tuple[str, bool]:
    """MTEB's overwrite strategy and whether the result is already complete in the cache. Cached results are reused
    only when computed on the same collection (MTEB itself reuses a complete result whatever its dataset revision).
    """
    if overwrite:
        return "always", False
    existing = cache.load_task_result(task.metadata.name, meta)
    if existing is None:
        return "only-missing", False
    if existing.dataset_revision != task.metadata.revision:
        return "always", False
    return "only-missing", not existing.get_missing_evaluations(task)


def _task_scores(task_result: Any, task: AbsTask, wall_time: float, cached: bool) -> TaskScores:
    split = task.eval_splits[0]
    subset_scores = task_result.scores.get(split) or []
    if not subset_scores:
        raise RuntimeError(f"MTEB returned no scores for {task.metadata.name} split {split!r}.")

    def mean_of(metric: str) -> float | None:
        values = [scores[metric] for scores in subset_scores if metric in scores]
        return sum(values) / len(values) if values else None

    phases: dict[str, float] = {}
    for phase in task_result.evaluation_phases or []:
        phases[phase["name"]] = phases.get(phase["name"], 0.0) + phase["end"] - phase["start"]
    return TaskScores(
        main_metric=task.metadata.main_score,
        main_score=float(mean_of("main_score")),
        ndcg_at_10=mean_of("ndcg_at_10"),
        recall_at_100=mean_of("recall_at_100"),
        wall_time_s=wall_time,
        evaluation_time_s=task_result.evaluation_time,
        phases_s=phases,
        cached=cached,
    )


def _global_settings() -> dict[str, Any]:
    return {
        "st_drama": __version__,
        "mteb": mteb.__version__,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
    }


def _write_outputs(results: EvaluationResults, output_dir: Path) -> None:
    from .report import write_chart, write_results_json, write_table

    results.files["mteb_results"] = output_dir / "results"
    results.files["results_json"] = write_results_json(results, output_dir / "results.json")
    results.files["table"] = write_table(results, output_dir / "results.md")
    results.files["chart"] = write_chart(results, output_dir / "ndcg_at_10.png")


def _folder_label(model: str | os.PathLike) -> str:
    text = str(model).rstrip("/\\")
    return os.path.basename(text) or text


def _safe_name(label: str) -> str:
    return "".join(character if character.isalnum() or character in "-_." else "-" for character in label)

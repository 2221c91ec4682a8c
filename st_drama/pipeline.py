"""The main job: an LLM -> (prune) -> (LLaRA adapt) -> augment a corpus -> train -> evaluate against baselines.

Each stage writes to its own folder under the output directory and records ``stage.json`` (its fingerprint, output
and wall time) when it finishes. A rerun skips every stage whose fingerprint (its settings, its inputs' fingerprints)
is unchanged, reruns the others, and stages that were interrupted resume from their own checkpoints.

Augmentation and adaptation read only the corpus (``corpus.jsonl``); the collection's queries and judgements, if
present, are used only by the final evaluation.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .corpus import resolve_collection_path
from .default_llm import DEFAULT_LLM_NAME

if TYPE_CHECKING:
    from .augment import MiningSettings

logger = logging.getLogger(__name__)

STAGE_RECORD = "stage.json"
STAGES = ("prune", "llara", "augment", "train", "evaluate")


def _merged(base: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``change`` applied; nested settings (``augment.crop``) are merged key by key, not replaced."""
    merged = copy.deepcopy(base)
    for key, value in change.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merged(merged[key], value)
        else:
            merged[key] = value
    return merged


# Stage settings per preset; None turns a stage off. "quick" takes about ten minutes on Cranfield on a 2-core CPU
# (four and a half minutes of training, five of evaluation with three dense models). At its 16 steps, LLaRA's
# framing, a learning rate of 2e-4 and temperature 0.02 (LLaRA's) train best of what we measured on Cranfield
# (nDCG@10 0.294; 0.276 at temperature 0.05, 0.242 in DRAMA's framing, 0.139 in DRAMA's framing at 5e-5; see the
# README's Results). Cutting each crop out of its positive lifted the quick pipeline's mean nDCG@10 over the four
# shared collections from 0.274 to 0.325, and title rows next to the crops to 0.341 (CISI 0.365 -> 0.412,
# DBpedia-Entity 0.337 -> 0.355, Cranfield 0.314 -> 0.315; the Arabic corpus has no titles).
QUICK_PRESET: dict[str, dict[str, Any] | None] = {
    "prune": None,
    "llara": None,
    "augment": {
        "sources": ["crop", "title"],
        "max_docs": None,
        "rerank": "none",
        "negatives": 1,
        "batch_size": 16,
        "crop": {"context_removal": 1.0},
    },
    "train": {
        "style": "llara",
        "steps": 16,
        "batch_size": 16,
        "learning_rate": 2e-4,
        "max_negatives": 1,
        "max_seq_length": 128,
        "temperature": 0.02,
    },
    "evaluate": {"baselines": ["bm25", "minilm", "backbone"], "max_seq_length": 128, "batch_size": 32},
}
# "full" is the best recipe measured on the CPU: quick's rows and settings for 192 steps, saved 70% of the way from
# the LLM to the trained weights (WiSE-FT). Mean nDCG@10 over the four shared collections 0.395 against quick's
# 0.341 (all-MiniLM-L6-v2 0.342), above BM25 on Cranfield, CISI and DBpedia-Entity. The earlier "full" (now "gpu")
# was never measured; of its pieces, LLaRA adaptation first and longer texts lost on the CPU, and SmolLM2's synthetic
# queries take 3 s a document with half of them rejected.
FULL_PRESET = _merged(QUICK_PRESET, {"train": {"steps": 192, "wise_alpha": 0.7}})
# "gpu" is DRAMA's data recipe after LLaRA adaptation, for a GPU and a strong --augment-llm: cropped and LLM-written
# queries, seven hard negatives, one epoch at 256 tokens. Not yet measured (no GPU has been lent to this project).
GPU_PRESET: dict[str, dict[str, Any] | None] = {
    "prune": None,
    "llara": {"steps": 200, "batch_size": 16, "chunk_tokens": 128, "learning_rate": 5e-5},
    "augment": _merged(QUICK_PRESET["augment"], {"sources": ["crop", "synthetic"], "negatives": 7}),
    "train": {
        "epochs": 1.0,
        "batch_size": 32,
        "learning_rate": 1e-4,
        "max_negatives": 7,
        "max_seq_length": 256,
        "temperature": 0.02,
    },
    "evaluate": _merged(QUICK_PRESET["evaluate"], {"max_seq_length": 512}),
}
PRESETS: dict[str, dict[str, dict[str, Any] | None]] = {"quick": QUICK_PRESET, "full": FULL_PRESET, "gpu": GPU_PRESET}
DEFAULT_PRUNE = {"params": None, "method": "importance", "recover_steps": 200, "calibration_tokens": 200_000}
# --llara on the quick preset: the adaptation measured on Cranfield (about four minutes on a 2-core CPU).
DEFAULT_LLARA = {"steps": 60, "batch_size": 8, "chunk_tokens": 128, "learning_rate": 5e-5}
# The settings a stage starts from when the preset leaves it off and the caller turns it on.
DEFAULT_STAGE_SETTINGS: dict[str, dict[str, Any]] = {"prune": DEFAULT_PRUNE, "llara": DEFAULT_LLARA}


@dataclass
class StageResult:
    name: str
    output: str
    seconds: float
    skipped: bool
    fingerprint: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class PipelineSettings:
    """What the pipeline runs: the preset's stage settings with the caller's changes applied."""

    model: str = DEFAULT_LLM_NAME
    preset: str = "quick"
    stages: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    seed: int = 42

    @classmethod
    def from_preset(
        cls,
        preset: str = "quick",
        model: str = DEFAULT_LLM_NAME,
        overrides: dict[str, dict[str, Any] | None] | None = None,
        seed: int = 42,
    ) -> PipelineSettings:
        if preset not in PRESETS:
            raise ValueError(f"Unknown preset {preset!r}; presets: {sorted(PRESETS)}.")
        stages = copy.deepcopy(PRESETS[preset])
        for stage, change in (overrides or {}).items():
            if stage not in STAGES:
                raise ValueError(f"Unknown stage {stage!r}; stages: {STAGES}.")
            if change is None:
                stages[stage] = None
            else:
                base = stages[stage] if stages[stage] is not None else DEFAULT_STAGE_SETTINGS.get(stage, {})
                stages[stage] = _merged(base, change)
        if stages["augment"] is None or stages["train"] is None:
            raise ValueError("The augment and train stages cannot be turned off.")
        _training_style(stages["train"].get("style"), llara_adapted=stages["llara"] is not None)
        from .augment.crop import CropSettings
        from .augment.generator import checked_sources
        from .training.weight_interpolation import check_wise_alpha

        # Checked here, not when their stages start: those may come after hours of pruning.
        checked_sources(stages["augment"].get("sources"))
        CropSettings(**stages["augment"].get("crop", {}))
        mining_settings(stages["augment"])
        check_wise_alpha(stages["train"].get("wise_alpha", 1.0))
        return cls(model=model, preset=preset, stages=stages, seed=seed)


def run_pipeline(
    corpus_dir: str | os.PathLike,
    output_dir: str | os.PathLike,
    settings: PipelineSettings | None = None,
    show_progress: bool = True,
) -> dict[str, Any]:
    """Run every stage of ``settings`` on ``corpus_dir`` (a BEIR-layout folder or ``"cranfield"``) into
    ``output_dir``; returns what is written to ``output_dir/results.json``.

    Outputs: ``output_dir/model`` (the trained SentenceTransformer, with a model card carrying the recipe and the
    MTEB results), ``results.json`` and ``results.md``, and one folder per stage.
    """
    settings = settings or PipelineSettings.from_preset()
    corpus_path = resolve_collection_path(corpus_dir)
    if not (corpus_path / "corpus.jsonl").is_file():
        raise FileNotFoundError(f"{corpus_path}: no corpus.jsonl (the pipeline takes a BEIR-layout folder).")
    runner = _StageRunner(Path(output_dir), _corpus_fingerprint(corpus_path), settings.seed)
    stages = settings.stages
    started = time.time()

    model_path = settings.model
    if stages["prune"] is not None:
        model_path = runner.run(
            "prune",
            stages["prune"],
            [model_path],
            lambda d: _prune(model_path, corpus_path, d, stages["prune"], show_progress),
        )
    adapted_path = model_path
    if stages["llara"] is not None:
        adapted_path = runner.run(
            "llara",
            stages["llara"],
            [model_path],
            lambda d: _llara(model_path, corpus_path, d, stages["llara"], settings.seed, show_progress),
        )
    data_path = runner.run(
        "augment",
        stages["augment"],
        [],
        lambda d: _augment(corpus_path, d, stages["augment"], settings.seed, show_progress),
    )
    train_settings = dict(stages["train"])
    style = _training_style(train_settings.pop("style", None), llara_adapted=stages["llara"] is not None)
    final_model = runner.run(
        "train",
        {**train_settings, "style": style},
        [adapted_path, data_path],
        lambda d: _train(
            adapted_path,
            data_path,
            d,
            Path(output_dir) / "model",
            train_settings,
            style,
            settings.seed,
            show_progress,
        ),
    )
    evaluation = None
    if stages["evaluate"] is not None and _has_judgements(corpus_path):
        evaluation_dir = runner.run(
            "evaluate",
            stages["evaluate"],
            [final_model, model_path],
            lambda d: _evaluate(
                final_model,
                model_path,
                corpus_path,
                d,
                Path(output_dir) / "mteb_cache",
                stages["evaluate"],
                style,
                show_progress,
            ),
        )
        evaluation = json.loads((Path(evaluation_dir) / "results.json").read_text(encoding="utf-8"))
    elif stages["evaluate"] is not None:
        logger.warning(f"{corpus_path} has no queries.jsonl and qrels/test.tsv: skipping the evaluation.")

    results = {
        "corpus": str(corpus_path),
        "preset": settings.preset,
        "source_model": settings.model,
        "stages": {name: _stage_summary(result) for name, result in runner.results.items()},
        "settings": settings.stages,
        "evaluation": evaluation,
        "wall_time_s": round(time.time() - started, 1),
    }
    _write_results(Path(output_dir), results)
    _write_model_card(Path(final_model), results, Path(output_dir) / "results.md")
    return results


def _training_style(style: str | None, llara_adapted: bool) -> str:
    """The framing of training and evaluation: a LLaRA-adapted model keeps LLaRA's; otherwise the train stage's
    ``style`` (DRAMA's when unset)."""
    if style not in (None, "drama", "llara"):
        raise ValueError(f"train.style must be 'drama' or 'llara', got {style!r}.")
    if llara_adapted and style == "drama":
        raise ValueError(
            "train.style='drama' cannot follow the llara stage: the adapted model is trained in LLaRA's framing. "
            "Turn the llara stage off (--no-llara) or use style 'llara'."
        )
    return "llara" if llara_adapted else style or "drama"


class _StageRunner:
    """Runs a stage unless ``stage.json`` shows it finished with the same fingerprint."""

    def __init__(self, output_dir: Path, corpus_fingerprint: str, seed: int) -> None:
        self.output_dir = output_dir
        self.corpus_fingerprint = corpus_fingerprint
        self.seed = seed
        self.results: dict[str, StageResult] = {}

    def run(self, name: str, config: dict[str, Any], inputs: list[str], work: Callable[[Path], str]) -> str:
        stage_dir = self.output_dir / name
        fingerprint = _fingerprint(
            {"stage": name, "config": config, "inputs": [self._input_key(i) for i in inputs], "seed": self.seed,
             "corpus": self.corpus_fingerprint}
        )  # fmt: skip
        record = _read_record(stage_dir)
        finished = record and record["fingerprint"] == fingerprint and record["status"] == "done"
        if finished and Path(record["output"]).exists():
            logger.info(f"Stage {name}: done earlier ({record['seconds']:.0f} s), skipping.")
            self.results[name] = StageResult(name, record["output"], record["seconds"], True, fingerprint)
            return record["output"]
        if record and record["fingerprint"] != fingerprint:
            # Checkpoints of other settings must not be resumed into this run.
            logger.info(f"Stage {name}: settings or inputs changed since it last ran; starting it afresh.")
            shutil.rmtree(stage_dir)
        elif record and record["status"] == "running":
            logger.info(f"Stage {name}: resuming the interrupted run.")
        stage_dir.mkdir(parents=True, exist_ok=True)
        _write_record(stage_dir, {"status": "running", "fingerprint": fingerprint, "config": config})
        logger.info(f"Stage {name}: running.")
        started, cpu_started = time.time(), time.process_time()
        output = work(stage_dir)
        seconds = round(time.time() - started, 1)
        record = {
            "status": "done",
            "fingerprint": fingerprint,
            "output": str(output),
            "seconds": seconds,
            # CPU seconds of every thread: the stage's cost independent of what else shares the machine.
            "cpu_seconds": round(time.process_time() - cpu_started, 1),
            "config": config,
        }
        _write_record(stage_dir, record)
        self.results[name] = StageResult(name, str(output), seconds, False, fingerprint)
        logger.info(f"Stage {name}: finished in {seconds:.0f} s -> {output}")
        return str(output)

    def _input_key(self, path_or_name: str) -> str:
        """A finished stage's output stands for that stage's fingerprint; anything else for itself."""
        for result in self.results.values():
            if result.output == str(path_or_name):
                return result.fingerprint
        return str(path_or_name)


def _prune(model: str, corpus: Path, stage_dir: Path, config: dict[str, Any], show_progress: bool) -> str:
    from .pruning import prune

    target_keys = ("num_layers", "hidden_size", "intermediate_size", "num_heads", "num_kv_heads", "params")
    target = {key: config[key] for key in target_keys if config.get(key)}
    if not target:
        raise ValueError("The prune stage needs a target, e.g. params='60M' (--prune-params 60M).")
    output = stage_dir / "model"
    prune(
        model,
        target,
        calibration_texts=corpus,
        method=config.get("method", "importance"),
        output_dir=output,
        calibration_tokens=config.get("calibration_tokens", DEFAULT_PRUNE["calibration_tokens"]),
        recover_steps=config.get("recover_steps", 0),
        show_progress=show_progress,
    )
    return str(output)


def mining_settings(augment: dict[str, Any]) -> MiningSettings:
    """The augment stage's candidate mining: ``negatives`` per row and, when given, ``negative_ranks``
    ``[low, high]``, the first-stage ranks that supply them (else DRAMA's 30-50)."""
    from .augment import MiningSettings

    ranks = augment.get("negative_ranks")
    if ranks is None:
        return MiningSettings(num_negatives=augment["negatives"])
    if not isinstance(ranks, (list, tuple)) or len(ranks) != 2 or not all(isinstance(rank, int) for rank in ranks):
        raise ValueError(f"augment.negative_ranks must be [low, high] (1-based ranks), got {ranks!r}")
    return MiningSettings(num_negatives=augment["negatives"], negative_ranks=(ranks[0], ranks[1]))


def _llara(model: str, corpus: Path, stage_dir: Path, config: dict[str, Any], seed: int, show_progress: bool) -> str:
    from .llara import pretrain

    return pretrain(
        model, corpus, stage_dir, resume=True, skip_malformed=True, seed=seed, show_progress=show_progress, **config
    )


def _augment(corpus: Path, stage_dir: Path, config: dict[str, Any], seed: int, show_progress: bool) -> str:
    from .augment import AugmentationGenerator, AugmentConfig, CropSettings

    mining = mining_settings(config)
    settings = {key: value for key, value in config.items() if key not in ("negatives", "negative_ranks")}
    crop = CropSettings(**settings.pop("crop", {}))
    augment_config = AugmentConfig(seed=seed, mining=mining, crop=crop, **settings)
    output = stage_dir / "data"
    AugmentationGenerator(augment_config).generate(corpus, output, skip_malformed=True, progress=show_progress)
    return str(output)


def _train(
    model: str,
    data: str,
    stage_dir: Path,
    final_dir: Path,
    config: dict[str, Any],
    style: str,
    seed: int,
    show_progress: bool,
) -> str:
    from .training.train import train

    trained = train(model, data, stage_dir, style=style, resume=True, seed=seed, show_progress=show_progress, **config)
    if final_dir.exists():
        shutil.rmtree(final_dir)
    os.replace(trained, final_dir)
    return str(final_dir)


def _evaluate(
    model: str,
    backbone: str,
    corpus: Path,
    stage_dir: Path,
    cache_dir: Path,
    config: dict[str, Any],
    style: str,
    show_progress: bool,
) -> str:
    """Evaluate the trained model and the baselines; the MTEB cache lives outside the stage folder, so a rerun with
    other training settings does not evaluate the unchanged baselines again."""
    from sentence_transformers import SentenceTransformer

    from .evaluation import evaluate

    trained = SentenceTransformer(model, trust_remote_code=True)
    evaluate(
        trained,
        [corpus],
        output_dir=stage_dir,
        cache_dir=cache_dir,
        model_name=f"st-drama/{Path(model).parent.name}-trained",
        backbone=backbone,
        style=style,
        show_progress=show_progress,
        **config,
    )
    # evaluate() set the evaluation's length and windows on `trained`: save them so the model encodes as evaluated.
    trained[0].save_config(model)
    return str(stage_dir)


def _has_judgements(corpus: Path) -> bool:
    return (corpus / "queries.jsonl").is_file() and (corpus / "qrels" / "test.tsv").is_file()


def _corpus_fingerprint(corpus: Path) -> str:
    stat = (corpus / "corpus.jsonl").stat()
    return f"{corpus.resolve()}:{stat.st_size}:{int(stat.st_mtime)}"


def _fingerprint(data: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _write_record(stage_dir: Path, record: dict[str, Any]) -> None:
    temporary = stage_dir / f".{STAGE_RECORD}.tmp"
    temporary.write_text(json.dumps(record, indent=2, default=str), encoding="utf-8")
    os.replace(temporary, stage_dir / STAGE_RECORD)


def _read_record(stage_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads((stage_dir / STAGE_RECORD).read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def _stage_summary(result: StageResult) -> dict[str, Any]:
    return {"output": result.output, "seconds": result.seconds, "skipped": result.skipped}


def _write_results(output_dir: Path, results: dict[str, Any]) -> None:
    (output_dir / "results.json").write_text(json.dumps(results, indent=2, default=str), encoding="utf-8")
    (output_dir / "results.md").write_text(_results_markdown(results), encoding="utf-8")


def _results_markdown(results: dict[str, Any]) -> str:
    lines = [f"# st-drama pipeline on `{results['corpus']}` (preset `{results['preset']}`)", ""]
    evaluation = results.get("evaluation")
    if evaluation:
        lines += ["| model | " + " | ".join(evaluation["tasks"]) + " |", "|---|" + "---|" * len(evaluation["tasks"])]
        for model in evaluation["models"].values():
            cells = []
            for task in evaluation["tasks"]:
                scores = model["tasks"].get(task)
                cells.append(f"{scores['ndcg_at_10']:.3f} / {scores['recall_at_100']:.3f}" if scores else "-")
            lines.append(f"| {model['label']} | " + " | ".join(cells) + " |")
        lines += ["", "nDCG@10 / Recall@100 (MTEB).", ""]
    lines += ["| stage | wall time (s) | reused |", "|---|---|---|"]
    for name, stage in results["stages"].items():
        lines.append(f"| {name} | {stage['seconds']:.0f} | {'yes' if stage['skipped'] else 'no'} |")
    lines += ["", f"Total wall time of this run: {results['wall_time_s']:.0f} s."]
    return "\n".join(lines) + "\n"


def _write_model_card(model_dir: Path, results: dict[str, Any], table_path: Path) -> None:
    """Append the recipe and the evaluation to the model card sentence-transformers wrote."""
    card_path = model_dir / "README.md"
    card = card_path.read_text(encoding="utf-8") if card_path.is_file() else ""
    marker = "\n## st-drama recipe and evaluation\n"
    card = card.split(marker)[0]
    recipe = json.dumps({k: v for k, v in results["settings"].items() if v}, indent=2, default=str)
    section = (
        f"{marker}\nBuilt with [st-drama](https://github.com/st-drama/st-drama) from `{results['source_model']}` "
        f"(preset `{results['preset']}`) on the corpus `{Path(results['corpus']).name}`.\n\n"
        f"```json\n{recipe}\n```\n\n### Results\n\n{_without_title(table_path.read_text(encoding='utf-8'))}\n"
        "Load it with `SentenceTransformer(path_or_hub_id, trust_remote_code=True)`: the folder ships the st-drama "
        "module code it needs.\n"
    )
    card_path.write_text(card + section, encoding="utf-8")


def _without_title(markdown: str) -> str:
    """The results table without its top-level heading (the card has its own)."""
    return "\n".join(line for line in markdown.splitlines() if not line.startswith("# ")).strip() + "\n"

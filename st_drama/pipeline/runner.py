"""The main job: an LLM -> (prune) -> (LLaRA adapt) -> augment a corpus -> train -> evaluate against baselines.

Each stage writes to its own folder under the output directory and records ``stage.json`` (its fingerprint, output,
wall and CPU time) when it finishes. A rerun skips every stage whose fingerprint (its config, its inputs'
fingerprints) is unchanged, reruns the others, and stages that were interrupted resume from their own checkpoints.
A stage's times are those of all its attempts: while it runs, ``stage.json`` holds the time spent so far (updated
every ``HEARTBEAT_SECONDS``, and on an exception or Ctrl-C), so a run killed outright loses at most that much of its
count.

Augmentation and adaptation read only the corpus (``corpus.jsonl``); the collection's queries and judgements, if
present, are used only by the final evaluation.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from st_drama.config_tools import as_dict
from st_drama.corpus import resolve_collection_path
from st_drama.runs import check_output_dir, content_fingerprint, fingerprint, read_json, write_json_atomically

from . import stages
from .preflight import has_judgements, preflight
from .presets import PipelineConfig

logger = logging.getLogger(__name__)

STAGE_RECORD = "stage.json"
# How often a running stage writes its time so far: at most this much goes uncounted when a run is killed outright.
HEARTBEAT_SECONDS = 30.0


@dataclass
class StageResult:
    name: str
    output: str
    seconds: float
    cpu_seconds: float | None
    skipped: bool
    fingerprint: str
    attempts: int = 1


def run_pipeline(
    corpus_dir: str | os.PathLike,
    output_dir: str | os.PathLike,
    config: PipelineConfig | None = None,
    *,
    skip_malformed: bool = False,
    show_progress: bool = True,
) -> dict[str, Any]:
    """Run every stage of ``config`` (default: the ``quick`` preset) on ``corpus_dir`` (a BEIR-layout folder or
    ``"cranfield"``) into ``output_dir``; returns what is written to ``output_dir/results.json``.

    Outputs: ``output_dir/model`` (the trained SentenceTransformer, with a model card carrying the recipe and the
    MTEB results), ``results.json`` and ``results.md``, and one folder per stage.

    Args:
        corpus_dir: A BEIR-layout folder (``corpus.jsonl``; ``queries.jsonl`` and ``qrels/test.tsv`` for the
            evaluation) or ``"cranfield"``.
        output_dir: The run folder; rerun with the same arguments to resume.
        config: What to run (see :mod:`st_drama.pipeline.presets`).
        skip_malformed: Skip and count malformed corpus rows instead of refusing the corpus.
        show_progress: Show progress bars.
    """
    config = config or PipelineConfig.from_preset("quick")
    corpus = resolve_collection_path(corpus_dir)
    output_dir = check_output_dir(output_dir)
    checked = preflight(corpus, config, skip_malformed)
    config = checked.config
    runner = _StageRunner(output_dir, _corpus_fingerprint(corpus))
    started = time.time()

    model = config.model
    if config.prune is not None:
        model = runner.run(
            "prune", config.prune, [model], lambda d: stages.prune_stage(model, corpus, d, config.prune, show_progress)
        )
    adapted = model
    if config.llara is not None:
        adapted = runner.run(
            "llara",
            config.llara,
            [model],
            lambda d: stages.llara_stage(model, corpus, d, config.llara, skip_malformed, show_progress),
        )
    data = runner.run(
        "augment",
        config.augment,
        [],
        lambda d: stages.augment_stage(corpus, d, config.augment, skip_malformed, show_progress),
    )
    final_model = runner.run(
        "train",
        config.train,
        [adapted, data],
        lambda d: stages.train_stage(adapted, data, d, output_dir / "model", config.train, show_progress),
    )
    evaluation_table = None
    if config.evaluate is not None and has_judgements(corpus):
        evaluate_config = stages.evaluation_config(config.evaluate, model, config.train)
        evaluation_dir = runner.run(
            "evaluate",
            evaluate_config,
            [final_model, model],
            lambda d: stages.evaluate_stage(
                final_model, corpus, d, shared_results_cache(), evaluate_config, skip_malformed, show_progress
            ),
        )
        evaluation_table = Path(evaluation_dir, "results.md").read_text(encoding="utf-8")
    elif config.evaluate is not None:
        logger.warning(f"{corpus} has no queries.jsonl and qrels/test.tsv: skipping the evaluation.")

    results = {
        "corpus": str(corpus),
        "preset": config.preset,
        "source_model": config.model,
        "stages": {name: _stage_summary(result) for name, result in runner.results.items()},
        "config": as_dict(config),
        "evaluation": read_json(Path(runner.results["evaluate"].output, "results.json"))
        if "evaluate" in runner.results
        else None,
        "wall_time_s": round(time.time() - started, 1),
    }
    _write_results(output_dir, results, evaluation_table)
    stages.describe_model(final_model, results, evaluation_table, checked.language)
    return results


class _StageRunner:
    """Runs a stage unless ``stage.json`` shows it finished with the same fingerprint."""

    def __init__(
        self, output_dir: Path, corpus_fingerprint: str, heartbeat_seconds: float = HEARTBEAT_SECONDS
    ) -> None:
        self.output_dir = output_dir
        self.corpus_fingerprint = corpus_fingerprint
        self.heartbeat_seconds = heartbeat_seconds
        self.results: dict[str, StageResult] = {}

    def run(self, name: str, config: Any, inputs: list[str], work: Callable[[Path], str]) -> str:
        stage_dir = self.output_dir / name
        key = {
            "stage": name,
            "config": as_dict(config),
            "inputs": [self._input_key(item) for item in inputs],
            "corpus": self.corpus_fingerprint,
        }
        stage_fingerprint = fingerprint(key)
        record = read_json(stage_dir / STAGE_RECORD)
        finished = record and record["fingerprint"] == stage_fingerprint and record["status"] == "done"
        if finished and Path(record["output"]).exists():
            logger.info(f"Stage {name}: done earlier ({record['seconds']:.0f} s), skipping.")
            self.results[name] = StageResult(
                name,
                record["output"],
                record["seconds"],
                record.get("cpu_seconds"),
                True,
                stage_fingerprint,
                record.get("attempts", 1),
            )
            return record["output"]
        interrupted = None
        if record and record["fingerprint"] != stage_fingerprint:
            # Checkpoints of other settings must not be resumed into this run.
            logger.info(f"Stage {name}: settings or inputs changed since it last ran; starting it afresh.")
            shutil.rmtree(stage_dir)
        elif record and record["status"] == "running":
            interrupted = record
            logger.info(f"Stage {name}: resuming the interrupted run ({record.get('seconds', 0):.0f} s spent before).")
        stage_dir.mkdir(parents=True, exist_ok=True)
        clock = _StageClock(stage_dir / STAGE_RECORD, stage_fingerprint, key["config"], interrupted)
        logger.info(f"Stage {name}: running.")
        with clock.ticking(self.heartbeat_seconds):
            output = work(stage_dir)
        seconds, cpu_seconds = clock.spent()
        record = {
            "status": "done",
            "fingerprint": stage_fingerprint,
            "output": str(output),
            "seconds": seconds,
            "cpu_seconds": cpu_seconds,
            "attempts": clock.attempts,
            "config": key["config"],
        }
        write_json_atomically(stage_dir / STAGE_RECORD, record)
        self.results[name] = StageResult(
            name, str(output), seconds, cpu_seconds, False, stage_fingerprint, clock.attempts
        )
        logger.info(f"Stage {name}: finished in {seconds:.0f} s -> {output}")
        return str(output)

    def _input_key(self, path_or_name: str) -> str:
        """A finished stage's output stands for that stage's fingerprint; anything else for itself."""
        for result in self.results.values():
            if result.output == str(path_or_name):
                return result.fingerprint
        return str(path_or_name)


class _StageClock:
    """A running stage's wall and CPU time, added to what its interrupted attempts spent, kept in ``stage.json``."""

    def __init__(
        self, record_path: Path, stage_fingerprint: str, config: dict[str, Any], interrupted: dict[str, Any] | None
    ) -> None:
        self.record_path = record_path
        self.stage_fingerprint = stage_fingerprint
        self.config = config
        before = interrupted or {}
        # Records written before times were kept while running lack them: their attempts count as zero.
        self.seconds_before = before.get("seconds", 0.0)
        self.cpu_seconds_before = before.get("cpu_seconds", 0.0)
        self.attempts = before.get("attempts", 1 if interrupted else 0) + 1
        self.started, self.cpu_started = time.time(), time.process_time()

    def spent(self) -> tuple[float, float]:
        """Wall and CPU seconds (CPU of every thread: the cost whatever else shares the machine) of all attempts."""
        return (
            round(self.seconds_before + time.time() - self.started, 1),
            round(self.cpu_seconds_before + time.process_time() - self.cpu_started, 1),
        )

    def write(self) -> None:
        seconds, cpu_seconds = self.spent()
        write_json_atomically(
            self.record_path,
            {
                "status": "running",
                "fingerprint": self.stage_fingerprint,
                "seconds": seconds,
                "cpu_seconds": cpu_seconds,
                "attempts": self.attempts,
                "config": self.config,
            },
        )

    @contextlib.contextmanager
    def ticking(self, every_seconds: float) -> Iterator[None]:
        """Write the time so far now, every ``every_seconds`` while the body runs, and when it raises."""
        self.write()
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(every_seconds):
                self.write()

        heartbeat = threading.Thread(target=beat, name="stage-clock", daemon=True)
        heartbeat.start()
        finished = False
        try:
            yield
            finished = True
        finally:
            stop.set()
            heartbeat.join()  # before the last write: two writers would share one temporary file
            if not finished:
                self.write()  # an error or Ctrl-C: the attempt's whole time counts when the stage resumes


def shared_results_cache() -> Path:
    """MTEB's result cache shared by every run on this machine (``$ST_DRAMA_HOME/mteb_cache``): a baseline's score on
    a collection (keyed by the baseline's and the collection's fingerprints) is computed once, not once per run."""
    from st_drama.default_llm import st_drama_home

    return st_drama_home() / "mteb_cache"


def _corpus_fingerprint(corpus: Path) -> str:
    """The corpus's content: a copied or re-extracted collection (new file times) keeps its finished stages."""
    return content_fingerprint(corpus, ["corpus.jsonl"])


def _stage_summary(result: StageResult) -> dict[str, Any]:
    return {
        "output": result.output,
        "seconds": result.seconds,
        "cpu_seconds": result.cpu_seconds,
        "attempts": result.attempts,
        "skipped": result.skipped,
    }


def _write_results(output_dir: Path, results: dict[str, Any], evaluation_table: str | None) -> None:
    write_json_atomically(output_dir / "results.json", results)
    (output_dir / "results.md").write_text(_results_markdown(results, evaluation_table), encoding="utf-8")


def _results_markdown(results: dict[str, Any], evaluation_table: str | None) -> str:
    lines = [f"# st-drama pipeline on `{results['corpus']}` (preset `{results['preset']}`)", ""]
    if evaluation_table:
        lines += [evaluation_table.strip(), ""]
    lines += ["| stage | wall time (s) | CPU time (s) | attempts | reused |", "|---|---|---|---|---|"]
    for name, stage in results["stages"].items():
        cpu = f"{stage['cpu_seconds']:.0f}" if stage.get("cpu_seconds") is not None else "-"
        reused = "yes" if stage["skipped"] else "no"
        lines.append(f"| {name} | {stage['seconds']:.0f} | {cpu} | {stage.get('attempts', 1)} | {reused} |")
    lines += ["", f"Total wall time of this run: {results['wall_time_s']:.0f} s."]
    return "\n".join(lines) + "\n"

"""Quality on every shared collection: a preset of the main job against a plain sentence-transformers recipe trained
for the same CPU time, next to BM25 and all-MiniLM-L6-v2 (each dense model also fused with BM25), all scored by the
same MTEB code (``st_drama.evaluation.evaluate``).

    .venv/bin/python benchmarks/quality.py runs/quality --preset quick
    .venv/bin/python benchmarks/quality.py runs/quality --preset full --collections cranfield,cisi --hybrid rrf:0.5

The plain recipe is what a user writes with sentence-transformers alone (no st-drama code): SmolLM2 with
bidirectional attention (``is_causal = False``) and mean pooling, ``MultipleNegativesRankingLoss`` on one sentence
cropped from each document (at least five words) paired with its document, batches of 32 at a constant learning rate
of 2e-5, 128 tokens, bf16 where the preset uses it; it trains until it has spent the CPU time the preset's training
stage spent (``time.process_time``, all threads: a measure that does not move with what else runs on the machine).

Per collection (in ``../shared/data``, or ``$ST_DRAMA_SHARED_DATA``) the preset runs as ``st-drama pipeline`` into
``OUT/<preset>/<collection>``, the plain recipe into ``OUT/<preset>/<collection>/plain``; a collection whose
``quality.json`` exists is not run again, and an interrupted one resumes (the pipeline from its stages, the plain
recipe from its latest checkpoint with the CPU time it had spent). A resumed training's seconds count its killed
attempts too: the pipeline keeps each stage's time while it runs (work lost since the last checkpoint counts, so the
plain recipe's budget errs in its favour). ``--records DIR`` also keeps each finished
collection's record as ``DIR/<preset>/<collection>.json`` and reads it back before running: a suite longer than one
machine's life (``full``: about 90 minutes a collection on one thread) goes on where the committed records end, on a
fresh machine; a kept record is reused as it is (delete it to run that collection again with other options).
``--no-plain`` leaves the plain recipe out and ``--baselines bm25`` leaves MiniLM out (its scores do not depend on the
preset), which halves a ``full`` collection's time; a later run without ``--no-plain`` adds the plain recipe to such a
record, trained for the CPU time the record's training spent, without training the preset again. A CPU second buys
different work on different machines, native bf16 or not (and beside other work on the same one), so each record's
``machine`` keeps ``reference_step_cpu_seconds``, the CPU time of one fixed training step of the plain recipe's model
there, and a budget carried to another machine is converted by the two machines' reference steps (as is a plain run
resumed on another machine); a record without the reference, or from a machine that differs in native bf16 (the
recipes' precision), is refused before any work.
Prints, per collection and on the mean, nDCG@10 / Recall@100 of the preset (ours), the plain recipe, BM25, MiniLM and
the hybrids, and ours - plain, ours fused - BM25 and the plain model fused - BM25 in nDCG@10 with a 95% bootstrap
interval over queries (records keep each run's per-query nDCG@10; on the mean each collection weighs as one); writes
the table to ``OUT/<preset>/quality.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import statistics
import time
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from st_drama.pipeline import PipelineConfig

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("ST_DRAMA_SHARED_DATA", REPO.parent / "shared" / "data"))
COLLECTIONS = (
    "cranfield",
    "cisi",
    "dbpedia_entity_subset5k",
    "arcd_ar_subset",
    "trecdl21_passage_pool",
    "xquadr_hi",
    "xquadr_de",
    "stackfaq_en",
)
METRICS = ("ndcg_at_10", "recall_at_100")
PLAIN = {"batch_size": 32, "learning_rate": 2e-5, "max_seq_length": 128, "min_words": 5}
# The plain recipe checkpoints this often, with the CPU time spent so far, so that a killed run resumes with the
# rest of its budget (an hour's budget would otherwise start over).
PLAIN_SAVE_STEPS = 20
CPU_SPENT_FILE = "cpu_spent.json"
# The workload that prices a CPU second on a machine: forward and backward passes of the plain recipe's model on
# fixed token ids (``pairs`` queries and documents of ``tokens`` tokens), timed ``repeats`` times after a warm-up.
REFERENCE_STEP = {"pairs": 4, "tokens": 128, "repeats": 3}


def collection_path(name: str) -> Path | str:
    """A shared collection's folder; Cranfield is the copy bundled with the package."""
    return SHARED_DATA / name if name != "cranfield" else "cranfield"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("output", type=Path)
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--collections", default=",".join(COLLECTIONS))
    parser.add_argument("--hybrid", default="rsf:0.3", help="Fusions with BM25 to report (METHOD:DENSE_WEIGHT,...).")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--baselines", default="bm25,minilm", help="Baselines to score next to the preset.")
    parser.add_argument(
        "--plain",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="Train and score the plain recipe at the preset's CPU time (--no-plain: leave it out).",
    )
    parser.add_argument("--records", type=Path, help="Keep and reuse finished collections' records in this folder.")
    args = parser.parse_args()
    baselines = tuple(name for name in args.baselines.split(",") if name)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    # Each collection's run folder and kept record (None without --records).
    places = {
        name: (args.output / args.preset / name, args.records / args.preset / f"{name}.json" if args.records else None)
        for name in args.collections.split(",")
    }
    # This machine's speed relative to each finished record's that lacks the plain recipe (checked before any work).
    speeds = records_to_extend(places) if args.plain else {}
    rows = {}
    for name, (folder, kept) in places.items():
        unchanged_kept = kept is not None and kept.is_file()
        if unchanged_kept:
            record = json.loads(kept.read_text(encoding="utf-8"))
        else:
            record = collection_quality(name, folder, args.preset, args.hybrid, args.seed, baselines, args.plain)
        if args.plain and "plain" not in record["scores"]:
            # A record made with --no-plain: the plain recipe is added at the time its preset's training spent,
            # in this machine's CPU seconds.
            record = with_plain_recipe(record, folder, args.hybrid, args.seed, speeds[name])
            unchanged_kept = False
        if kept and not unchanged_kept:
            kept.parent.mkdir(parents=True, exist_ok=True)
            kept.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        rows[name] = record
        print(f"{name}: done", flush=True)
    table = quality_table(rows, args.preset)
    # Every collection may come from kept records, so the output folder may not exist yet.
    table_path = args.output / args.preset / "quality.md"
    table_path.parent.mkdir(parents=True, exist_ok=True)
    table_path.write_text(table, encoding="utf-8")
    print(table)


def collection_quality(
    name: str,
    folder: Path,
    preset: str,
    hybrid: str,
    seed: int,
    baselines: tuple[str, ...] = ("bm25", "minilm"),
    plain_recipe: bool = True,
) -> dict[str, Any]:
    """The preset's and the plain recipe's scores on one collection, with the baselines' (cached in quality.json)."""
    record = folder / "quality.json"
    if record.is_file():
        return json.loads(record.read_text(encoding="utf-8"))
    from st_drama.pipeline import PipelineConfig, run_pipeline

    collection = collection_path(name)
    config = PipelineConfig.from_preset(
        preset, evaluate={"baselines": baselines, "hybrids": hybrid, "per_query": True}
    )
    started = time.time()
    ours = run_pipeline(collection, folder, config, show_progress=False)
    train = ours["stages"]["train"]
    scores = {
        key: model["tasks"][task] for key, model in ours["evaluation"]["models"].items() for task in model["tasks"]
    }
    result = {
        "collection": name,
        "preset": preset,
        **scores_record(scores),
        "train_seconds": {"ours": train["seconds"]},
        "train_cpu_seconds": {"ours": train["cpu_seconds"]},
        "machine": machine_record(),
    }
    if plain_recipe:
        plain_run, plain_scores = plain_quality(name, collection, folder / "plain", config, train["cpu_seconds"], seed)
        result = with_plain_scores(result, plain_run, plain_scores)
    result["wall_time_s"] = round(time.time() - started, 1)
    record.write_text(json.dumps(result, indent=2), encoding="utf-8")
    return result


def machine_kind() -> dict[str, Any]:
    """What sets the recipes' precision here: every bf16 default (training and encoding) follows native bf16, so
    records from machines that differ in it are not comparable at any budget. The CPU model and torch's thread count
    are kept for the reader: the reference step, measured with the same threads, converts CPU seconds between them."""
    import torch

    from st_drama.precision import cpu_has_native_bf16

    return {
        "cpu_native_bf16": cpu_has_native_bf16(),
        "cpu_model": cpu_model_name(),
        "torch_threads": torch.get_num_threads(),
    }


def machine_record() -> dict[str, Any]:
    """The machine's kind and the CPU time of its reference step, kept in each record."""
    return machine_kind() | {"reference_step_cpu_seconds": reference_step_cpu_seconds()}


def cpu_model_name() -> str:
    """The CPU's model name from ``/proc/cpuinfo`` ("unknown" where it cannot be read)."""
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "unknown"
    names = (line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name"))
    return next(names, "unknown")


@lru_cache(maxsize=1)
def reference_step_cpu_seconds() -> float:
    """CPU seconds (``time.process_time``, all threads) of one forward and backward pass of the plain recipe's
    model (bidirectional SmolLM2, mean pooling, in-batch softmax) on fixed token ids, in the precision its training
    uses here; the median of ``REFERENCE_STEP["repeats"]`` passes after a warm-up pass. Measured once per process."""
    import torch
    import torch.nn.functional as F
    from transformers import AutoModel

    from st_drama import default_llm_path
    from st_drama.precision import resolve_bf16

    pairs, tokens = REFERENCE_STEP["pairs"], REFERENCE_STEP["tokens"]
    model = AutoModel.from_pretrained(default_llm_path())
    model.config.is_causal = False
    model.train()
    generator = torch.Generator().manual_seed(0)
    input_ids = torch.randint(100, model.config.vocab_size, (2 * pairs, tokens), generator=generator)
    timings = []
    for _ in range(REFERENCE_STEP["repeats"] + 1):
        started = time.process_time()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=resolve_bf16(None, "cpu")):
            pooled = model(input_ids=input_ids).last_hidden_state.mean(dim=1).float()
        queries, documents = F.normalize(pooled[:pairs], dim=-1), F.normalize(pooled[pairs:], dim=-1)
        F.cross_entropy(20.0 * queries @ documents.T, torch.arange(pairs)).backward()
        model.zero_grad(set_to_none=True)
        timings.append(time.process_time() - started)
    return round(statistics.median(timings[1:]), 3)


def records_to_extend(places: dict[str, tuple[Path, Path | None]]) -> dict[str, float]:
    """Before any collection runs, this machine's speed relative to the machine of every finished record without
    the plain recipe (the kept record, else the run folder's ``quality.json``; ``places`` pairs the two by
    collection name), by collection name; a record that cannot budget it here stops the suite now rather than at its
    fifth collection hours in."""
    speeds = {}
    for name, (folder, kept) in places.items():
        source = kept if kept and kept.is_file() else folder / "quality.json"
        if source.is_file():
            record = json.loads(source.read_text(encoding="utf-8"))
            if "plain" not in record["scores"]:
                speeds[name] = relative_cpu_speed(record, source)
    return speeds


def relative_cpu_speed(record: dict[str, Any], source: Path) -> float:
    """This machine's speed relative to the record's: its machine's reference step over this one's (0.5 where this
    machine is twice as slow, so the record's CPU seconds buy half as much here). Refuses, before any training, a
    record from a machine of another precision or one whose speed is not recorded: its CPU seconds would buy the
    plain recipe more or fewer steps than equal time would."""
    here = machine_kind()
    there = record.get("machine")
    if there is None:
        raise SystemExit(
            f"{source}: no 'machine' field, so the kind of CPU its {record['preset']} training ran on is unknown and "
            f"its train_cpu_seconds cannot be a fair budget here ({here}); run the preset again on this machine "
            "(delete the record)."
        )
    if there.get("cpu_native_bf16") != here["cpu_native_bf16"]:
        raise SystemExit(
            f"{source}: 'machine' is {there}, this machine is {here}: the recipes would train in another precision "
            f"than the preset did ({record['train_cpu_seconds']['ours']} CPU s there). Run it on a machine of the "
            "record's kind."
        )
    if "reference_step_cpu_seconds" not in there:
        raise SystemExit(
            f"{source}: 'machine' has no reference_step_cpu_seconds, so what its {record['preset']} training's "
            f"{record['train_cpu_seconds']['ours']} CPU s would buy here is unknown (CPUs with the same bf16 "
            "support differ in speed); run the preset again with the plain recipe (delete the record)."
        )
    return there["reference_step_cpu_seconds"] / reference_step_cpu_seconds()


def with_plain_recipe(
    result: dict[str, Any], folder: Path, hybrid: str, seed: int, relative_speed: float
) -> dict[str, Any]:
    """A record made without the plain recipe, with the plain recipe trained for the time the record's training
    spent (``train_cpu_seconds.ours`` over this machine's ``relative_speed``) and scored like it (resumable in
    ``folder/plain``)."""
    from st_drama.pipeline import PipelineConfig

    name = result["collection"]
    collection = collection_path(name)
    config = PipelineConfig.from_preset(
        result["preset"], evaluate={"baselines": (), "hybrids": hybrid, "per_query": True}
    )
    cpu_seconds = result["train_cpu_seconds"]["ours"] / relative_speed
    plain_run, plain_scores = plain_quality(name, collection, folder / "plain", config, cpu_seconds, seed)
    result = with_plain_scores(result, plain_run, plain_scores)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "quality.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    return result


def with_plain_scores(
    result: dict[str, Any], plain_run: dict[str, Any], plain_scores: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """``result`` with the plain recipe's scores (and per-query nDCG@10), training seconds and steps."""
    plain_per_query = {key: value["per_query"] for key, value in plain_scores.items() if value.get("per_query")}
    return {
        **result,
        "scores": result["scores"]
        | {key: {metric: value[metric] for metric in METRICS} for key, value in plain_scores.items()},
        "per_query_ndcg_at_10": result.get("per_query_ndcg_at_10", {}) | plain_per_query,
        "train_seconds": {**result["train_seconds"], "plain": plain_run["seconds"]},
        "train_cpu_seconds": {**result["train_cpu_seconds"], "plain": plain_run["cpu_seconds"]},
        "plain_steps": plain_run["steps"],
        "plain_budget_cpu_seconds": plain_run["budget_cpu_seconds"],
        "plain_machine": plain_run.get("machine"),
    }


def plain_quality(
    name: str, collection: Path | str, plain_dir: Path, config: PipelineConfig, cpu_seconds: float, seed: int
) -> tuple[dict[str, Any], dict[str, dict[str, float]]]:
    """The plain recipe trained for ``cpu_seconds`` (or resumed) and scored like the preset, with its fusions."""
    from st_drama.evaluation import evaluate
    from st_drama.pipeline.runner import shared_results_cache
    from st_drama.precision import resolve_bf16

    plain_model = plain_dir / "model"
    if not (plain_model / "modules.json").is_file():
        plain_run = train_plain_recipe(collection, plain_model, cpu_seconds, resolve_bf16(config.train.bf16), seed)
        (plain_dir / "training.json").write_text(json.dumps(plain_run, indent=2), encoding="utf-8")
    plain_run = json.loads((plain_dir / "training.json").read_text(encoding="utf-8"))
    plain = evaluate(
        str(plain_model),
        [collection],
        config.evaluate,
        output_dir=plain_dir / "evaluation",
        baselines=(),
        model_name=f"benchmarks/plain-{name}",
        cache_dir=shared_results_cache(),
        show_progress=False,
    )
    task = plain.task_names[0]
    scores = {
        run.key.replace("model", "plain", 1): {
            "ndcg_at_10": run.scores[task].ndcg_at_10,
            "recall_at_100": run.scores[task].recall_at_100,
            "per_query": per_query_ndcg(run.scores[task].per_query),
        }
        for run in plain.runs
    }
    return plain_run, scores


def scores_record(task_scores: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A record's ``scores`` (``{run: {metric: score}}``) and ``per_query_ndcg_at_10`` (``{run: {query: nDCG@10}}``,
    None where not kept) from each run's scores on one collection (a ``TaskScores`` as a dict)."""
    return {
        "scores": {key: {metric: value[metric] for metric in METRICS} for key, value in task_scores.items()},
        "per_query_ndcg_at_10": {key: per_query_ndcg(value.get("per_query")) for key, value in task_scores.items()},
    }


def per_query_ndcg(per_query: dict[str, dict[str, dict[str, float]]] | None) -> dict[str, float] | None:
    """Each query's nDCG@10 from an evaluation's per-query scores (a BEIR folder has the one subset "default"),
    kept in the record for paired comparisons."""
    from st_drama.evaluation.per_query import one_metric

    if per_query is None:
        return None
    if set(per_query) != {"default"}:
        raise ValueError(f"Expected a BEIR folder's single subset 'default', got subsets {sorted(per_query)}.")
    return one_metric(per_query["default"])


def cropped_pairs(collection: Path | str, seed: int) -> tuple[list[str], list[str]]:
    """One random sentence (at least ``min_words`` words) of each document, paired with the whole document."""
    path = Path(collection) / "corpus.jsonl"
    if not path.is_file():  # the bundled Cranfield
        path = REPO / "st_drama" / "data" / "cranfield" / "corpus.jsonl"
    rng = random.Random(seed)
    anchors, positives = [], []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            text = f"{row.get('title') or ''} {row['text']}".strip()
            sentences = [
                s for s in re.split(r"(?<=[.!?\u061f\u0964])\s+|\n+", text) if len(s.split()) >= PLAIN["min_words"]
            ]
            if sentences:
                anchors.append(rng.choice(sentences))
                positives.append(text)
    return anchors, positives


def train_plain_recipe(collection: Path | str, output: Path, cpu_seconds: float, bf16: bool, seed: int) -> dict:
    """The plain recipe (sentence-transformers only), trained until it has spent ``cpu_seconds`` of CPU time."""
    import torch
    from datasets import Dataset
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from sentence_transformers.base.sampler import BatchSamplers
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    from transformers import TrainerCallback

    from st_drama import default_llm_path
    from st_drama.runs import latest_checkpoint, read_json, write_json_atomically

    reference = reference_step_cpu_seconds()  # measured before the training, which it would slow down
    checkpoint_dir = output.parent / "checkpoints"
    checkpoint = latest_checkpoint(checkpoint_dir)
    before = spent_here(read_json(Path(checkpoint) / CPU_SPENT_FILE)) if checkpoint else None
    if checkpoint and before is None:
        checkpoint = None  # written without its CPU time or its machine's speed: its share is unknown, start over

    class CPUBudget(TrainerCallback):
        """Stops the run once it has spent ``cpu_seconds``, counting what a resumed run spent before."""

        def __init__(self, spent_before: float, wall_before: float) -> None:
            self.spent_before, self.wall_before = spent_before, wall_before

        def on_train_begin(self, args, state, control, **kwargs):
            # The training's time only, as before checkpoints existed: loading the model is not part of the budget.
            self.started, self.wall_started = time.process_time(), time.time()

        def spent(self) -> tuple[float, float]:
            return (
                self.spent_before + time.process_time() - self.started,
                self.wall_before + time.time() - self.wall_started,
            )

        def on_step_end(self, args, state, control, **kwargs):
            if self.spent()[0] >= cpu_seconds:
                control.should_training_stop = True

        def on_save(self, args, state, control, **kwargs):
            cpu, wall = self.spent()
            folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            spent = {"cpu_seconds": cpu, "seconds": wall, "reference_step_cpu_seconds": reference}
            write_json_atomically(folder / CPU_SPENT_FILE, spent)

    budget = CPUBudget(before["cpu_seconds"] if before else 0.0, before["seconds"] if before else 0.0)

    anchors, positives = cropped_pairs(collection, seed)
    # Plain text in, no chat template (SmolLM2's tokenizer has one); attention made bidirectional by the config.
    transformer = Transformer(
        default_llm_path(),
        max_seq_length=PLAIN["max_seq_length"],
        modality_config={"text": {"method": "forward", "method_output_name": "last_hidden_state"}},
        module_output_name="token_embeddings",
    )
    transformer.auto_model.config.is_causal = False
    model = SentenceTransformer(modules=[transformer, Pooling(transformer.get_embedding_dimension(), "mean")])
    args = SentenceTransformerTrainingArguments(
        output_dir=str(checkpoint_dir),
        per_device_train_batch_size=PLAIN["batch_size"],
        learning_rate=PLAIN["learning_rate"],
        lr_scheduler_type="constant",
        num_train_epochs=1000,  # the CPU budget ends the run
        batch_sampler=BatchSamplers.NO_DUPLICATES,
        bf16=bf16,
        use_cpu=not torch.cuda.is_available(),
        save_strategy="steps",
        save_steps=PLAIN_SAVE_STEPS,
        save_total_limit=1,
        report_to=[],
        seed=seed,
        disable_tqdm=True,
    )
    dataset = Dataset.from_dict({"anchor": anchors, "positive": positives})
    trainer = SentenceTransformerTrainer(
        model=model,
        args=args,
        train_dataset=dataset,
        loss=MultipleNegativesRankingLoss(model),
        callbacks=[budget],
    )
    result = trainer.train(resume_from_checkpoint=checkpoint)
    model.save(str(output))
    cpu, wall = budget.spent()
    return {
        "rows": len(dataset),
        "steps": result.global_step,
        "seconds": round(wall, 1),
        "cpu_seconds": round(cpu, 1),
        "budget_cpu_seconds": round(cpu_seconds, 1),
        "resumed_from": checkpoint,
        "machine": machine_record(),
    }


def spent_here(spent: dict[str, float] | None) -> dict[str, float] | None:
    """A checkpoint's spent CPU seconds in this machine's CPU seconds (scaled by the two machines' reference steps
    where it was written on another machine) and its wall seconds as they were; None where it lacks either."""
    if spent is None or "reference_step_cpu_seconds" not in spent:
        return None
    worth_here = reference_step_cpu_seconds() / spent["reference_step_cpu_seconds"]
    return {"cpu_seconds": spent["cpu_seconds"] * worth_here, "seconds": spent["seconds"]}


def quality_table(rows: dict[str, dict[str, Any]], preset: str) -> str:
    """nDCG@10 / Recall@100 per collection and on the mean; ours - plain, ours fused - BM25 and plain fused - BM25
    (whether the fusion's gain is the trained model's or BM25's) in nDCG@10, with a 95% bootstrap interval over
    queries where the records keep per-query scores (on the mean: over the collections' queries, each collection
    weighing as one)."""
    columns = sorted({key for row in rows.values() for key in row["scores"]}, key=_column_order)
    comparisons = [("model", "plain", "ours - plain")]
    for model in ("model", "plain"):
        fused = next((column for column in columns if column.startswith(f"{model}+bm25:")), None)
        comparisons += [(fused, "bm25", f"{fused} - bm25")] if fused else []
    lines = [
        f"nDCG@10 / Recall@100 (MTEB); `{preset}` preset (ours) against the plain sentence-transformers recipe at "
        "equal CPU time; differences in nDCG@10 with their 95% interval over queries [low, high] where kept",
        "",
        "| collection | " + " | ".join(columns + [label for _, _, label in comparisons]) + " | train s ours / plain |",
        "|---|" + "---|" * (len(columns) + len(comparisons) + 1),
    ]
    means = {column: [] for column in columns}
    for name, row in rows.items():
        cells = []
        for column in columns:
            score = row["scores"].get(column)
            cells.append(f"{score['ndcg_at_10']:.3f} / {score['recall_at_100']:.3f}" if score else "-")
            if score:
                means[column].append(score)
        cells += [difference_cell([row], a, b) for a, b, _ in comparisons]
        seconds = row["train_seconds"]
        plain_seconds = f"{seconds['plain']:.0f}" if "plain" in seconds else "-"
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {seconds['ours']:.0f} / {plain_seconds} |")
    mean_cells = []
    for column in columns:
        values = means[column]
        ndcg = sum(score["ndcg_at_10"] for score in values) / len(values)
        recall = sum(score["recall_at_100"] for score in values) / len(values)
        mean_cells.append(f"**{ndcg:.3f} / {recall:.3f}**" if len(values) == len(rows) else "-")
    mean_cells += [difference_cell(list(rows.values()), a, b) for a, b, _ in comparisons]
    lines.append("| mean | " + " | ".join(mean_cells) + " | |")
    if all("plain" in row["scores"] for row in rows.values()):
        ours = sum(row["scores"]["model"]["ndcg_at_10"] for row in rows.values()) / len(rows)
        plain = sum(row["scores"]["plain"]["ndcg_at_10"] for row in rows.values()) / len(rows)
        lines += ["", f"ratio ours / plain (mean nDCG@10): {ours / plain:.2f}"]
    return "\n".join(lines) + "\n"


def difference_cell(rows: list[dict[str, Any]], a: str, b: str) -> str:
    """The mean over ``rows`` of nDCG@10 ``a - b``, with its 95% interval when every row keeps both runs' per-query
    scores; "-" when a row lacks ``a`` or ``b`` (a mean over some collections is not the suite's mean)."""
    from st_drama.evaluation.per_query import paired_difference

    if any(a not in row["scores"] or b not in row["scores"] for row in rows):
        return "-"
    per_query = [row.get("per_query_ndcg_at_10", {}) for row in rows]
    if all(kept.get(a) and kept.get(b) for kept in per_query):
        return paired_difference([(kept[a], kept[b]) for kept in per_query]).text()
    gaps = [row["scores"][a]["ndcg_at_10"] - row["scores"][b]["ndcg_at_10"] for row in rows]
    return f"{sum(gaps) / len(gaps):+.3f}"


def _column_order(key: str) -> tuple[int, str]:
    order = ["model", "plain", "bm25", "minilm"]
    base = key.split("+", 1)[0]
    return (order.index(base) if base in order else len(order), key)


if __name__ == "__main__":
    main()

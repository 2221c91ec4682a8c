"""Does the LLM's query likelihood teach the `quick` model through distillation? The rows one `quick` training reads
(its steps times its batch size, drawn from the reference run's mined rows), each scored by
:class:`st_drama.augment.rerank.QueryLikelihoodReranker` for its positive and hard negative, then trained twice with
the `quick` recipe on exactly those rows: InfoNCE alone (the control) and InfoNCE plus the KL term towards the
likelihood's posterior (``train.distill_weight``). Both are evaluated like the suite (the model and its default fusion
with BM25). Per collection in ``OUT/<collection>`` (scored rows, both runs, ``result.json``; a finished collection is
skipped when rerun); the table goes to ``OUT/distillation.md``.

    OMP_NUM_THREADS=1 python experiments/likelihood_distillation.py runs/levers/ql-distill \\
        --reference runs/quality/quick --collections xquadr_de,arcd_ar_subset
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from quality import COLLECTIONS, collection_path
from suite_lever import FUSED, reevaluated_scores


def scored_rows(mined: Path, rows: int, seed: int, out: Path):
    """``rows`` of the mined rows (a seeded draw), with the likelihood's scores for the positive and negative_1."""
    from datasets import load_from_disk

    from st_drama import default_llm_path
    from st_drama.augment.llm import TransformersChatLM
    from st_drama.augment.rerank import QueryLikelihoodReranker
    from st_drama.training.data import load_training_data

    if (out / "state.json").is_file():
        return load_from_disk(str(out))
    mined_rows = load_training_data(mined, num_negatives=1)
    # A corpus with fewer rows than one training reads: all of them (the training then passes over them again).
    drawn = mined_rows.shuffle(seed=seed).select(range(min(rows, len(mined_rows))))
    started = time.perf_counter()
    reranker = QueryLikelihoodReranker(TransformersChatLM(default_llm_path(), batch_size=16))
    scores = reranker.scores(drawn["query"], [[row["positive"], row["negative_1"]] for row in drawn])
    del reranker  # the LLM's memory is needed by the training that follows
    gc.collect()
    print(f"scored {2 * len(drawn)} pairs in {time.perf_counter() - started:.0f} s", flush=True)
    scored = drawn.add_column("scores", scores)
    scored.save_to_disk(str(out))
    return scored


def teacher_sharpness(scores: list[list[float]]) -> dict[str, float]:
    """How often the teacher prefers the positive, and how often its posterior (temperature 1) gives the positive
    more than 0.99: a teacher that is certain of the label adds little to InfoNCE."""
    margins = [positive - negative for positive, negative in scores]
    return {
        "prefers_positive": round(sum(margin > 0 for margin in margins) / len(margins), 4),
        "positive_above_0.99": round(sum(margin > math.log(99) for margin in margins) / len(margins), 4),
        "median_margin_nats": round(statistics.median(margins), 1),
    }


def run_collection(name: str, folder: Path, reference: Path, weight: float, temperature: float) -> dict:
    from st_drama.evaluation.hybrid import FusionConfig
    from st_drama.pipeline import PipelineConfig
    from st_drama.training.contrastive import train

    record_path = folder / "result.json"
    if record_path.is_file():
        return json.loads(record_path.read_text(encoding="utf-8"))
    config = PipelineConfig.from_preset("quick", evaluate={"baselines": ("bm25",), "hybrids": (FusionConfig(),)})
    collection = collection_path(name)
    rows = config.train.steps * config.train.batch_size
    data = scored_rows(reference / name / "augment" / "data", rows, config.train.seed, folder / "scored")
    record: dict = {
        "collection": name,
        "rows": len(data),
        "distill_weight": weight,
        "teacher_temperature": temperature,
        "teacher": teacher_sharpness(data["scores"]),
        "arms": {},
    }
    # The control is InfoNCE alone at the config's defaults, so every temperature shares one control run.
    arms = (
        ("control", config.train),
        ("distilled", dataclasses.replace(config.train, distill_weight=weight, teacher_temperature=temperature)),
    )
    for arm, train_config in arms:
        started = time.perf_counter()
        model = train(config.model, data, folder / arm, train_config, resume=True, show_progress=False)
        train_seconds = time.perf_counter() - started
        scores = reevaluated_scores(Path(model), collection, folder / arm / "evaluation", config)
        record["arms"][arm] = {"scores": scores, "train_seconds": round(train_seconds, 1)}
        print(f"{name} {arm}: {json.dumps(scores)}", flush=True)
    record_path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return record


def table(records: list[dict]) -> str:
    columns = [("control", "model"), ("distilled", "model"), ("control", FUSED), ("distilled", FUSED)]
    lines = [
        "nDCG@10 (Recall@100) on the same rows, InfoNCE alone (control) and with the likelihood's KL term:",
        "",
        "| collection | control | distilled | distilled - control | control + BM25 | distilled + BM25 |",
        "|---|---|---|---|---|---|",
    ]

    def cell(record: dict, arm: str, key: str) -> str:
        scores = record["arms"][arm]["scores"][key]
        return f"{scores['ndcg_at_10']:.3f} ({scores['recall_at_100']:.3f})"

    def ndcg(record: dict, arm: str, key: str) -> float:
        return record["arms"][arm]["scores"][key]["ndcg_at_10"]

    for record in records:
        difference = ndcg(record, "distilled", "model") - ndcg(record, "control", "model")
        control, distilled, control_fused, distilled_fused = (cell(record, *column) for column in columns)
        lines.append(
            f"| {record['collection']} | {control} | {distilled} | {difference:+.3f} | {control_fused} | "
            f"{distilled_fused} |"
        )
    means = [sum(ndcg(record, *column) for record in records) / len(records) for column in columns]
    lines.append(
        f"| **mean** | **{means[0]:.3f}** | **{means[1]:.3f}** | **{means[1] - means[0]:+.3f}** | "
        f"**{means[2]:.3f}** | **{means[3]:.3f}** |"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("output", type=Path)
    parser.add_argument("--reference", type=Path, required=True, help="benchmarks/quality.py's `quick` folder.")
    parser.add_argument("--collections", default=",".join(COLLECTIONS))
    parser.add_argument("--distill-weight", type=float, default=1.0)
    parser.add_argument(
        "--teacher-temperature", type=float, default=1.0, help="1: the likelihood's posterior over the candidates."
    )
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    names = args.collections.split(",")
    missing = [name for name in names if not (args.reference / name / "augment" / "data").is_dir()]
    if missing:
        raise SystemExit(f"{args.reference}: no mined rows for {missing}; run benchmarks/quality.py for them first.")
    records = [
        run_collection(name, args.output / name, args.reference, args.distill_weight, args.teacher_temperature)
        for name in names
    ]
    text = table(records)
    (args.output / "distillation.md").write_text(text + "\n", encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()

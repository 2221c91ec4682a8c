"""One lever on the whole development suite: a preset with some settings changed, run as ``st-drama pipeline`` on
every shared collection, compared per collection and on the mean with the preset as ``benchmarks/quality.py``
recorded it.

    python experiments/suite_lever.py runs/levers/minilm-miner --set augment.retriever=minilm \\
        --reference runs/quality/quick
    python experiments/suite_lever.py runs/levers/full-crops4 --preset full --set augment.crop.per_document=4 \\
        --reference experiments/records/quality/full

``--set STAGE.FIELD[.FIELD]=VALUE`` changes one setting (VALUE is read as JSON when it parses, else as text;
e.g. ``augment.retriever=minilm``, the installed all-MiniLM-L6-v2). Only the model and its default fusion with BM25
are evaluated (BM25's scores come from the shared results cache). A lever that changes only ``evaluate.*`` settings
re-evaluates the reference's trained model instead of training again. Per collection the run goes to
``OUT/<collection>`` and resumes from its stage records; the table goes to ``OUT/lever.md``.

The lever keeps each query's nDCG@10, so where the reference's record keeps them too (records made since
``benchmarks/quality.py`` evaluates per query), "lever - reference" and "lever + BM25 - BM25" come with a 95%
bootstrap interval over the queries (on the mean, each collection weighing as one); with an older reference the
table gives the plain difference.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from quality import COLLECTIONS, METRICS, collection_path, difference_cell, scores_record

from st_drama.evaluation.hybrid import FusionConfig

# The model fused with BM25 by the default fusion, as the presets report it.
FUSED = f"model+bm25:{FusionConfig().label}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("output", type=Path)
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--set", dest="settings", action="append", default=[], metavar="STAGE.FIELD=VALUE")
    parser.add_argument("--collections", default=",".join(COLLECTIONS))
    parser.add_argument(
        "--reference",
        type=Path,
        required=True,
        help="The preset's benchmarks/quality.py folder (OUT/<preset>) or its kept records (RECORDS/<preset>).",
    )
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    changes = parsed_changes(args.settings)
    # Check every reference first: a missing one found after hours of training would waste the run.
    references = {name: reference_record(args.reference, name) for name in args.collections.split(",")}
    if set(changes) == {"evaluate"}:  # re-evaluates the reference's models: kept records hold no model
        for name in references:
            if not (args.reference / name / "model" / "modules.json").is_file():
                raise SystemExit(f"{args.reference / name / 'model'}: no trained model to re-evaluate.")
    rows = {name: lever_record(name, args.output / name, args.preset, changes, args.reference) for name in references}
    table = comparison_table(rows, references, args.settings)
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "lever.md").write_text(table, encoding="utf-8")
    print(table)


def parsed_changes(settings: list[str]) -> dict[str, Any]:
    """``["augment.mining.num_negatives=2"]`` -> ``{"augment": {"mining": {"num_negatives": 2}}}``."""
    changes: dict[str, Any] = {}
    for setting in settings:
        path, separator, text = setting.partition("=")
        if not separator or "." not in path:
            raise SystemExit(f"--set {setting!r}: expected STAGE.FIELD=VALUE")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
        *parents, leaf = path.split(".")
        node = changes
        for parent in parents:
            node = node.setdefault(parent, {})
        node[leaf] = value
    return changes


def reference_record(reference: Path, name: str) -> dict[str, Any]:
    """The collection's record (``scores``, and ``per_query_ndcg_at_10`` when kept) in a benchmark's output folder,
    or in the records it keeps (``--records``)."""
    kept = reference / f"{name}.json"
    record = kept if kept.is_file() else reference / name / "quality.json"
    if not record.is_file():
        raise SystemExit(f"{record}: no reference; run benchmarks/quality.py for that collection first.")
    return json.loads(record.read_text(encoding="utf-8"))


def lever_record(name: str, folder: Path, preset: str, changes: dict[str, Any], reference: Path) -> dict[str, Any]:
    """The lever's scores on one collection, with each query's nDCG@10 (the shape of a ``benchmarks/quality.py``
    record). A lever of the evaluation alone re-evaluates the reference's model."""
    from st_drama.pipeline import PipelineConfig, run_pipeline

    collection = collection_path(name)
    evaluation = {"baselines": ("bm25",), "hybrids": (FusionConfig(),), "per_query": True}
    config = PipelineConfig.from_preset(
        preset, **{**changes, "evaluate": {**changes.get("evaluate", {}), **evaluation}}
    )
    if set(changes) == {"evaluate"}:
        record = reevaluated_record(reference / name / "model", collection, folder, config)
    else:
        result = run_pipeline(collection, folder, config, show_progress=False)
        models = result["evaluation"]["models"]
        record = scores_record({key: scores for key, model in models.items() for scores in model["tasks"].values()})
    print(f"{name}: done", flush=True)
    return record


def reevaluated_scores(model: Path, collection: Path | str, folder: Path, config: Any) -> dict[str, dict]:
    """nDCG@10 and Recall@100 of ``model`` and the runs ``config.evaluate`` adds, ``{run: {metric: score}}``."""
    return reevaluated_record(model, collection, folder, config)["scores"]


def reevaluated_record(model: Path, collection: Path | str, folder: Path, config: Any) -> dict[str, Any]:
    from st_drama.evaluation import evaluate

    # Its own result cache: MTEB's cache knows the model by name and revision, not by the evaluation settings.
    results = evaluate(str(model), [collection], config.evaluate, output_dir=folder, show_progress=False)
    task = results.task_names[0]
    return scores_record({run.key: dataclasses.asdict(run.scores[task]) for run in results.runs})


def comparison_table(rows: dict[str, dict], references: dict[str, dict], settings: list[str]) -> str:
    """nDCG@10 / Recall@100 of the lever and the reference, per collection and on the mean; the lever minus the
    reference and the lever fused minus BM25 in nDCG@10, with their 95% interval over queries where both records
    keep per-query scores."""
    lines = [
        f"Lever: {' '.join(settings) or '(none)'}",
        "",
        "| collection | lever | reference | lever - reference | lever + BM25 | reference + BM25 | BM25 "
        "| lever + BM25 - BM25 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    paired = {name: paired_record(scores, references[name]) for name, scores in rows.items()}
    for name, row in paired.items():
        lines.append(f"| {name} | " + " | ".join(comparison_cells([row], pair)) + " |")
    mean_cells = comparison_cells(list(paired.values()), lambda values: f"**{pair(values)}**")
    lines.append("| **mean** | " + " | ".join(mean_cells) + " |")
    return "\n".join(lines) + "\n"


# The runs of a comparison table: the lever's record's key, or the reference's, for each column.
_LEVER_RUNS = {"lever": "model", "lever_fused": FUSED}
_REFERENCE_RUNS = {"reference": "model", "reference_fused": FUSED, "bm25": "bm25"}


def paired_record(lever: dict[str, Any], reference: dict[str, Any]) -> dict[str, Any]:
    """The lever's and the reference's runs on one collection in one record, named by their table column."""
    record: dict[str, Any] = {"scores": {}, "per_query_ndcg_at_10": {}}
    for source, runs in ((lever, _LEVER_RUNS), (reference, _REFERENCE_RUNS)):
        for column, key in runs.items():
            record["scores"][column] = source["scores"][key]
            record["per_query_ndcg_at_10"][column] = source.get("per_query_ndcg_at_10", {}).get(key)
    return record


def comparison_cells(rows: list[dict[str, Any]], scores_text: Callable[[dict[str, float]], str]) -> list[str]:
    """One table row's cells over ``rows`` (one collection, or every collection for the mean)."""

    def text(column: str) -> str:
        values = [row["scores"][column] for row in rows]
        return scores_text({metric: sum(value[metric] for value in values) / len(values) for metric in METRICS})

    return [
        text("lever"),
        text("reference"),
        difference_cell(rows, "lever", "reference"),
        text("lever_fused"),
        text("reference_fused"),
        text("bm25"),
        difference_cell(rows, "lever_fused", "bm25"),
    ]


def pair(scores: dict[str, float]) -> str:
    return f"{scores['ndcg_at_10']:.3f} / {scores['recall_at_100']:.3f}"


if __name__ == "__main__":
    main()

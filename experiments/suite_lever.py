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
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from quality import COLLECTIONS, METRICS, collection_path

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
    references = {
        name: reference_scores(reference_record(args.reference, name)) for name in args.collections.split(",")
    }
    if set(changes) == {"evaluate"}:  # re-evaluates the reference's models: kept records hold no model
        for name in references:
            if not (args.reference / name / "model" / "modules.json").is_file():
                raise SystemExit(f"{args.reference / name / 'model'}: no trained model to re-evaluate.")
    rows = {name: lever_scores(name, args.output / name, args.preset, changes, args.reference) for name in references}
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


def reference_record(reference: Path, name: str) -> Path:
    """The collection's record in a benchmark's output folder, or in the records it keeps (``--records``)."""
    kept = reference / f"{name}.json"
    return kept if kept.is_file() else reference / name / "quality.json"


def reference_scores(record: Path) -> dict[str, dict[str, float]]:
    if not record.is_file():
        raise SystemExit(f"{record}: no reference; run benchmarks/quality.py for that collection first.")
    return json.loads(record.read_text(encoding="utf-8"))["scores"]


def lever_scores(
    name: str, folder: Path, preset: str, changes: dict[str, Any], reference: Path
) -> dict[str, dict[str, float]]:
    """The lever's scores on one collection. A lever of the evaluation alone re-evaluates the reference's model."""
    from st_drama.pipeline import PipelineConfig, run_pipeline

    collection = collection_path(name)
    evaluation = {"baselines": ("bm25",), "hybrids": (FusionConfig(),)}
    config = PipelineConfig.from_preset(
        preset, **{**changes, "evaluate": {**changes.get("evaluate", {}), **evaluation}}
    )
    if set(changes) == {"evaluate"}:
        scores = reevaluated_scores(reference / name / "model", collection, folder, config)
    else:
        result = run_pipeline(collection, folder, config, show_progress=False)
        scores = {
            key: model_scores
            for key, model in result["evaluation"]["models"].items()
            for model_scores in model["tasks"].values()
        }
    print(f"{name}: done", flush=True)
    return {key: {metric: value[metric] for metric in METRICS} for key, value in scores.items()}


def reevaluated_scores(model: Path, collection: Path | str, folder: Path, config: Any) -> dict[str, dict]:
    from st_drama.evaluation import evaluate

    # Its own result cache: MTEB's cache knows the model by name and revision, not by the evaluation settings.
    results = evaluate(str(model), [collection], config.evaluate, output_dir=folder, show_progress=False)
    task = results.task_names[0]
    return {
        run.key: {"ndcg_at_10": run.scores[task].ndcg_at_10, "recall_at_100": run.scores[task].recall_at_100}
        for run in results.runs
    }


def comparison_table(rows: dict[str, dict], references: dict[str, dict], settings: list[str]) -> str:
    """nDCG@10 / Recall@100 of the lever and the reference, per collection and on the mean."""
    lines = [
        f"Lever: {' '.join(settings) or '(none)'}",
        "",
        "| collection | lever | reference | lever - reference | lever + BM25 | reference + BM25 | BM25 |",
        "|---|---|---|---|---|---|---|",
    ]
    columns = {key: [] for key in ("lever", "reference", "lever_fused", "reference_fused", "bm25")}
    for name, scores in rows.items():
        reference = references[name]
        values = {
            "lever": scores["model"],
            "reference": reference["model"],
            "lever_fused": scores[FUSED],
            "reference_fused": reference[FUSED],
            "bm25": reference["bm25"],
        }
        for key, value in values.items():
            columns[key].append(value)
        difference = values["lever"]["ndcg_at_10"] - values["reference"]["ndcg_at_10"]
        cells = [pair(values[key]) for key in ("lever", "reference")] + [f"{difference:+.3f}"]
        cells += [pair(values[key]) for key in ("lever_fused", "reference_fused", "bm25")]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    means = {key: {m: sum(v[m] for v in values) / len(values) for m in values[0]} for key, values in columns.items()}
    difference = means["lever"]["ndcg_at_10"] - means["reference"]["ndcg_at_10"]
    cells = [pair(means[key]) for key in ("lever", "reference")] + [f"{difference:+.3f}"]
    cells += [pair(means[key]) for key in ("lever_fused", "reference_fused", "bm25")]
    lines.append("| **mean** | " + " | ".join(f"**{cell}**" for cell in cells) + " |")
    return "\n".join(lines) + "\n"


def pair(scores: dict[str, float]) -> str:
    return f"{scores['ndcg_at_10']:.3f} / {scores['recall_at_100']:.3f}"


if __name__ == "__main__":
    main()

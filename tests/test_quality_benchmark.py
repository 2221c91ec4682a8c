"""benchmarks/quality.py's guard on equal time: a kept record's CPU seconds budget the plain recipe only on a machine
of the precision its preset trained in, scaled by the two machines' reference steps."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from st_drama.precision import cpu_has_native_bf16

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "quality.py"


def load_quality_benchmark():
    spec = importlib.util.spec_from_file_location("quality_benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def kept_record(machine: dict[str, Any] | None) -> dict:
    record = {
        "collection": "cisi",
        "preset": "full",
        "scores": {"model": {"ndcg_at_10": 0.4, "recall_at_100": 0.5}},
        "train_seconds": {"ours": 100.0},
        "train_cpu_seconds": {"ours": 99.0},
    }
    return record if machine is None else record | {"machine": machine}


def test_a_record_from_this_machine_budgets_its_cpu_seconds_and_one_from_a_slower_machine_fewer():
    quality = load_quality_benchmark()
    here = quality.machine_record()
    assert here["cpu_native_bf16"] == cpu_has_native_bf16()
    assert here["reference_step_cpu_seconds"] > 0
    assert quality.relative_cpu_speed(kept_record(here), Path("cisi.json")) == 1.0
    # A record whose machine took twice as long for the same reference step: this machine is twice as fast, so the
    # plain recipe gets half the record's CPU seconds here.
    slower = here | {"reference_step_cpu_seconds": 2 * here["reference_step_cpu_seconds"]}
    assert quality.relative_cpu_speed(kept_record(slower), Path("cisi.json")) == 2.0
    # Another thread count is no refusal: the reference step, measured with the record's threads, converts its
    # CPU seconds (which count every thread) like another CPU's.
    assert here["torch_threads"] == torch.get_num_threads()
    other_threads = here | {"torch_threads": here["torch_threads"] + 1}
    assert quality.relative_cpu_speed(kept_record(other_threads), Path("cisi.json")) == 1.0


# No machine; another precision; this precision without the reference step (the records kept before it existed).
REFUSED_MACHINES = [None, {"cpu_native_bf16": not cpu_has_native_bf16()}, {"cpu_native_bf16": cpu_has_native_bf16()}]


@pytest.mark.parametrize("machine", REFUSED_MACHINES)
def test_a_record_of_another_precision_or_an_unknown_speed_is_refused(machine):
    quality = load_quality_benchmark()
    with pytest.raises(SystemExit, match=r"records/full/cisi\.json: .*machine"):
        quality.relative_cpu_speed(kept_record(machine), Path("records/full/cisi.json"))


def test_a_checkpoint_from_another_machine_counts_its_cpu_seconds_at_this_machines_speed():
    quality = load_quality_benchmark()
    reference = quality.reference_step_cpu_seconds()
    assert quality.spent_here({"cpu_seconds": 100.0, "seconds": 120.0}) is None  # its speed unknown: start over
    same = {"cpu_seconds": 100.0, "seconds": 120.0, "reference_step_cpu_seconds": reference}
    assert quality.spent_here(same) == {"cpu_seconds": 100.0, "seconds": 120.0}
    # 100 CPU s on a machine twice as fast are 200 of this machine's; wall seconds stay as they passed.
    faster = same | {"reference_step_cpu_seconds": reference / 2}
    assert quality.spent_here(faster) == pytest.approx({"cpu_seconds": 200.0, "seconds": 120.0})


@pytest.mark.parametrize("machine", REFUSED_MACHINES[1:])
def test_the_benchmark_refuses_before_any_work(tmp_path, machine):
    # Cranfield, first in the suite, has no record: the refusal must come before its pipeline starts.
    records = tmp_path / "records"
    kept = records / "full" / "cisi.json"
    kept.parent.mkdir(parents=True)
    refused = kept_record(machine)
    kept.write_text(json.dumps(refused), encoding="utf-8")
    output = tmp_path / "out"
    command = [sys.executable, str(SCRIPT), str(output), "--preset", "full", "--baselines", "bm25"]
    finished = subprocess.run(
        [*command, "--records", str(records), "--collections", "cranfield,cisi"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert finished.returncode != 0
    assert f"{kept}: 'machine'" in finished.stderr
    assert not output.exists()
    assert json.loads(kept.read_text(encoding="utf-8")) == refused


def test_a_table_from_kept_records_alone_is_written(tmp_path):
    records = tmp_path / "records"
    kept = records / "full" / "cisi.json"
    kept.parent.mkdir(parents=True)
    scores = {"ndcg_at_10": 0.4, "recall_at_100": 0.5}
    record = kept_record({"cpu_native_bf16": cpu_has_native_bf16()})
    record["scores"] |= {"model+bm25:rsf-0.3": scores, "bm25": scores}
    kept.write_text(json.dumps(record), encoding="utf-8")
    output = tmp_path / "out"
    command = [sys.executable, str(SCRIPT), str(output), "--preset", "full", "--no-plain", "--baselines", "bm25"]
    finished = subprocess.run(
        [*command, "--records", str(records), "--collections", "cisi"], capture_output=True, text=True, timeout=120
    )
    assert finished.returncode == 0, finished.stderr
    table = (output / "full" / "quality.md").read_text(encoding="utf-8")
    assert "| cisi | 0.400 / 0.500 |" in table


def suite_row(
    name: str, ours: list[float], plain: list[float], fused: list[float], bm25: list[float], plain_fused: list[float]
) -> dict:
    runs = {"model": ours, "plain": plain, "bm25": bm25}
    runs |= {"model+bm25:rsf-0.3": fused, "plain+bm25:rsf-0.3": plain_fused}
    return {
        "collection": name,
        "scores": {
            key: {"ndcg_at_10": sum(values) / len(values), "recall_at_100": 0.5} for key, values in runs.items()
        },
        "per_query_ndcg_at_10": {
            key: {f"q{index}": value for index, value in enumerate(values)} for key, values in runs.items()
        },
        "train_seconds": {"ours": 100.0, "plain": 101.0},
    }


def test_the_table_gives_paired_intervals_per_collection_and_on_the_suite_mean():
    quality = load_quality_benchmark()
    # Cranfield: ours beats plain by 0.2 on every query; fused beats BM25 by exactly 0.1 on each query.
    # CISI: fused is level with BM25 (+0.1 on one query, -0.1 on the other).
    # The plain model fused with BM25: level with BM25 on Cranfield, 0.2 below it on CISI's both queries.
    rows = {
        "cranfield": suite_row(
            "cranfield", [0.5, 0.6, 0.7], [0.3, 0.4, 0.5], [0.4, 0.5, 0.6], [0.3, 0.4, 0.5], [0.3, 0.4, 0.5]
        ),
        "cisi": suite_row("cisi", [0.4, 0.4], [0.2, 0.2], [0.6, 0.4], [0.5, 0.5], [0.3, 0.3]),
    }
    lines = quality.quality_table(rows, "quick").splitlines()
    header = next(line for line in lines if line.startswith("| collection"))
    assert header.endswith(
        "| ours - plain | model+bm25:rsf-0.3 - bm25 | plain+bm25:rsf-0.3 - bm25 | train s ours / plain |"
    )
    cranfield = next(line for line in lines if line.startswith("| cranfield"))
    assert "| +0.200 [+0.200, +0.200] | +0.100 [+0.100, +0.100] | +0.000 [+0.000, +0.000] |" in cranfield
    cisi = next(line for line in lines if line.startswith("| cisi"))
    # Two queries, +0.1 and -0.1: the bootstrap's interval runs from -0.1 to +0.1 around 0.
    assert "| +0.200 [+0.200, +0.200] | +0.000 [-0.100, +0.100] | -0.200 [-0.200, -0.200] |" in cisi
    mean = next(line for line in lines if line.startswith("| mean"))
    # The suite's mean weighs each collection as one: (+0.1 + 0.0) / 2 and (0.0 - 0.2) / 2.
    assert "| +0.200 [+0.200, +0.200] | +0.050 [+0.000, +0.100] | -0.100 [-0.100, -0.100] |" in mean


def test_the_table_falls_back_to_the_mean_difference_for_records_without_per_query_scores():
    quality = load_quality_benchmark()
    row = suite_row("cisi", [0.4, 0.4], [0.2, 0.2], [0.6, 0.4], [0.5, 0.5], [0.3, 0.3])
    del row["per_query_ndcg_at_10"]
    cisi = next(line for line in quality.quality_table({"cisi": row}, "full").splitlines() if "| cisi" in line)
    assert "| +0.200 | +0.000 | -0.200 |" in cisi and "[" not in cisi

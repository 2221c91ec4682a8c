from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import datasets
import pytest
from conftest import write_cranfield_subset
from sentence_transformers import SentenceTransformer

from st_drama.corpus import load_corpus, load_qrels, load_queries
from st_drama.pipeline import PipelineConfig, run_pipeline
from st_drama.pipeline.runner import _StageRunner
from st_drama.training.config import TrainConfig


def tiny_settings(model: Path, train_steps: int = 3, **more_changes: dict) -> PipelineConfig:
    return PipelineConfig.from_preset(
        "quick",
        model=str(model),
        augment={"mining": {"num_negatives": 2}},
        train={"steps": train_steps, "batch_size": 4, "num_negatives": 2, "max_seq_length": 64},
        evaluate={"baselines": ["bm25", "backbone"], "max_seq_length": 48, "bf16": False},
        **more_changes,
    )


@pytest.fixture
def subset_dir(tmp_path) -> Path:
    return write_cranfield_subset(tmp_path / "cranfield_subset")


def stage_records(output: Path) -> dict[str, dict]:
    return {
        stage.name: json.loads((stage / "stage.json").read_text()) for stage in output.iterdir() if stage.is_dir()
        if (stage / "stage.json").is_file()
    }  # fmt: skip


def ndcg_at_10(model: SentenceTransformer, folder: Path) -> float:
    """trec_eval's nDCG@10 (linear gain) of ``model`` on a BEIR folder, computed here without MTEB."""
    documents = load_corpus(folder)
    queries = load_queries(folder)
    qrels = load_qrels(folder)
    judged = [query_id for query_id in queries if query_id in qrels]
    document_vectors = model.encode_document([document.full_text for document in documents], convert_to_tensor=True)
    query_vectors = model.encode_query([queries[query_id] for query_id in judged], convert_to_tensor=True)
    scores = model.similarity(query_vectors, document_vectors)
    total = 0.0
    for row, query_id in enumerate(judged):
        ranking = scores[row].argsort(descending=True)[:10].tolist()
        gains = [qrels[query_id].get(documents[index].doc_id, 0) for index in ranking]
        ideal = sorted(qrels[query_id].values(), reverse=True)[:10]
        dcg = sum(gain / math.log2(rank + 2) for rank, gain in enumerate(gains))
        total += dcg / sum(gain / math.log2(rank + 2) for rank, gain in enumerate(ideal))
    return total / len(judged)


def test_pipeline_runs_every_stage_then_skips_them_on_rerun(tiny_llama_dir, subset_dir, tmp_path):
    output = tmp_path / "run"
    first = run_pipeline(subset_dir, output, tiny_settings(tiny_llama_dir), show_progress=False)
    assert list(first["stages"]) == ["augment", "train", "evaluate"]
    assert not any(stage["skipped"] for stage in first["stages"].values())
    records = stage_records(output)
    assert {name: record["status"] for name, record in records.items()} == dict.fromkeys(first["stages"], "done")

    evaluation = first["evaluation"]
    # The preset reports each dense model fused with BM25 next to it.
    assert set(evaluation["models"]) == {"model", "model+bm25:rsf-0.3", "bm25", "backbone", "backbone+bm25:rsf-0.3"}
    assert evaluation["models"]["model"]["label"] == "run-trained"
    model_dir = output / "model"
    model = SentenceTransformer(str(model_dir), trust_remote_code=True)
    # The reported score is the saved model's: computed again here, without MTEB, it comes out the same.
    reported = evaluation["models"]["model"]["tasks"]["cranfield_subset"]["ndcg_at_10"]
    assert reported == pytest.approx(ndcg_at_10(model, subset_dir), abs=1e-4)
    assert model.encode_query(["lift of a wing"]).shape == (1, 64)
    # The saved model encodes as it was evaluated (48 tokens), not as it was trained (64).
    assert model.max_seq_length == 48
    card = (model_dir / "README.md").read_text()
    assert "## Training" in card and "## Evaluation" in card and "run-trained" in card
    assert "`cranfield_subset` alone" in card and "not zero-shot" in card and "language:\n- en" in card
    # MTEB's ModelMeta says so too: trained on data from the evaluated collection's own corpus.
    meta = json.loads((output / "evaluate" / "model_meta.json").read_text())
    assert meta["training_datasets"] == ["cranfield_subset"] and meta["embed_dim"] == 64  # no size under 64
    table = (output / "results.md").read_text()
    assert "| BM25 (`baselines/bm25s`)" in table and "| stage | wall time (s) | CPU time (s) | attempts |" in table
    assert all(stage["attempts"] == 1 for stage in first["stages"].values())
    assert json.loads((output / "results.json").read_text())["stages"].keys() == first["stages"].keys()
    rows = datasets.load_dataset(str(output / "augment" / "data"), split="train")
    # The preset cuts each crop out of its own document: a positive holds its query verbatim only as its title.
    titles = {document.title.strip() for document in load_corpus(subset_dir)}
    verbatim = [row["query"] for row in rows if " ".join(row["query"].split()) in " ".join(row["positive"].split())]
    assert len(verbatim) < len(rows) / 4 and set(verbatim) <= titles

    # A copy of the collection elsewhere (new path, new file times, same bytes) is the same corpus.
    copied = shutil.copytree(subset_dir, tmp_path / "copied" / subset_dir.name, copy_function=shutil.copy)
    second = run_pipeline(copied, output, tiny_settings(tiny_llama_dir), show_progress=False)
    assert all(stage["skipped"] for stage in second["stages"].values())
    assert second["evaluation"] == evaluation
    assert (model_dir / "README.md").read_text().count("## Evaluation") == 1


def test_changed_training_settings_rerun_only_training_and_evaluation(tiny_llama_dir, subset_dir, tmp_path):
    output = tmp_path / "run"
    run_pipeline(subset_dir, output, tiny_settings(tiny_llama_dir, train_steps=2), show_progress=False)
    augmented_before = sorted(path.name for path in (output / "augment" / "data").iterdir())

    changed = run_pipeline(subset_dir, output, tiny_settings(tiny_llama_dir, train_steps=3), show_progress=False)
    assert {name: stage["skipped"] for name, stage in changed["stages"].items()} == {
        "augment": True,
        "train": False,
        "evaluate": False,
    }
    assert sorted(path.name for path in (output / "augment" / "data").iterdir()) == augmented_before
    run_info = json.loads((output / "model" / "st_drama_run.json").read_text())
    assert run_info["steps"] == 3  # a fresh run of the new settings, not a resume of the old checkpoints


def test_corpus_without_judgements_trains_and_skips_evaluation(tiny_llama_dir, subset_dir, tmp_path):
    (subset_dir / "queries.jsonl").unlink()
    result = run_pipeline(subset_dir, tmp_path / "run", tiny_settings(tiny_llama_dir, 2), show_progress=False)
    assert list(result["stages"]) == ["augment", "train"] and result["evaluation"] is None
    assert (tmp_path / "run" / "model" / "modules.json").is_file()


def test_llara_stage_adapts_then_trains_in_llara_framing(tiny_llama_dir, subset_dir, tmp_path):
    with_llara = tiny_settings(tiny_llama_dir, 2, llara={"steps": 2, "batch_size": 2, "chunk_tokens": 32})
    assert with_llara.train.style == "llara"  # turning the llara stage on trains in its framing
    result = run_pipeline(subset_dir, tmp_path / "run", with_llara, show_progress=False)
    assert list(result["stages"]) == ["llara", "augment", "train", "evaluate"]
    run_info = json.loads((tmp_path / "run" / "model" / "st_drama_run.json").read_text())
    assert run_info["source_model"] == result["stages"]["llara"]["output"] and run_info["config"]["style"] == "llara"
    model = SentenceTransformer(str(tmp_path / "run" / "model"), trust_remote_code=True)
    assert model[0].prompt_style == "llara"


def test_missing_corpus_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no corpus\.jsonl"):
        run_pipeline(tmp_path, tmp_path / "run")


def test_a_stage_killed_outright_counts_the_killed_attempts_time_when_it_resumes(tmp_path):
    # A stage that runs until it is killed with SIGKILL (as the out-of-memory killer does: no handler runs), its
    # time kept by a heartbeat every 0.2 s.
    script = textwrap.dedent(
        f"""
        import time
        from pathlib import Path
        from st_drama.pipeline.runner import _StageRunner
        from st_drama.training.config import TrainConfig
        runner = _StageRunner(Path({str(tmp_path)!r}), "corpus", heartbeat_seconds=0.2)
        runner.run("train", TrainConfig(steps=5), [], lambda stage_dir: time.sleep(600))
        """
    )
    process = subprocess.Popen([sys.executable, "-c", script])
    record_path = tmp_path / "train" / "stage.json"
    deadline = time.time() + 120
    while ((json.loads(record_path.read_text()) if record_path.is_file() else {}).get("seconds") or 0) < 1.5:
        assert process.poll() is None and time.time() < deadline, "the stage never recorded 1.5 s of running"
        time.sleep(0.1)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    killed = json.loads(record_path.read_text())
    assert killed["status"] == "running" and killed["attempts"] == 1

    runner = _StageRunner(tmp_path, "corpus")
    runner.run("train", TrainConfig(steps=5), [], lambda stage_dir: str(stage_dir))
    resumed = runner.results["train"]
    assert resumed.attempts == 2 and not resumed.skipped
    # The killed attempt's time up to its last heartbeat, plus the resumed attempt's (well under a second).
    assert killed["seconds"] <= resumed.seconds < killed["seconds"] + 5
    assert json.loads(record_path.read_text())["seconds"] == resumed.seconds


def test_a_stage_stopped_by_an_error_counts_its_whole_attempt_and_changed_settings_start_the_count_afresh(tmp_path):
    def fail_after_a_second(stage_dir: Path) -> str:
        time.sleep(1.0)
        raise KeyboardInterrupt  # Ctrl-C, long before the first heartbeat

    with pytest.raises(KeyboardInterrupt):
        _StageRunner(tmp_path, "corpus").run("augment", TrainConfig(steps=1), [], fail_after_a_second)
    stopped = json.loads((tmp_path / "augment" / "stage.json").read_text())
    assert stopped["status"] == "running" and stopped["seconds"] >= 1.0

    runner = _StageRunner(tmp_path, "corpus")
    runner.run("augment", TrainConfig(steps=1), [], lambda stage_dir: str(stage_dir))
    assert runner.results["augment"].attempts == 2 and runner.results["augment"].seconds >= 1.0

    with pytest.raises(KeyboardInterrupt):
        _StageRunner(tmp_path, "corpus").run("augment", TrainConfig(steps=2), [], fail_after_a_second)
    runner.run("augment", TrainConfig(steps=3), [], lambda stage_dir: str(stage_dir))  # other settings: a new stage
    assert runner.results["augment"].attempts == 1 and runner.results["augment"].seconds < 1.0

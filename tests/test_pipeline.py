from __future__ import annotations

import json
from pathlib import Path

import datasets
import pytest
from conftest import BUNDLED_CRANFIELD
from sentence_transformers import SentenceTransformer

from st_drama.cli import main, make_parser
from st_drama.commands.pipeline import stage_overrides
from st_drama.corpus import load_corpus
from st_drama.pipeline import PRESETS, STAGES, PipelineSettings, run_pipeline

SUBSET_DOCUMENTS = 150


def write_cranfield_subset(folder: Path, documents: int = SUBSET_DOCUMENTS) -> Path:
    """The first ``documents`` Cranfield documents and the queries judged against them: a real collection small
    enough for a tiny model to go through every stage in seconds."""
    (folder / "qrels").mkdir(parents=True)
    kept_ids: set[str] = set()
    with (
        open(BUNDLED_CRANFIELD / "corpus.jsonl", encoding="utf-8") as source,
        open(folder / "corpus.jsonl", "w", encoding="utf-8") as target,
    ):
        for line in source:
            row = json.loads(line)
            if row["text"].strip():
                kept_ids.add(row["_id"])
                target.write(line)
            if len(kept_ids) == documents:
                break
    qrels_lines = (BUNDLED_CRANFIELD / "qrels" / "test.tsv").read_text(encoding="utf-8").splitlines()
    judged = [line for line in qrels_lines[1:] if line.split("\t")[1] in kept_ids]
    (folder / "qrels" / "test.tsv").write_text("\n".join([qrels_lines[0], *judged]) + "\n", encoding="utf-8")
    judged_queries = {line.split("\t")[0] for line in judged}
    with (
        open(BUNDLED_CRANFIELD / "queries.jsonl", encoding="utf-8") as source,
        open(folder / "queries.jsonl", "w", encoding="utf-8") as target,
    ):
        target.writelines(line for line in source if json.loads(line)["_id"] in judged_queries)
    return folder


def tiny_settings(model: Path, train_steps: int = 3, **more_overrides: dict) -> PipelineSettings:
    return PipelineSettings.from_preset(
        "quick",
        str(model),
        {
            "augment": {"negatives": 2},
            "train": {"steps": train_steps, "batch_size": 4, "max_negatives": 2, "max_seq_length": 64},
            "evaluate": {"baselines": ["bm25", "backbone"], "max_seq_length": 48},
            **more_overrides,
        },
    )


@pytest.fixture
def subset_dir(tmp_path) -> Path:
    return write_cranfield_subset(tmp_path / "cranfield_subset")


def stage_records(output: Path) -> dict[str, dict]:
    return {
        stage.name: json.loads((stage / "stage.json").read_text()) for stage in output.iterdir() if stage.is_dir()
        if (stage / "stage.json").is_file()
    }  # fmt: skip


def test_pipeline_runs_every_stage_then_skips_them_on_rerun(tiny_llama_dir, subset_dir, tmp_path):
    output = tmp_path / "run"
    first = run_pipeline(subset_dir, output, tiny_settings(tiny_llama_dir), show_progress=False)
    assert list(first["stages"]) == ["augment", "train", "evaluate"]
    assert not any(stage["skipped"] for stage in first["stages"].values())
    records = stage_records(output)
    assert {name: record["status"] for name, record in records.items()} == dict.fromkeys(first["stages"], "done")

    evaluation = first["evaluation"]
    assert set(evaluation["models"]) == {"model", "bm25", "backbone"}
    assert evaluation["models"]["model"]["label"] == "run-trained"
    trained_ndcg = evaluation["models"]["model"]["tasks"]["cranfield_subset"]["ndcg_at_10"]
    assert 0.0 <= trained_ndcg <= 1.0

    model_dir = output / "model"
    model = SentenceTransformer(str(model_dir), trust_remote_code=True)
    assert model.encode_query(["lift of a wing"]).shape == (1, 64)
    # The saved model encodes as it was evaluated (48 tokens), not as it was trained (64).
    assert model.max_seq_length == 48
    card = (model_dir / "README.md").read_text()
    assert "## st-drama recipe and evaluation" in card and "run-trained" in card
    table = (output / "results.md").read_text()
    assert "| BM25 (`baselines/bm25s`)" not in table  # the pipeline table shows labels
    assert "| BM25 |" in table and "| stage | wall time (s) | reused |" in table
    assert json.loads((output / "results.json").read_text())["stages"].keys() == first["stages"].keys()
    rows = datasets.load_dataset(str(output / "augment" / "data"), split="train")
    # The preset cuts each crop out of its own document: a positive holds its query verbatim only as its title.
    titles = {document.title.strip() for document in load_corpus(subset_dir)}
    verbatim = [row["query"] for row in rows if " ".join(row["query"].split()) in " ".join(row["positive"].split())]
    assert len(verbatim) < len(rows) / 4 and set(verbatim) <= titles

    second = run_pipeline(subset_dir, output, tiny_settings(tiny_llama_dir), show_progress=False)
    assert all(stage["skipped"] for stage in second["stages"].values())
    assert second["evaluation"] == evaluation
    assert (model_dir / "README.md").read_text().count("## st-drama recipe and evaluation") == 1


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
    result = run_pipeline(subset_dir, tmp_path / "run", with_llara, show_progress=False)
    assert list(result["stages"]) == ["llara", "augment", "train", "evaluate"]
    run_info = json.loads((tmp_path / "run" / "model" / "st_drama_run.json").read_text())
    assert run_info["source_model"] == result["stages"]["llara"]["output"] and run_info["style"] == "llara"
    model = SentenceTransformer(str(tmp_path / "run" / "model"), trust_remote_code=True)
    assert model[0].prompt_style == "llara"


def test_llara_stage_defaults_and_style_conflicts():
    assert PipelineSettings.from_preset("quick", overrides={"llara": {}}).stages["llara"]["steps"] > 0
    with pytest.raises(ValueError, match="cannot follow the llara stage"):
        PipelineSettings.from_preset("gpu", overrides={"train": {"style": "drama"}})
    with pytest.raises(ValueError, match=r"train\.style must be"):
        PipelineSettings.from_preset("quick", overrides={"train": {"style": "colbert"}})


def test_full_preset_is_the_quick_recipe_trained_longer_then_interpolated_back():
    quick = PipelineSettings.from_preset("quick").stages
    full = PipelineSettings.from_preset("full").stages
    assert {stage: full[stage] for stage in STAGES if stage != "train"} == {
        stage: quick[stage] for stage in STAGES if stage != "train"
    }
    assert {key: value for key, value in full["train"].items() if key not in ("steps", "wise_alpha")} == {
        key: value for key, value in quick["train"].items() if key != "steps"
    }
    assert full["train"]["steps"] > quick["train"]["steps"] and 0 < full["train"]["wise_alpha"] < 1
    assert "wise_alpha" not in PRESETS["quick"]["train"]  # building "full" from "quick" left "quick" as it was
    assert make_parser().parse_args(["pipeline", "corpus", "out", "--full"]).preset == "full"
    gpu = PipelineSettings.from_preset(make_parser().parse_args(["pipeline", "c", "o", "--preset", "gpu"]).preset)
    assert gpu.stages["llara"] is not None and "synthetic" in gpu.stages["augment"]["sources"]


def test_missing_corpus_and_unknown_settings_are_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no corpus\.jsonl"):
        run_pipeline(tmp_path, tmp_path / "run")
    with pytest.raises(ValueError, match="Unknown preset 'fast'"):
        PipelineSettings.from_preset("fast")
    with pytest.raises(ValueError, match="Unknown stage 'distill'"):
        PipelineSettings.from_preset("quick", overrides={"distill": {}})
    with pytest.raises(ValueError, match="cannot be turned off"):
        PipelineSettings.from_preset("quick", overrides={"train": None})
    with pytest.raises(ValueError, match=r"augment sources .* got \['crop', 'titles'\]"):
        PipelineSettings.from_preset("quick", overrides={"augment": {"sources": ["crop", "titles"]}})
    with pytest.raises(ValueError, match=r"wise_alpha .* got 0"):
        PipelineSettings.from_preset("quick", overrides={"train": {"wise_alpha": 0}})
    with pytest.raises(ValueError, match="per_document is a number of crops per document, at least 1, got 0"):
        PipelineSettings.from_preset("quick", overrides={"augment": {"crop": {"per_document": 0}}})
    with pytest.raises(ValueError, match=r"augment.negative_ranks must be \[low, high\] .* got \[30\]"):
        PipelineSettings.from_preset("quick", overrides={"augment": {"negative_ranks": [30]}})
    with pytest.raises(ValueError, match=r"augment.negative_ranks must be \[low, high\] .* got 30"):
        PipelineSettings.from_preset("quick", overrides={"augment": {"negative_ranks": 30}})
    with pytest.raises(ValueError, match=r"negative_ranks must be 1-based and ordered .* got \(50, 30\)"):
        PipelineSettings.from_preset("quick", overrides={"augment": {"negative_ranks": [50, 30]}})


def test_pipeline_command_prints_the_results(tiny_llama_dir, subset_dir, tmp_path, capsys):
    output = tmp_path / "run"
    arguments = ["pipeline", str(subset_dir), str(output), "--model", str(tiny_llama_dir), "--train-steps", "2",
                 "--wise-alpha", "0.8", "--crops-per-doc", "2", "--negative-ranks", "2-5"]  # fmt: skip
    code = main([*arguments, "--no-progress"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "# st-drama pipeline on" in printed and "| all-MiniLM-L6-v2 |" in printed
    assert (output / "model" / "modules.json").is_file()
    assert json.loads((output / "model" / "st_drama_run.json").read_text())["wise_alpha"] == 0.8
    augment_config = json.loads((output / "augment" / "stage.json").read_text())["config"]
    assert augment_config["crop"] == {"context_removal": 1.0, "per_document": 2}
    generator_recipe = json.loads((output / "augment" / "data" / ".augment" / "config.json").read_text())
    assert generator_recipe["mining"]["negative_ranks"] == [2, 5] and generator_recipe["mining"]["num_negatives"] == 1


def test_command_line_stage_options_become_overrides():
    def overrides(*options: str) -> dict:
        return stage_overrides(make_parser().parse_args(["pipeline", "corpus", "out", *options]))

    assert overrides() == {}
    assert overrides("--llara", "--train-steps", "8") == {"llara": {}, "train": {"steps": 8}}
    assert overrides("--train-steps", "192", "--wise-alpha", "0.5") == {"train": {"steps": 192, "wise_alpha": 0.5}}
    assert overrides("--style", "drama", "--no-evaluate") == {"train": {"style": "drama"}, "evaluate": None}
    assert overrides("--sources", "crop, title") == {"augment": {"sources": ["crop", "title"]}}
    assert overrides("--full", "--augment-llm", "llms/big", "--sources", "synthetic") == {
        "augment": {"sources": ["synthetic"], "llm": "llms/big"}
    }
    settings = PipelineSettings.from_preset("gpu", overrides=overrides("--augment-llm", "llms/big"))
    assert settings.stages["augment"]["llm"] == "llms/big" and settings.stages["augment"]["negatives"] == 7
    settings = PipelineSettings.from_preset("quick", overrides=overrides("--sources", "title"))
    assert settings.stages["augment"]["sources"] == ["title"] and settings.stages["augment"]["negatives"] == 1
    assert overrides("--crops-per-doc", "4") == {"augment": {"crop": {"per_document": 4}}}
    settings = PipelineSettings.from_preset("quick", overrides=overrides("--crops-per-doc", "4"))
    assert settings.stages["augment"]["crop"] == {"context_removal": 1.0, "per_document": 4}  # merged, not replaced
    assert overrides("--negative-ranks", "2-10") == {"augment": {"negative_ranks": [2, 10]}}
    with pytest.raises(ValueError, match="--negative-ranks expects LOW-HIGH"):
        overrides("--negative-ranks", "2")
    settings = PipelineSettings.from_preset("quick", overrides=overrides("--llara"))
    assert settings.stages["llara"]["steps"] == 60  # turned on from the short default, not silently left off

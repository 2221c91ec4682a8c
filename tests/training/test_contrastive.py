from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import InterruptAfterSave
from datasets import Dataset
from sentence_transformers import SentenceTransformer

from st_drama import build_model
from st_drama.cli import main
from st_drama.training.contrastive import contrastive_loss, matryoshka_dims_for, train
from st_drama.training.data import TrainingDataError, load_training_data

TOPICS = ["lift of swept wings", "heat transfer in boundary layers", "shock waves on cones", "flutter of panels",
          "jet noise", "buckling of cylinders", "hypersonic flow", "propeller slipstream"]  # fmt: skip


def rows(count: int = 16) -> dict[str, list[str]]:
    return {
        "query": [f"what is known about {TOPICS[i % 8]} case {i}" for i in range(count)],
        "positive": [f"a study of {TOPICS[i % 8]} in case {i}" for i in range(count)],
        "negative_1": [f"a study of {TOPICS[(i + 3) % 8]} in case {i + 100}" for i in range(count)],
        "negative_2": [f"notes on {TOPICS[(i + 5) % 8]} number {i}" for i in range(count)],
        "source": ["crop"] * count,
    }


RUN = dict(steps=6, batch_size=4, save_steps=2, bf16=False, matryoshka_dims=[32], show_progress=False, seed=3)


def test_matryoshka_dims_follow_drama_where_they_fit():
    assert matryoshka_dims_for(576) == [576, 512, 256]
    assert matryoshka_dims_for(2048) == [2048, 512, 256]
    assert matryoshka_dims_for(64) == [64]
    assert matryoshka_dims_for(576, [256, 128]) == [576, 256, 128]
    assert matryoshka_dims_for(576, None) == []
    with pytest.raises(ValueError, match="between 1 and the embedding size 576"):
        matryoshka_dims_for(576, [1024])


def test_training_data_columns_are_ordered_and_extra_columns_dropped():
    dataset = load_training_data(Dataset.from_dict(rows(4)), num_negatives=1)
    assert dataset.column_names == ["query", "positive", "negative_1"]


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        ({"question": ["q"], "positive": ["p"]}, r"missing column\(s\) \['query'\]"),
        ({"query": ["q"], "positive": ["p"], "negative_2": ["n"]}, "without gaps"),
        ({"query": ["q", " "], "positive": ["p", "p2"]}, r"row 2 of 2, column 'query': empty"),
    ],
)
def test_bad_training_data_names_the_problem(columns, message):
    with pytest.raises(TrainingDataError, match=message):
        load_training_data(Dataset.from_dict(columns))


def test_teacher_scores_are_kept_as_labels_and_cut_to_the_negatives_kept(tmp_path):
    scored = {**rows(4), "scores": [[-1.0, -2.0, -3.0]] * 4}
    dataset = load_training_data(Dataset.from_dict(scored), num_negatives=1, teacher_scores=True)
    assert dataset.column_names == ["query", "positive", "negative_1", "scores"]
    assert dataset["scores"] == [[-1.0, -2.0]] * 4
    assert load_training_data(Dataset.from_dict(scored)).column_names[-1] == "negative_2"  # not distilling: dropped
    Dataset.from_dict(scored).to_json(str(tmp_path / "scored.jsonl"))
    assert load_training_data(tmp_path / "scored.jsonl", teacher_scores=True)["scores"][0] == [-1.0, -2.0, -3.0]


@pytest.mark.parametrize(
    ("scores", "message"),
    [
        (None, "distillation needs a 'scores' column"),
        ([[-1.0, -2.0]] * 2, r"row 1 of 2, column 'scores': expected 3 numbers"),
        ([[-1.0, -2.0, -3.0], [-1.0, float("nan"), -3.0]], "row 2 of 2, column 'scores'"),
    ],
)
def test_bad_teacher_scores_name_the_row(scores, message):
    columns = {column: values[:2] for column, values in rows(2).items()}
    if scores is not None:
        columns["scores"] = scores
    with pytest.raises(TrainingDataError, match=message):
        load_training_data(Dataset.from_dict(columns), teacher_scores=True)


def test_distillation_without_scores_fails_before_the_model_loads(tmp_path):
    with pytest.raises(TrainingDataError, match="distillation needs a 'scores' column"):
        train("no-such-model", Dataset.from_dict(rows(8)), tmp_path, distill_weight=1.0, **RUN)


def test_training_data_reads_shards_and_saved_folders(tmp_path):
    dataset = Dataset.from_dict(rows(6))
    (tmp_path / "shards").mkdir()
    dataset.select(range(3)).to_parquet(str(tmp_path / "shards" / "part-00000.parquet"))
    dataset.select(range(3, 6)).to_parquet(str(tmp_path / "shards" / "part-00001.parquet"))
    assert load_training_data(tmp_path / "shards")["query"] == dataset["query"]
    dataset.to_json(str(tmp_path / "rows.jsonl"))
    assert load_training_data(tmp_path / "rows.jsonl")["positive"] == dataset["positive"]
    dataset.save_to_disk(str(tmp_path / "saved"))
    assert load_training_data(tmp_path / "saved")["negative_2"] == dataset["negative_2"]
    with pytest.raises(TrainingDataError, match="no such file"):
        load_training_data(tmp_path / "absent")


def mean_loss(model_dir, dataset) -> float:
    model = (
        SentenceTransformer(str(model_dir), trust_remote_code=True)
        if Path(model_dir, "modules.json").exists()
        else build_model(str(model_dir))
    )
    loss = contrastive_loss(model, matryoshka_dims=None)
    features = [model[0].preprocess(dataset["query"], task="query")]
    features += [
        model[0].preprocess(dataset[column], task="document") for column in ("positive", "negative_1", "negative_2")
    ]
    with torch.no_grad():
        return loss(features, None).item()


def test_training_lowers_the_contrastive_loss_and_saves_a_model_card(tiny_llama_dir, tmp_path):
    dataset = Dataset.from_dict(rows(16))
    model_dir = train(str(tiny_llama_dir), dataset, tmp_path, **{**RUN, "steps": 12, "learning_rate": 1e-3})
    assert mean_loss(model_dir, dataset) < mean_loss(tiny_llama_dir, dataset)
    card = Path(model_dir, "README.md").read_text()
    assert "MatryoshkaLoss" in card and "MultipleNegativesRankingLoss" in card
    metadata = json.loads(Path(model_dir, "st_drama_run.json").read_text())
    assert metadata["columns"] == ["query", "positive", "negative_1", "negative_2"] and metadata["steps"] == 12


def test_training_a_saved_sentence_transformer_uses_the_asked_length(tiny_llama_dir, tmp_path):
    saved = tmp_path / "adapted"
    build_model(str(tiny_llama_dir), style="llara", max_seq_length=96).save(str(saved))
    model_dir = train(str(saved), Dataset.from_dict(rows(8)), tmp_path / "run", max_seq_length=48, **RUN)
    trained = SentenceTransformer(model_dir, trust_remote_code=True)
    assert trained.max_seq_length == 48 and trained[0].prompt_style == "llara"


def test_interrupted_training_resumes_to_the_same_weights(tiny_llama_dir, tmp_path):
    dataset = Dataset.from_dict(rows(16))
    whole = train(str(tiny_llama_dir), dataset, tmp_path / "whole", **RUN)
    with pytest.raises(KeyboardInterrupt):
        train(str(tiny_llama_dir), dataset, tmp_path / "cut", callbacks=[InterruptAfterSave(2)], **RUN)
    resumed = train(str(tiny_llama_dir), dataset, tmp_path / "cut", resume=True, **RUN)
    expected = SentenceTransformer(whole, trust_remote_code=True).state_dict()
    actual = SentenceTransformer(resumed, trust_remote_code=True).state_dict()
    for name, tensor in expected.items():
        torch.testing.assert_close(actual[name], tensor, msg=name)


def test_lora_and_cached_loss_train_and_merge(tiny_llama_dir, tmp_path):
    model_dir = train(
        str(tiny_llama_dir), Dataset.from_dict(rows(8)), tmp_path, lora=True, lora_rank=4, cached=True,
        mini_batch_size=2, **{**RUN, "steps": 2},
    )  # fmt: skip
    assert not os.path.exists(os.path.join(model_dir, "adapter_config.json"))
    assert SentenceTransformer(model_dir, trust_remote_code=True).encode_query(["jet noise"]).shape == (1, 64)


def test_cross_device_negatives_give_the_loss_of_one_big_batch(tiny_llama_dir, tmp_path):
    batch = {column: texts for column, texts in rows(8).items() if column in ("query", "positive", "negative_1")}
    (tmp_path / "batch.json").write_text(json.dumps(batch))
    script = Path(__file__).with_name("ddp_loss_script.py")
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517"]
    command += [str(script), str(tiny_llama_dir), str(tmp_path / "batch.json"), str(tmp_path / "out.json")]
    result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    distributed = json.loads((tmp_path / "out.json").read_text())

    model = build_model(str(tiny_llama_dir))
    loss = contrastive_loss(model, temperature=0.05, matryoshka_dims=None, gather_across_devices=False)
    features = [model[0].preprocess(batch["query"], task="query")]
    features += [model[0].preprocess(batch[column], task="document") for column in ("positive", "negative_1")]
    with torch.no_grad():
        single_process = loss(features, None).item()
    assert distributed["world"] == 2
    assert distributed["loss"] == pytest.approx(single_process, rel=1e-4)


def test_symmetric_loss_option_adds_the_document_to_query_term(tiny_llama_dir):
    model = build_model(str(tiny_llama_dir)).eval()
    batch = rows(4)
    # As the trainer frames them: the query prompt before queries.
    features = [model[0].preprocess(batch["query"], prompt=model.prompts["query"], task="query")]
    features.append(model[0].preprocess(batch["positive"], task="document"))
    options = {"directions": ("query_to_doc", "doc_to_query"), "partition_mode": "per_direction"}
    loss = contrastive_loss(model, temperature=0.05, matryoshka_dims=None, loss_options=options)
    with torch.no_grad():
        symmetric = loss(features, None).item()
        one_way = contrastive_loss(model, temperature=0.05, matryoshka_dims=None)(features, None).item()
        queries = model.encode_query(batch["query"], convert_to_tensor=True)
        documents = model.encode_document(batch["positive"], convert_to_tensor=True)
    scores = 20.0 * queries @ documents.T
    labels = torch.arange(4)
    query_to_doc = torch.nn.functional.cross_entropy(scores, labels).item()
    doc_to_query = torch.nn.functional.cross_entropy(scores.T, labels).item()
    assert one_way == pytest.approx(query_to_doc, rel=1e-4)
    assert symmetric == pytest.approx((query_to_doc + doc_to_query) / 2, rel=1e-4)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"scale": 3.0}, "'scale' is set by st-drama itself"),
        ({"directon": ["doc_to_query"]}, "'directon' is not an argument of MultipleNegativesRankingLoss"),
    ],
)
def test_loss_options_the_loss_does_not_take_are_refused(tiny_llama_dir, options, message):
    with pytest.raises(ValueError, match=message):
        contrastive_loss(build_model(str(tiny_llama_dir)), matryoshka_dims=None, loss_options=options)


def test_command_line_train(tiny_llama_dir, tmp_path, capsys):
    Dataset.from_dict(rows(8)).to_json(str(tmp_path / "rows.jsonl"))
    command = ["train", str(tiny_llama_dir), str(tmp_path / "rows.jsonl"), str(tmp_path / "run"), "--steps", "2",
               "--batch-size", "4", "--matryoshka-dims", "32", "--no-bf16", "--save-steps", "1", "--loss-directions",
               "query_to_doc,doc_to_query", "--partition-mode", "per_direction"]  # fmt: skip
    exit_code = main(command)
    assert exit_code == 0 and "Trained model saved" in capsys.readouterr().out
    metadata = json.loads((tmp_path / "run" / "model" / "st_drama_run.json").read_text())
    expected_options = {"directions": ["query_to_doc", "doc_to_query"], "partition_mode": "per_direction"}
    assert metadata["config"]["loss_options"] == expected_options
    assert main(command) == 2
    assert "pass resume=True" in capsys.readouterr().err
    assert main([*command[:4], "--batch-size", "4"]) == 2  # other settings: never resumed into this run
    assert "holds checkpoints of a different run" in capsys.readouterr().err
    assert main([*command[:4], "--batch-size", "16"]) == 2  # 8 rows cannot fill one batch: nothing would train
    assert "8 rows, fewer than one batch of 16 (--batch-size)" in capsys.readouterr().err


@pytest.mark.real_model
def test_real_model_trains_a_few_steps(smollm2_dir, tmp_path):
    model_dir = train("smollm2-135m", Dataset.from_dict(rows(4)), tmp_path, steps=1, batch_size=2, max_seq_length=32,
                      show_progress=False)  # fmt: skip
    model = SentenceTransformer(model_dir, trust_remote_code=True)
    embeddings = model.encode_query(["jet noise"], truncate_dim=256)
    assert embeddings.shape == (1, 256) and torch.isfinite(torch.from_numpy(embeddings)).all()


def test_command_line_distillation_reads_the_scores_column(tiny_llama_dir, tmp_path, capsys):
    Dataset.from_dict({**rows(8), "scores": [[-1.0, -4.0, -2.0]] * 8}).to_json(str(tmp_path / "scored.jsonl"))
    command = ["train", str(tiny_llama_dir), str(tmp_path / "scored.jsonl"), str(tmp_path / "run"), "--steps", "1",
               "--batch-size", "4", "--matryoshka-dims", "none", "--no-bf16", "--distill-weight", "0.5",
               "--teacher-temperature", "2"]  # fmt: skip
    assert main(command) == 0
    metadata = json.loads((tmp_path / "run" / "model" / "st_drama_run.json").read_text())
    assert metadata["config"]["distill_weight"] == 0.5 and metadata["config"]["teacher_temperature"] == 2.0
    assert metadata["columns"] == ["query", "positive", "negative_1", "negative_2", "scores"]


def test_rows_too_alike_to_fill_a_batch_are_an_error_not_an_untrained_model(tiny_llama_dir, tmp_path):
    alike = {column: [texts[0]] * 8 for column, texts in rows(8).items()}  # one distinct text per column
    with pytest.raises(TrainingDataError, match="no batch of 4 rows with distinct texts"):
        train(str(tiny_llama_dir), Dataset.from_dict(alike), tmp_path, **RUN)
    assert not (tmp_path / "model").exists()

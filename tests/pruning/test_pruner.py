"""``prune`` end to end on a tiny model: output folder, provenance, reruns, and the checks made before any work."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import cranfield_texts

from st_drama.pruning import PROVENANCE_FILE, ModelShape, PruningTarget, PruningTargetError, prune

from .pruning_helpers import (
    load_model,
    logits,
    parameter_count,
    sample_ids,
    save_tiny_llama,
)

TARGET = PruningTarget(num_layers=2, hidden_size=48, intermediate_size=64, num_heads=2, num_kv_heads=1)
FAST = dict(calibration_tokens=512, sequence_length=64, bf16=False, show_progress=False)


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    return save_tiny_llama(tmp_path_factory.mktemp("tiny_api"))


@pytest.fixture(scope="module")
def pruned_folder(tiny_folder, tmp_path_factory):
    output = tmp_path_factory.mktemp("pruned") / "model"
    prune(tiny_folder, target=TARGET, calibration_texts=cranfield_texts(40), output_dir=output, **FAST)
    return output


def test_the_folder_holds_a_standard_model_of_exactly_the_target_shape(pruned_folder):
    config = json.loads((pruned_folder / "config.json").read_text())
    assert config["model_type"] == "llama" and config["architectures"] == ["LlamaForCausalLM"]
    assert (config["num_hidden_layers"], config["hidden_size"], config["intermediate_size"]) == (2, 48, 64)
    assert (config["num_attention_heads"], config["num_key_value_heads"], config["head_dim"]) == (2, 1, 16)
    assert "auto_map" not in config  # nothing but transformers is needed to load it
    model = load_model(pruned_folder)
    assert parameter_count(model) == ModelShape.from_config(model.config).total_parameters()


def test_plain_transformers_loads_and_generates_without_st_drama(pruned_folder):
    script = (
        "import sys, json; sys.modules['st_drama'] = None\n"
        "from transformers import AutoModelForCausalLM, AutoTokenizer\n"
        f"folder = {str(pruned_folder)!r}\n"
        "model = AutoModelForCausalLM.from_pretrained(folder)\n"
        "tokenizer = AutoTokenizer.from_pretrained(folder)\n"
        "ids = tokenizer('the boundary layer', return_tensors='pt').input_ids\n"
        "out = model.generate(ids, max_new_tokens=6, do_sample=False)\n"
        "print(json.dumps({'prompt': ids.shape[1], 'total': out.shape[1]}))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    lengths = json.loads(result.stdout.strip().splitlines()[-1])
    assert lengths["total"] == lengths["prompt"] + 6


def test_the_returned_model_is_the_saved_one(tiny_folder, tmp_path):
    model = prune(tiny_folder, target=TARGET, output_dir=tmp_path / "out", **FAST)
    ids = sample_ids(model.config.vocab_size)
    torch.testing.assert_close(logits(load_model(tmp_path / "out"), ids), logits(model, ids), rtol=0, atol=0)


def test_provenance_records_source_method_target_and_calibration(pruned_folder, tiny_folder):
    provenance = json.loads((pruned_folder / PROVENANCE_FILE).read_text())
    assert provenance["source_model"] == str(tiny_folder)
    assert provenance["method"] == "importance"
    assert provenance["target"] == TARGET.to_dict()
    assert provenance["shape"]["hidden_size"] == 48 and provenance["shape"]["head_dim"] == 16
    assert provenance["calibration"]["tokens"] == 512 and provenance["calibration"]["sequence_length"] == 64
    assert provenance["source_parameters"]["total"] > provenance["parameters"]["total"]
    assert len(provenance["layers"]["kept_layers"]) == 2 and len(provenance["layers"]["dropped_layers"]) == 1
    assert not (pruned_folder / ".st_drama_pruning").exists()  # the work folder goes once the run completes


def test_build_model_accepts_the_pruned_folder(pruned_folder):
    from st_drama import build_model

    retriever = build_model(str(pruned_folder), max_seq_length=64)
    queries = retriever.encode_query(["boundary layer transition"])
    documents = retriever.encode_document(["the boundary layer on a flat plate", "shock waves at a cone"])
    assert queries.shape == (1, 48) and documents.shape == (2, 48)
    assert np.isfinite(documents).all()
    np.testing.assert_allclose(np.linalg.norm(documents, axis=1), 1.0, rtol=1e-5)


def test_a_rerun_returns_the_finished_result_and_other_settings_are_refused(tiny_folder, tmp_path):
    output = tmp_path / "out"
    first = prune(tiny_folder, target=TARGET, output_dir=output, **FAST)
    provenance = (output / PROVENANCE_FILE).read_text()
    again = prune(tiny_folder, target=TARGET, output_dir=output, **FAST)
    assert (output / PROVENANCE_FILE).read_text() == provenance  # not redone
    ids = sample_ids(first.config.vocab_size)
    torch.testing.assert_close(logits(again, ids), logits(first, ids), rtol=0, atol=0)
    with pytest.raises(ValueError, match="pruned with other settings"):
        prune(tiny_folder, target=PruningTarget(num_layers=1), output_dir=output, **FAST)


def test_an_unrelated_non_empty_output_folder_is_refused(tiny_folder, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="is not empty"):
        prune(tiny_folder, target=TARGET, output_dir=tmp_path, **FAST)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["notes.txt"]


def test_invalid_targets_fail_before_loading_the_model(tiny_folder, tmp_path):
    config_only = tmp_path / "config_only"
    config_only.mkdir()
    shutil.copy(tiny_folder / "config.json", config_only / "config.json")  # no weights, no tokenizer
    with pytest.raises(PruningTargetError, match="num_kv_heads=3 is larger than the source's 2"):
        prune(config_only, target=PruningTarget(num_kv_heads=3), output_dir=tmp_path / "out", **FAST)
    assert not (tmp_path / "out").exists()
    with pytest.raises(ValueError, match="method must be one of"):
        prune(config_only, target=TARGET, method="magnitude")


def test_recovery_cannot_reread_a_one_shot_iterator(tiny_folder):
    with pytest.raises(ValueError, match="one-shot iterator"):
        prune(tiny_folder, target=TARGET, calibration_texts=iter(cranfield_texts(5)), recovery={"steps": 2}, **FAST)


def test_non_llama_models_are_refused(tmp_path):
    from conftest import save_tiny_decoder

    folder = save_tiny_decoder(tmp_path / "qwen", model_type="qwen2")
    with pytest.raises(PruningTargetError, match="supports Llama models"):
        prune(folder, target=TARGET, **FAST)


def test_random_pruning_gives_the_same_shape_with_other_pieces(tiny_folder):
    importance = prune(tiny_folder, target=TARGET, **FAST)
    random = prune(tiny_folder, target=TARGET, method="random", **FAST)
    assert ModelShape.from_config(random.config) == ModelShape.from_config(importance.config)
    assert not torch.equal(random.model.embed_tokens.weight, importance.model.embed_tokens.weight)


def test_learned_masks_prune_through_the_same_call(tiny_folder, tmp_path):
    from st_drama.pruning import LearnedMaskConfig

    learned = LearnedMaskConfig(steps=4, batch_size=2, save_steps=4)
    model = prune(tiny_folder, target=TARGET, method="learned", learned=learned, output_dir=tmp_path / "out", **FAST)
    assert ModelShape.from_config(model.config) == TARGET.resolve(load_model(tiny_folder).config)
    provenance = json.loads((tmp_path / "out" / PROVENANCE_FILE).read_text())
    assert provenance["method"] == "learned" and provenance["learned"]["steps"] == 4
    assert not (tmp_path / "out" / ".st_drama_pruning").exists()


def test_an_in_memory_model_is_pruned_without_being_changed(tiny_folder):
    from transformers import AutoTokenizer

    source = load_model(tiny_folder)
    before = {name: tensor.clone() for name, tensor in source.state_dict().items()}
    pruned = prune(source, target=TARGET, tokenizer=AutoTokenizer.from_pretrained(tiny_folder), **FAST)
    assert ModelShape.from_config(pruned.config).hidden_size == 48
    assert all(torch.equal(tensor, before[name]) for name, tensor in source.state_dict().items())


def test_an_interrupted_run_reuses_its_pruned_model_and_checkpoints(tiny_folder, tmp_path, caplog):
    output = tmp_path / "out"
    settings = dict(output_dir=output, recovery={"steps": 2}, keep_checkpoints=True, **FAST)
    finished = prune(tiny_folder, target=TARGET, **settings)
    work = output / ".st_drama_pruning"
    assert (work / "pruned" / "config.json").is_file() and (work / "recovery" / "checkpoint-2").is_dir()
    (output / PROVENANCE_FILE).unlink()  # as if the run had died before writing its result
    with caplog.at_level(logging.INFO, logger="st_drama"):
        resumed = prune(tiny_folder, target=TARGET, **settings)
    assert "Reusing the pruned model" in caplog.text and "Resuming from" in caplog.text
    ids = sample_ids(finished.config.vocab_size)
    torch.testing.assert_close(logits(resumed, ids), logits(finished, ids))
    provenance = json.loads((output / PROVENANCE_FILE).read_text())
    assert provenance["recovery"]["steps"] == 2 and provenance["recovery"]["mode"] == "distill"

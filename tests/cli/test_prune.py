from __future__ import annotations

import json

import pytest
from pruning.pruning_helpers import (
    load_model,
    parameter_count,
    save_tiny_llama,
)

from st_drama.cli import main
from st_drama.pruning import PROVENANCE_FILE, ModelShape

FAST = ["--calibration-tokens", "256", "--seq-length", "64", "--no-bf16"]


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    return save_tiny_llama(tmp_path_factory.mktemp("tiny_cli"))


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "corpus.jsonl"
    rows = [
        {"_id": str(i), "text": f"the flow around wing section {i} separates near the trailing edge"}
        for i in range(40)
    ]
    path.write_text("\n".join(json.dumps(row) for row in rows), encoding="utf-8")
    return path


def test_prune_command_writes_a_model_of_the_asked_shape(tiny_folder, corpus, tmp_path, capsys):
    output = tmp_path / "pruned"
    shape_args = ["--layers", "2", "--hidden", "48", "--intermediate", "64", "--heads", "2", "--kv-heads", "1"]
    argv = ["prune", str(tiny_folder), str(output), *shape_args, "--calibration", str(corpus), *FAST]
    assert main([*argv, "--recover-steps", "2"]) == 0
    assert f"saved to {output}" in capsys.readouterr().out
    model = load_model(output)
    assert ModelShape.from_config(model.config).pruned_sizes() == {
        "num_layers": 2,
        "hidden_size": 48,
        "intermediate_size": 64,
        "num_heads": 2,
        "num_kv_heads": 1,
    }
    provenance = json.loads((output / PROVENANCE_FILE).read_text())
    assert provenance["calibration"]["source"] == str(corpus)
    assert provenance["recovery"]["steps"] == 2 and provenance["recovery"]["texts"] == str(corpus)


def test_a_parameter_budget_picks_the_shape(tiny_folder, tmp_path):
    output = tmp_path / "budget"
    assert main(["prune", str(tiny_folder), str(output), "--params", "60k", *FAST]) == 0
    model = load_model(output)
    shape = ModelShape.from_config(model.config)
    assert 0.8 * 60_000 < shape.non_embedding_parameters() <= 60_000
    assert parameter_count(model) == shape.total_parameters()
    assert json.loads((output / PROVENANCE_FILE).read_text())["target"] == {"params": "60k"}


@pytest.mark.parametrize(
    ("shape_args", "message"),
    [
        (["--kv-heads", "3"], "num_kv_heads=3 is larger than the source's 2"),
        (["--heads", "3", "--kv-heads", "2"], "does not divide num_heads=3"),
        ([], "Give a target"),
    ],
)
def test_bad_targets_end_with_one_clear_line(tiny_folder, tmp_path, capsys, shape_args, message):
    output = tmp_path / "never"
    assert main(["prune", str(tiny_folder), str(output), *shape_args, *FAST]) == 2
    error = capsys.readouterr().err
    assert error.startswith("st-drama prune: error:") and message in error
    assert not output.exists()

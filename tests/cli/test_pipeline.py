from __future__ import annotations

import json

import pytest
from conftest import write_cranfield_subset

from st_drama.cli import main, make_parser
from st_drama.cli.pipeline import config_from_args, stage_changes
from st_drama.pipeline import PRESETS


def changes(*options: str) -> dict:
    return stage_changes(make_parser().parse_args(["pipeline", "corpus", "out", *options]))


def config(*options: str):
    return config_from_args(make_parser().parse_args(["pipeline", "corpus", "out", *options]))


def test_command_line_stage_options_become_changes():
    assert changes() == {}
    assert changes("--llara", "--train-steps", "8") == {"llara": {}, "train": {"steps": 8}}
    assert changes("--train-steps", "192", "--wise-alpha", "0.5") == {"train": {"steps": 192, "wise_alpha": 0.5}}
    assert changes("--style", "drama", "--no-evaluate") == {"train": {"style": "drama"}, "evaluate": None}
    assert changes("--sources", "crop, title") == {"augment": {"sources": ("crop", "title")}}
    assert changes("--crops-per-doc", "4") == {"augment": {"crop": {"per_document": 4}}}
    assert changes("--negative-ranks", "2-10") == {"augment": {"mining": {"negative_ranks": (2, 10)}}}
    assert changes("--baselines", "bm25,backbone") == {"evaluate": {"baselines": "bm25,backbone"}}
    with pytest.raises(ValueError, match="--negative-ranks expects LOW-HIGH"):
        changes("--negative-ranks", "2")


def test_options_change_the_preset_and_keep_the_rest():
    gpu = config("--preset", "gpu", "--augment-llm", "llms/big")
    assert gpu.augment.llm == "llms/big" and gpu.augment.mining.num_negatives == 7
    quick = config("--sources", "title")
    assert quick.augment.sources == ("title",) and quick.augment.mining.num_negatives == 1
    assert config("--full") == PRESETS["full"]
    assert config("--llara").llara.steps == 60  # turned on from the short default, not silently left off
    assert config("--seed", "5").train.seed == 5 and config("--seed", "5").augment.seed == 5
    assert config("--baselines", "none").evaluate.baselines == ()


def test_pipeline_command_prints_the_results(tiny_llama_dir, tmp_path, capsys):
    subset_dir = write_cranfield_subset(tmp_path / "cranfield_subset")
    output = tmp_path / "run"
    arguments = ["pipeline", str(subset_dir), str(output), "--model", str(tiny_llama_dir), "--train-steps", "2",
                 "--wise-alpha", "0.8", "--crops-per-doc", "2", "--negative-ranks", "2-5"]  # fmt: skip
    code = main([*arguments, "--no-progress"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "# st-drama pipeline on" in printed and "| all-MiniLM-L6-v2 (" in printed
    assert (output / "model" / "modules.json").is_file()
    assert json.loads((output / "model" / "st_drama_run.json").read_text())["config"]["wise_alpha"] == 0.8
    augment_config = json.loads((output / "augment" / "stage.json").read_text())["config"]
    assert augment_config["crop"]["per_document"] == 2 and augment_config["crop"]["context_removal"] == 1.0
    recipe = json.loads((output / "augment" / "data" / ".augment" / "config.json").read_text())
    assert recipe["mining"]["negative_ranks"] == [2, 5] and recipe["mining"]["num_negatives"] == 1

from __future__ import annotations

import dataclasses

import pytest

from st_drama.pipeline import PRESETS, STAGES, PipelineConfig
from st_drama.pipeline.presets import PIPELINE_LLARA, PIPELINE_PRUNE


def test_presets_are_configs_of_every_stage():
    for name, preset in PRESETS.items():
        assert isinstance(preset, PipelineConfig) and preset.preset == name
        assert preset.augment is not None and preset.train is not None


def test_full_preset_is_the_quick_recipe_trained_longer_then_interpolated_back():
    quick, full = PRESETS["quick"], PRESETS["full"]
    assert {stage: getattr(full, stage) for stage in STAGES if stage != "train"} == {
        stage: getattr(quick, stage) for stage in STAGES if stage != "train"
    }
    assert dataclasses.replace(full.train, steps=quick.train.steps, wise_alpha=1.0) == quick.train
    assert full.train.steps > quick.train.steps and 0 < full.train.wise_alpha < 1
    assert quick.train.wise_alpha == 1.0


def test_changes_merge_into_a_stage_and_turn_optional_stages_on_and_off():
    config = PipelineConfig.from_preset("quick", augment={"crop": {"per_document": 4}})
    assert config.augment.crop.per_document == 4
    assert config.augment.crop.context_removal == PRESETS["quick"].augment.crop.context_removal  # merged
    assert config.augment.sources == PRESETS["quick"].augment.sources
    with_llara = PipelineConfig.from_preset("quick", llara={})
    assert with_llara.llara == PIPELINE_LLARA and with_llara.train.style == "llara"
    pruned = PipelineConfig.from_preset("quick", prune={"target": {"params": "60M"}})
    assert pruned.prune.target.params == "60M" and pruned.prune.recovery == PIPELINE_PRUNE.recovery
    assert PipelineConfig.from_preset("gpu", llara=None).llara is None
    assert PipelineConfig.from_preset("quick", evaluate=None).evaluate is None


def test_seed_reaches_every_stage():
    config = PipelineConfig.from_preset("gpu").with_seed(7)
    assert (config.llara.seed, config.augment.seed, config.train.seed) == (7, 7, 7)


def test_llara_stage_and_drama_framing_conflict():
    with pytest.raises(ValueError, match="cannot follow the llara stage"):
        PipelineConfig.from_preset("gpu", train={"style": "drama"})
    with pytest.raises(ValueError, match="cannot follow the llara stage"):
        PipelineConfig.from_preset("quick", llara={}, train={"style": "drama"})
    with pytest.raises(ValueError, match=r"style must be one of"):
        PipelineConfig.from_preset("quick", train={"style": "colbert"})


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"distill": {}}, "Unknown pipeline setting 'distill'"),
        ({"train": None}, "cannot be turned off"),
        ({"augment": {"sources": ["crop", "titles"]}}, r"augment sources .* got \['crop', 'titles'\]"),
        ({"train": {"wise_alpha": 0}}, r"wise_alpha .* got 0"),
        ({"augment": {"crop": {"per_document": 0}}}, "per_document is a number of crops per document, at least 1"),
        ({"augment": {"mining": {"negative_ranks": [30]}}}, r"negative_ranks must be \[low, high\] .* got \[30\]"),
        ({"augment": {"mining": {"negative_ranks": [50, 30]}}}, r"1-based and ordered .* got \(50, 30\)"),
        ({"augment": {"minning": {}}}, "AugmentConfig has no setting 'minning'"),
        ({"prune": {}}, "The prune stage needs a target"),
        ({"train": {"distill_weight": 1.0}}, "the augment stage writes no teacher scores"),
    ],
)
def test_bad_settings_are_refused_before_anything_runs(changes, message):
    with pytest.raises(ValueError, match=message):
        PipelineConfig.from_preset("quick", **changes)


def test_unknown_preset_is_refused():
    with pytest.raises(ValueError, match="Unknown preset 'fast'"):
        PipelineConfig.from_preset("fast")

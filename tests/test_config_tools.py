from __future__ import annotations

import pytest

from st_drama.augment.config import AugmentConfig, CropConfig
from st_drama.config_tools import as_dict, config_from, updated
from st_drama.training.config import TrainConfig


def test_nested_changes_merge_into_the_nested_config():
    config = updated(AugmentConfig(), {"crop": {"per_document": 3}, "seed": 7})
    assert config.crop == CropConfig(per_document=3) and config.seed == 7
    assert AugmentConfig().crop.per_document == 1  # the default is untouched (configs are frozen)


def test_unknown_settings_name_the_config_and_its_fields():
    with pytest.raises(ValueError, match=r"TrainConfig has no setting 'step'; its settings: \[.*'steps'"):
        updated(TrainConfig(), {"step": 3})
    with pytest.raises(TypeError, match="config must be a TrainConfig"):
        config_from(TrainConfig, AugmentConfig(), {})


def test_config_from_applies_keyword_overrides_and_checks_them():
    assert config_from(TrainConfig, None, {"steps": 4}).steps == 4
    with pytest.raises(ValueError, match="temperature must be positive"):
        config_from(TrainConfig, TrainConfig(), {"temperature": 0})
    assert as_dict(TrainConfig())["matryoshka_dims"] == "auto"

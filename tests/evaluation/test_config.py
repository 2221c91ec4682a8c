from __future__ import annotations

import pytest

from st_drama.evaluation.config import DEFAULT_BASELINES, EvaluateConfig, check_baselines


def test_baseline_names_are_parsed_and_checked():
    assert check_baselines("bm25, minilm,bm25") == ("bm25", "minilm")
    assert check_baselines(("backbone",)) == ("backbone",)
    assert check_baselines("none") == ()
    with pytest.raises(ValueError, match="Unknown baseline 'bm52'"):
        check_baselines("bm25,bm52")


def test_the_untrained_backbone_is_opt_in():
    assert EvaluateConfig().baselines == DEFAULT_BASELINES == ("bm25", "minilm")
    assert EvaluateConfig(baselines="bm25,backbone").baselines == ("bm25", "backbone")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [("style", "colbert", "style must be one of"), ("batch_size", 0, "batch_size"), ("max_chunks", 0, "max_chunks")],
)
def test_bad_settings_are_refused_with_the_field_named(field, value, message):
    with pytest.raises(ValueError, match=message):
        EvaluateConfig(**{field: value})

"""Model cards: made through sentence-transformers' model-card data, hub-ready (metadata that huggingface_hub
parses), with a usage snippet that runs on the folder as written and the facts a training run recorded."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from huggingface_hub import ModelCard
from sentence_transformers import SentenceTransformer

from st_drama import build_model
from st_drama.defaults import DEFAULT_LLM_HUB_ID
from st_drama.model_card import RUN_RECORD, USAGE_QUERY, hub_model_id, recorded_facts, write_model_card

PUSH_FILES = {"README.md", "modules.json", "config_sentence_transformers.json", "tokenizer.json", "config.json"}


def usage_snippet(card: str) -> str:
    usage = card.split("## Usage", 1)[1]
    return re.search(r"```python\n(.*?)```", usage, re.DOTALL).group(1)


@pytest.mark.parametrize("style", ["drama", "llara"])
def test_the_card_is_hub_ready_and_its_usage_snippet_runs_on_the_folder(style, tiny_llama_dir, tmp_path):
    folder = tmp_path / style
    model = build_model(str(tiny_llama_dir), style=style, max_seq_length=64)
    model.save(str(folder))
    assert {path.name for path in folder.iterdir()} >= PUSH_FILES  # what push_to_hub uploads, saved offline
    card_text = (folder / "README.md").read_text(encoding="utf-8")
    card = ModelCard.load(folder / "README.md")
    assert card.data.library_name == "sentence-transformers" and "st-drama" in card.data.tags
    snippet = usage_snippet(card_text)
    assert ("trust_remote_code=True" in snippet) == (style == "llara")  # only st-drama's own modules need it
    assert "encode_query" in snippet and "encode_document" in snippet and str(folder) in snippet
    namespace: dict = {}
    exec(compile(snippet, "README.md", "exec"), namespace)  # the card's own code, as a user copies it
    np.testing.assert_allclose(namespace["queries"], model.encode_query([USAGE_QUERY]), atol=1e-5)
    form = "sentence-transformers' own modules" if style == "drama" else "st-drama's modules"
    assert form in card_text and ("bidirectional" in card_text) == (style == "drama")


def test_the_card_keeps_what_the_training_run_recorded(tiny_llama_dir, tmp_path):
    model = build_model(str(tiny_llama_dir), style="drama", max_seq_length=32)
    model.save(str(tmp_path))
    record = {"source_model": "org/base-llm", "matryoshka_dims": [64, 32, 16]}
    (tmp_path / RUN_RECORD).write_text(json.dumps(record))
    assert recorded_facts(tmp_path) == {"matryoshka_dims": [32, 16], "base_model": "org/base-llm"}

    reloaded = SentenceTransformer(str(tmp_path))  # sentence-transformers does not reload a card's data
    write_model_card(reloaded, tmp_path, recipe={"steps": 2})
    card = ModelCard.load(tmp_path / "README.md")
    assert card.data.base_model == "org/base-llm"
    text = (tmp_path / "README.md").read_text(encoding="utf-8")
    assert "truncations to 32, 16 dimensions" in text and "truncate_dim=16" in usage_snippet(text)
    assert '"steps": 2' in text


def test_hub_model_ids():
    assert hub_model_id("smollm2-135m") == DEFAULT_LLM_HUB_ID
    assert hub_model_id("facebook/drama-base") == "facebook/drama-base"
    assert hub_model_id("/some/local/folder") is None and hub_model_id("runs") is None


@pytest.mark.real_model
def test_a_smollm2_retriever_card_names_its_base_model_and_its_snippet_gives_the_models_embeddings(
    smollm2_dir, tmp_path
):
    model = build_model("smollm2-135m", max_seq_length=32)
    model.save(str(tmp_path))
    assert ModelCard.load(tmp_path / "README.md").data.base_model == DEFAULT_LLM_HUB_ID
    namespace: dict = {}
    exec(compile(usage_snippet((tmp_path / "README.md").read_text(encoding="utf-8")), "README.md", "exec"), namespace)
    np.testing.assert_allclose(namespace["queries"], model.encode_query([USAGE_QUERY]), atol=1e-5)

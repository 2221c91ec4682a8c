from __future__ import annotations

import datetime
import json

import pytest
from mteb.models import ModelMeta, SentenceTransformerEncoderWrapper
from pydantic import ValidationError

from st_drama import build_model
from st_drama.evaluation.encoders import model_fingerprint
from st_drama.evaluation.model_meta import build_model_meta, load_model_meta, model_framing, save_model_meta


def test_model_meta_is_filled_from_the_model_and_the_caller(tiny_llama_dir):
    model = build_model(str(tiny_llama_dir), max_seq_length=256)
    meta = build_model_meta(
        model,
        "st-drama/tiny-retriever",
        languages=["eng-Latn", "fra-Latn"],
        training_datasets={"SciFact"},
        release_date=datetime.date(2025, 3, 1),
        matryoshka_dims=[32, 16],
    )
    assert meta.name == "st-drama/tiny-retriever"
    assert meta.revision == model_fingerprint(model)
    assert meta.n_parameters == sum(p.numel() for p in model.parameters())
    assert meta.n_embedding_parameters == model[0].auto_model.get_input_embeddings().weight.numel()
    assert meta.memory_usage_mb == round(4 * meta.n_parameters / 1024**2)
    assert meta.embed_dim == [64, 32, 16]
    assert meta.max_tokens == 256
    assert meta.languages == ["eng-Latn", "fra-Latn"]
    assert meta.training_datasets == {"SciFact"}
    assert meta.release_date == "2025-03-01"
    assert meta.similarity_fn_name.value == "cosine"
    assert meta.license == "apache-2.0" and meta.open_weights is True
    assert meta.use_instructions is True  # DRAMA frames queries with "Query: "
    assert meta.loader_kwargs == {}  # sentence-transformers' own modules: no remote code
    assert build_model_meta(build_model(str(tiny_llama_dir), style="llara"), "st-drama/x").loader_kwargs == {
        "trust_remote_code": True
    }
    assert meta.reference == "https://huggingface.co/st-drama/tiny-retriever"
    assert meta.model_type == ["dense"]


def test_defaults_and_validation(tiny_llama_dir):
    model = build_model(str(tiny_llama_dir), query_prefix="")
    meta = build_model_meta(model, "st-drama/plain")
    assert meta.release_date == datetime.date.today().isoformat()
    assert meta.embed_dim == 64 and meta.training_datasets == set()
    assert meta.use_instructions is False  # queries and documents framed alike
    with pytest.raises(ValidationError, match="organization/model_name"):
        build_model_meta(model, "no-organization")
    with pytest.raises(ValidationError):
        build_model_meta(model, "st-drama/plain", languages=["english"])


def test_framing_describes_query_and_document_formats(tiny_llama_dir):
    drama = model_framing(build_model(str(tiny_llama_dir)))
    assert drama["query"]["prefix"] == "Query: " and drama["document"]["prefix"] == ""
    llara = model_framing(build_model(str(tiny_llama_dir), style="llara"))
    assert "summarize the above passage" in llara["document"]["suffix"]
    assert "predict the following passage" in llara["query"]["suffix"]
    assert len(llara["query"]["special_tokens"]) == 8


@pytest.mark.parametrize("style", ["drama", "llara"])
def test_saved_model_meta_loads_back_as_an_mteb_model_meta(tiny_llama_dir, tmp_path, style):
    model = build_model(str(tiny_llama_dir), style=style)
    meta = build_model_meta(model, "st-drama/tiny-retriever", training_datasets=["NFCorpus"], matryoshka_dims=[32])
    path = save_model_meta(meta, tmp_path / "meta" / "model_meta.json")
    data = json.loads(path.read_text())
    assert data["name"] == "st-drama/tiny-retriever" and data["training_datasets"] == ["NFCorpus"]
    loaded = load_model_meta(path)
    assert isinstance(loaded, ModelMeta)
    assert loaded.loader is SentenceTransformerEncoderWrapper
    assert loaded.model_dump(exclude={"loader"}) == meta.model_dump(exclude={"loader"})
    assert loaded.embed_dim == [64, 32]

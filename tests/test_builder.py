from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from sentence_transformers import SentenceTransformer

from st_drama import build_model
from st_drama.models import LlamaBackbone, TokenPooling

QUERIES = ["what is the lift of a wing in a slipstream", "", "heat transfer   "]
DOCUMENTS = [
    "an experimental study of a wing in a propeller slipstream was made in order to determine the lift increase",
    "boundary layer heat transfer at supersonic speeds",
]


def test_drama_style_model_has_backbone_mean_pooling_and_normalize(tiny_llama_dir):
    model = build_model(str(tiny_llama_dir))
    backbone, pooling, normalize = model[0], model[1], model[2]
    assert isinstance(backbone, LlamaBackbone) and backbone.attention == "bidirectional"
    assert isinstance(pooling, TokenPooling) and pooling.mode == "mean"
    assert type(normalize).__name__ == "Normalize"
    embeddings = model.encode_query(QUERIES, convert_to_tensor=True)
    assert embeddings.shape == (3, 64)
    torch.testing.assert_close(embeddings.norm(dim=-1), torch.ones(3))


def test_queries_and_documents_are_framed_differently(tiny_llama_dir):
    model = build_model(str(tiny_llama_dir))
    as_query = model.encode_query(DOCUMENTS[:1])
    as_document = model.encode_document(DOCUMENTS[:1])
    assert not np.allclose(as_query, as_document)
    # encode() without a task frames as a document.
    np.testing.assert_array_equal(model.encode(DOCUMENTS[:1]), as_document)


def test_llara_style_uses_causal_attention_and_prompt_token_pooling(tiny_llama_dir):
    model = build_model(str(tiny_llama_dir), style="llara")
    assert model[0].attention == "causal" and model[1].mode == "prompt_tokens"
    assert model.encode_query(QUERIES).shape == (3, 64)


def test_matryoshka_truncation(tiny_llama_dir):
    model = build_model(str(tiny_llama_dir), truncate_dim=16)
    assert model.encode_document(DOCUMENTS).shape == (2, 16)


@pytest.mark.parametrize("style", ["drama", "llara"])
def test_saved_model_reloads_to_identical_embeddings(tiny_llama_dir, tmp_path, style):
    model = build_model(str(tiny_llama_dir), style=style)
    model.save(str(tmp_path))
    modules = json.loads((tmp_path / "modules.json").read_text())
    assert [entry["type"] for entry in modules[:2]] == [
        "st_drama_modules.LlamaBackbone",
        "st_drama_modules.TokenPooling",
    ]

    reloaded = SentenceTransformer(str(tmp_path), trust_remote_code=True)
    assert isinstance(reloaded[0], LlamaBackbone)  # the installed st_drama classes, not the shipped copies
    np.testing.assert_array_equal(reloaded.encode_query(QUERIES), model.encode_query(QUERIES))
    np.testing.assert_array_equal(reloaded.encode_document(DOCUMENTS), model.encode_document(DOCUMENTS))
    # build_model on a saved folder loads it as it is.
    np.testing.assert_array_equal(build_model(str(tmp_path)).encode_query(QUERIES), model.encode_query(QUERIES))


LONG_DOCUMENT = "an experimental study of a wing in a propeller slipstream " * 12


def window_embeddings(model, text):
    """Each window of ``text`` pooled on its own (one window per forward pass), and its token count."""
    backbone, pooling = model.eval()[0], model[1]
    features = backbone.preprocess([text], task="document")
    embeddings = []
    for row, mask in zip(features["input_ids"], features["attention_mask"], strict=True):
        window = backbone._pad([row[mask.bool()].tolist()])
        with torch.no_grad():
            embeddings.append(pooling(backbone(window))["sentence_embedding"][0])
    return torch.stack(embeddings), features["chunk_length"].float()


@pytest.mark.parametrize("style", ["drama", "llara"])
def test_chunked_embedding_is_the_length_weighted_mean_of_its_windows(tiny_llama_dir, style):
    length = 64 if style == "llara" else 32  # room for LLaRA's prompt tokens
    model = build_model(str(tiny_llama_dir), style=style, max_seq_length=length, max_chunks=4).eval()
    windows, lengths = window_embeddings(model, LONG_DOCUMENT)
    assert len(windows) > 1
    expected = (torch.nn.functional.normalize(windows, dim=-1) * lengths[:, None]).sum(dim=0)
    expected = torch.nn.functional.normalize(expected, dim=0)
    embeddings = model.encode_document([LONG_DOCUMENT, DOCUMENTS[1]], convert_to_tensor=True)
    torch.testing.assert_close(embeddings[0], expected, atol=1e-5, rtol=1e-5)
    truncating = build_model(str(tiny_llama_dir), style=style, max_seq_length=length)
    truncated = truncating.encode_document([LONG_DOCUMENT, DOCUMENTS[1]], convert_to_tensor=True)
    assert not torch.allclose(embeddings[0], truncated[0], atol=1e-3)
    # A text that fits in one window embeds as without chunking.
    torch.testing.assert_close(embeddings[1], truncated[1], atol=1e-6, rtol=1e-6)


def test_max_chunks_is_saved_with_the_model(tiny_llama_dir, tmp_path):
    model = build_model(str(tiny_llama_dir), max_seq_length=32, max_chunks=3)
    model.save(str(tmp_path))
    reloaded = SentenceTransformer(str(tmp_path), trust_remote_code=True)
    assert reloaded[0].max_chunks == 3
    np.testing.assert_array_equal(reloaded.encode_document([LONG_DOCUMENT]), model.encode_document([LONG_DOCUMENT]))


BLOCK_ST_DRAMA = textwrap.dedent(
    """
    import sys
    sys.modules["st_drama"] = None          # `import st_drama` now raises ImportError
    sys.modules["st_drama_modules"] = None
    try:
        import st_drama
    except ImportError:
        pass
    else:
        raise SystemExit("st_drama is importable")
    """
)


def test_saved_folder_loads_without_st_drama_to_identical_embeddings(tiny_llama_dir, tmp_path):
    model = build_model(str(tiny_llama_dir))
    model_dir = tmp_path / "model"
    model.save(str(model_dir))
    expected = model.encode_query(QUERIES)
    script = BLOCK_ST_DRAMA + textwrap.dedent(
        f"""
        import numpy as np
        from sentence_transformers import SentenceTransformer
        model = SentenceTransformer({str(model_dir)!r}, trust_remote_code=True)
        assert type(model[0]).__module__ == "st_drama_modules"
        assert "transformers_modules" in sys.modules[type(model[0]).__init__.__module__].__name__
        np.save({str(tmp_path / "embeddings.npy")!r}, model.encode_query({QUERIES!r}))
        model.save({str(tmp_path / "resaved")!r})
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    np.testing.assert_array_equal(np.load(tmp_path / "embeddings.npy"), expected)
    # A folder re-saved without st_drama still loads (here with st_drama) to the same embeddings.
    resaved = SentenceTransformer(str(tmp_path / "resaved"), trust_remote_code=True)
    np.testing.assert_array_equal(resaved.encode_query(QUERIES), expected)


def test_folder_without_its_shipped_code_still_loads_with_st_drama_installed(tiny_llama_dir, tmp_path):
    model = build_model(str(tiny_llama_dir))
    model.save(str(tmp_path))
    for shipped in tmp_path.glob("*.py"):
        shipped.unlink()
    reloaded = SentenceTransformer(str(tmp_path), trust_remote_code=True)
    np.testing.assert_array_equal(reloaded.encode_query(QUERIES), model.encode_query(QUERIES))


def test_model_pickles_for_multi_process_encoding(tiny_llama_dir):
    import pickle

    model = build_model(str(tiny_llama_dir))
    clone = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(clone.encode_query(QUERIES), model.encode_query(QUERIES))


def test_unknown_style_is_refused(tiny_llama_dir):
    with pytest.raises(ValueError, match="style must be one of"):
        build_model(str(tiny_llama_dir), style="colbert")


@pytest.mark.real_model
def test_default_model_is_bidirectional_and_round_trips(smollm2_dir, tmp_path):
    model = build_model("smollm2-135m", max_seq_length=64)
    backbone = model[0]
    assert backbone.auto_model.config.num_hidden_layers == 30
    # Real weights, real property: the first token's state depends on the last token.
    base = backbone.tokenizer("the wing lift", add_special_tokens=False)["input_ids"]
    changed = backbone.tokenizer("the wing drag", add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        states = backbone(backbone._pad([base, changed]))["token_embeddings"]
    assert not torch.allclose(states[0, 0], states[1, 0], atol=1e-5)

    embeddings = model.encode_query(QUERIES[:1] + DOCUMENTS)
    assert embeddings.shape == (3, 576) and np.isfinite(embeddings).all()
    model.save(str(tmp_path))
    reloaded = SentenceTransformer(str(tmp_path), trust_remote_code=True)
    np.testing.assert_array_equal(reloaded.encode_query(QUERIES[:1] + DOCUMENTS), embeddings)
    shutil.rmtree(tmp_path)

    # Long documents in windows: the real model's embedding is the length-weighted mean of its windows'.
    backbone.max_chunks = 3
    windows, lengths = window_embeddings(model, LONG_DOCUMENT)
    expected = torch.nn.functional.normalize(
        (torch.nn.functional.normalize(windows, dim=-1) * lengths[:, None]).sum(dim=0), dim=0
    )
    chunked = model.encode_document([LONG_DOCUMENT], convert_to_tensor=True)[0]
    assert len(windows) > 1
    torch.testing.assert_close(chunked, expected, atol=1e-4, rtol=1e-4)

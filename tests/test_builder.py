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
from st_drama.models import LlamaBackbone
from st_drama.models.standard import is_standard_form

SENTENCE_TRANSFORMERS_POOLING = "sentence_transformers.sentence_transformer.modules.pooling.Pooling"

QUERIES = ["what is the lift of a wing in a slipstream", "", "heat transfer   "]
DOCUMENTS = [
    "an experimental study of a wing in a propeller slipstream was made in order to determine the lift increase",
    "boundary layer heat transfer at supersonic speeds",
]


def test_drama_style_model_is_made_of_sentence_transformers_own_modules(tiny_llama_dir):
    model = build_model(str(tiny_llama_dir))
    transformer, pooling = model[0], model[1]
    assert [type(module).__name__ for module in model] == ["Transformer", "Pooling", "Normalize"]
    assert is_standard_form(model) and transformer.auto_model.config.is_causal is False
    assert pooling.pooling_mode == "mean" and pooling.include_prompt
    assert model.prompts == {"query": "Query: ", "document": ""}
    embeddings = model.encode_query(QUERIES, convert_to_tensor=True)
    assert embeddings.shape == (3, 64)
    torch.testing.assert_close(embeddings.norm(dim=-1), torch.ones(3))


@pytest.mark.parametrize("padding_side", ["right", "left"])
def test_standard_modules_give_st_dramas_backbone_embeddings(tiny_llama_dir, padding_side):
    """The standard form is exact: the same embeddings as st-drama's backbone (either padding side) for queries and
    documents, batched and one by one, truncated or not."""
    standard = build_model(str(tiny_llama_dir), max_seq_length=24)
    backbone = build_model(str(tiny_llama_dir), max_seq_length=24, standard=False, padding_side=padding_side)
    assert isinstance(backbone[0], LlamaBackbone) and backbone[0].padding_side == padding_side
    texts = [*QUERIES, *DOCUMENTS]
    for encode in ("encode_query", "encode_document"):
        expected = getattr(backbone, encode)(texts, convert_to_tensor=True)
        torch.testing.assert_close(
            getattr(standard, encode)(texts, convert_to_tensor=True), expected, atol=2e-6, rtol=0
        )
        for index, text in enumerate(texts):
            single = getattr(standard, encode)([text], convert_to_tensor=True)[0]
            torch.testing.assert_close(single, expected[index], atol=2e-6, rtol=0)


def test_queries_and_documents_are_framed_differently(tiny_llama_dir):
    for model in (build_model(str(tiny_llama_dir)), build_model(str(tiny_llama_dir), style="llara")):
        as_query = model.encode_query(DOCUMENTS[:1])
        as_document = model.encode_document(DOCUMENTS[:1])
        assert not np.allclose(as_query, as_document)
        # encode() without a prompt frames as a document.
        np.testing.assert_array_equal(model.encode(DOCUMENTS[:1]), as_document)


def assert_prompt_names_frame_as_the_task_methods(model):
    np.testing.assert_array_equal(model.encode(QUERIES, prompt_name="query"), model.encode_query(QUERIES))
    np.testing.assert_array_equal(model.encode(DOCUMENTS, prompt_name="document"), model.encode_document(DOCUMENTS))
    with pytest.raises(ValueError, match="Prompt name 'passage' not found"):
        model.encode(QUERIES, prompt_name="passage")


@pytest.mark.parametrize("style", ["drama", "llara"])
def test_prompt_names_frame_as_encode_query_and_encode_document_fresh_and_reloaded(tiny_llama_dir, tmp_path, style):
    model = build_model(str(tiny_llama_dir), style=style)
    assert_prompt_names_frame_as_the_task_methods(model)
    model.save(str(tmp_path))
    assert_prompt_names_frame_as_the_task_methods(SentenceTransformer(str(tmp_path), trust_remote_code=True))


def test_a_prompt_naming_the_other_task_is_refused(tiny_llama_dir):
    model = build_model(str(tiny_llama_dir), style="llara")
    with pytest.raises(ValueError, match="is this model's 'document' framing, but the task is 'query'"):
        model.encode_query(QUERIES, prompt=model.prompts["document"])
    chunked = build_model(str(tiny_llama_dir), max_chunks=2)  # DRAMA framing in st-drama's backbone
    with pytest.raises(ValueError, match="is this model's 'query' framing, but the task is 'document'"):
        chunked.encode_document(DOCUMENTS, prompt="Query: ")


@pytest.mark.parametrize("style", ["drama", "llara"])
def test_mtebs_own_wrapper_frames_queries_as_queries(tiny_llama_dir, tmp_path, style):
    """MTEB wraps a SentenceTransformer and calls encode_query / encode_document with the model's prompt."""
    from datasets import Dataset
    from evaluation.evaluation_helpers import write_topics_folder
    from mteb.models import SentenceTransformerEncoderWrapper
    from mteb.types import PromptType
    from torch.utils.data import DataLoader

    from st_drama.evaluation import BeirRetrievalTask

    model = build_model(str(tiny_llama_dir), style=style)
    wrapper = SentenceTransformerEncoderWrapper(model)
    task = BeirRetrievalTask(write_topics_folder(tmp_path / "topics"))
    loader = DataLoader(Dataset.from_dict({"text": QUERIES}), batch_size=8)
    for prompt_type, expected in (
        (PromptType.query, model.encode_query),
        (PromptType.document, model.encode_document),
    ):
        encoded = wrapper.encode(
            loader, task_metadata=task.metadata, hf_split="test", hf_subset="default", prompt_type=prompt_type
        )
        np.testing.assert_allclose(encoded, expected(QUERIES), atol=1e-6)


def test_llara_style_uses_causal_attention_and_prompt_token_pooling(tiny_llama_dir):
    model = build_model(str(tiny_llama_dir), style="llara")
    assert model[0].attention == "causal" and model[1].mode == "prompt_tokens"
    assert model.encode_query(QUERIES).shape == (3, 64)


def test_matryoshka_truncation(tiny_llama_dir):
    model = build_model(str(tiny_llama_dir), truncate_dim=16)
    assert model.encode_document(DOCUMENTS).shape == (2, 16)


@pytest.mark.parametrize(
    ("style", "module_types"),
    [
        ("drama", ["sentence_transformers.base.modules.transformer.Transformer", SENTENCE_TRANSFORMERS_POOLING]),
        ("llara", ["st_drama_modules.LlamaBackbone", "st_drama_modules.TokenPooling"]),
    ],
)
def test_saved_model_reloads_to_identical_embeddings(tiny_llama_dir, tmp_path, style, module_types):
    model = build_model(str(tiny_llama_dir), style=style, max_seq_length=48)
    model.save(str(tmp_path))
    modules = json.loads((tmp_path / "modules.json").read_text())
    assert [entry["type"] for entry in modules[:2]] == module_types

    reloaded = SentenceTransformer(str(tmp_path), trust_remote_code=True)
    assert type(reloaded[0]) is type(model[0])  # the installed classes, not the shipped copies
    assert reloaded.max_seq_length == 48
    np.testing.assert_array_equal(reloaded.encode_query(QUERIES), model.encode_query(QUERIES))
    np.testing.assert_array_equal(reloaded.encode_document(DOCUMENTS), model.encode_document(DOCUMENTS))
    # build_model on a saved folder loads it as it is.
    np.testing.assert_array_equal(build_model(str(tmp_path)).encode_query(QUERIES), model.encode_query(QUERIES))


def test_standard_form_is_refused_where_it_cannot_be_exact(tiny_llama_dir):
    with pytest.raises(ValueError, match="standard=True"):
        build_model(str(tiny_llama_dir), style="llara", standard=True)
    assert isinstance(build_model(str(tiny_llama_dir), max_chunks=2)[0], LlamaBackbone)
    assert isinstance(build_model(str(tiny_llama_dir), padding_side="left")[0], LlamaBackbone)


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


@pytest.mark.parametrize("style", ["drama", "llara"])
def test_saved_folder_loads_without_st_drama_to_identical_embeddings(tiny_llama_dir, tmp_path, style):
    """A DRAMA-style folder is sentence-transformers' own modules: plain SentenceTransformer(folder) loads it, no
    trust_remote_code. A LLaRA-style folder ships st-drama's module code and loads with trust_remote_code=True."""
    model = build_model(str(tiny_llama_dir), style=style)
    model_dir = tmp_path / "model"
    model.save(str(model_dir))
    expected = model.encode_query(QUERIES)
    load = (
        "SentenceTransformer({path!r})"
        if style == "drama"
        else "SentenceTransformer({path!r}, trust_remote_code=True)"
    )
    check = (
        "assert all(type(module).__module__.startswith('sentence_transformers.') for module in model)"
        if style == "drama"
        else "assert 'transformers_modules' in sys.modules[type(model[0]).__init__.__module__].__name__"
    )
    script = BLOCK_ST_DRAMA + textwrap.dedent(
        f"""
        import numpy as np
        from sentence_transformers import SentenceTransformer
        model = {load.format(path=str(model_dir))}
        {check}
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
    model = build_model(str(tiny_llama_dir), style="llara")
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
def test_default_model_is_bidirectional_exact_and_round_trips(smollm2_dir, tmp_path):
    model = build_model("smollm2-135m", max_seq_length=64)
    transformer = model[0]
    assert transformer.auto_model.config.num_hidden_layers == 30
    # Real weights, real property: the first token's state depends on the last token.
    features = transformer.preprocess(["the wing lift", "the wing drag"])
    with torch.no_grad():
        states = transformer(features)["token_embeddings"]
    assert not torch.allclose(states[0, 0], states[1, 0], atol=1e-5)
    # ... and the standard modules give what st-drama's backbone gives.
    backbone = build_model("smollm2-135m", max_seq_length=64, standard=False)
    texts = QUERIES[:1] + DOCUMENTS + [LONG_DOCUMENT]
    for encode in ("encode_query", "encode_document"):
        np.testing.assert_allclose(getattr(model, encode)(texts), getattr(backbone, encode)(texts), atol=1e-5)

    embeddings = model.encode_query(texts)
    assert embeddings.shape == (4, 576) and np.isfinite(embeddings).all()
    model.save(str(tmp_path))
    assert json.loads((tmp_path / "config.json").read_text())["is_causal"] is False
    reloaded = SentenceTransformer(str(tmp_path))
    np.testing.assert_array_equal(reloaded.encode_query(texts), embeddings)
    shutil.rmtree(tmp_path)

    # Long documents in windows (st-drama's backbone): the embedding is the length-weighted mean of its windows'.
    backbone[0].max_chunks = 3
    windows, lengths = window_embeddings(backbone, LONG_DOCUMENT)
    expected = torch.nn.functional.normalize(
        (torch.nn.functional.normalize(windows, dim=-1) * lengths[:, None]).sum(dim=0), dim=0
    )
    chunked = backbone.encode_document([LONG_DOCUMENT], convert_to_tensor=True)[0]
    assert len(windows) > 1
    torch.testing.assert_close(chunked, expected, atol=1e-4, rtol=1e-4)

"""The released DRAMA and LLaRA checkpoints, converted: tiny random checkpoints written in exactly the releases'
layouts, checked against independent implementations of each release's documented usage (plain transformers and
torch, no st_drama code)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import cranfield_texts
from sentence_transformers import SentenceTransformer

from st_drama.cli import main
from st_drama.convert import (
    DRAMA_DEMO_SCORES,
    ReleaseUnavailableError,
    convert_release,
    detect_release,
    drama_matryoshka_dims,
)

QUERIES = ["what is the lift of a wing in a slipstream", "heat transfer at supersonic speeds"]
DOCUMENTS = [
    "an experimental study of a wing in a propeller slipstream was made in order to determine the lift increase",
    "boundary layer heat transfer at supersonic speeds was measured on a flat plate",
    "a short one",
]
LLARA_QUERY = '", predict the following passage within eight words: <s9><s10><s11><s12><s13><s14><s15><s16>'
LLARA_PASSAGE = '", summarize the above passage within eight words: <s1><s2><s3><s4><s5><s6><s7><s8>'


def tiny_llama_weights(folder: Path, vocab_size: int, causal_lm: bool, bos: int, eos: int, pad: int) -> dict:
    from transformers import LlamaConfig, LlamaForCausalLM, LlamaModel

    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        bos_token_id=bos,
        eos_token_id=eos,
        pad_token_id=pad,
    )
    torch.manual_seed(0)
    model = (LlamaForCausalLM if causal_lm else LlamaModel)(config)
    model.save_pretrained(folder)
    return json.loads((folder / "config.json").read_text())


def write_drama_release(folder: Path) -> Path:
    """DRAMA's layout: a Llama-3-style byte-level tokenizer that adds <|begin_of_text|>, LlamaModel weights, and a
    config naming the remote DramaModel (auto_map to drama_modeling.py)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    folder.mkdir(parents=True)
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    specials = ["<|begin_of_text|>", "<|end_of_text|>"]
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tokenizer.train_from_iterator(cranfield_texts(), trainer=trainer)
    bos, eos = tokenizer.token_to_id(specials[0]), tokenizer.token_to_id(specials[1])
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A $B:1", special_tokens=[(specials[0], bos)]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token=specials[0], eos_token=specials[1], pad_token=specials[1]
    )
    fast.save_pretrained(folder)
    config = tiny_llama_weights(folder, len(fast), causal_lm=False, bos=bos, eos=eos, pad=eos)
    config["architectures"] = ["DramaModel"]
    config["auto_map"] = {"AutoModel": "drama_modeling.DramaModel"}
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    (folder / "drama_modeling.py").write_text('"""Stands in for the release\'s remote code; never executed."""\n')
    return folder


def drama_reference(folder: Path, texts: list[str], query: bool, dim: int | None = None) -> torch.Tensor:
    """DRAMA's documented usage, one text at a time: "Query: " before queries, the tokenizer's own special tokens
    and EOS, bidirectional attention, mean over every token, truncated to ``dim``, then normalised."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaModel

    tokenizer = AutoTokenizer.from_pretrained(folder)
    config = LlamaConfig.from_pretrained(folder)
    model = LlamaModel.from_pretrained(folder, config=config).eval()
    embeddings = []
    for text in texts:
        ids = tokenizer(("Query: " if query else "") + text)["input_ids"] + [tokenizer.eos_token_id]
        input_ids = torch.tensor([ids])
        everything = torch.zeros(1, 1, len(ids), len(ids))  # additive 4D mask: every token sees every token
        with torch.no_grad():
            states = model(input_ids=input_ids, attention_mask=everything).last_hidden_state[0]
        pooled = states.mean(dim=0)[:dim]
        embeddings.append(torch.nn.functional.normalize(pooled, dim=-1))
    return torch.stack(embeddings)


def write_llara_release(folder: Path) -> Path:
    """LLaRA's layout: a Llama-2-style SentencePiece-like tokenizer (metaspace with a dummy prefix, <s> added before
    a text, left padding) carrying <s1>..<s16>, and LlamaForCausalLM weights."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    folder.mkdir(parents=True)
    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
    tokenizer.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="first")
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<unk>", "<s>", "</s>"])
    tokenizer.train_from_iterator(cranfield_texts(), trainer=trainer)
    tokenizer.add_special_tokens([AddedToken(f"<s{index}>", normalized=False) for index in range(1, 17)])
    bos = tokenizer.token_to_id("<s>")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B:1", special_tokens=[("<s>", bos)]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<unk>",
        padding_side="left",
    )
    fast.save_pretrained(folder)
    tiny_llama_weights(folder, len(fast), causal_lm=True, bos=bos, eos=fast.eos_token_id, pad=fast.pad_token_id)
    return folder


def llara_reference(folder: Path, texts: list[str], query: bool) -> torch.Tensor:
    """LLaRA's README usage: '"' with BOS, the text without special tokens, the suffix without its BOS; padded (left,
    to a multiple of 8) in one batch; the mean of the last layer's last eight states, normalised."""
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModel.from_pretrained(folder).eval()
    prefix_ids = tokenizer('"')["input_ids"]
    suffix_ids = tokenizer(LLARA_QUERY if query else LLARA_PASSAGE)["input_ids"][1:]
    rows = []
    for text in texts:
        ids = prefix_ids + tokenizer(text, add_special_tokens=False)["input_ids"] + suffix_ids
        rows.append({"input_ids": ids, "attention_mask": [1] * len(ids)})
    batch = tokenizer.pad(rows, padding=True, pad_to_multiple_of=8, return_tensors="pt")
    with torch.no_grad():
        states = model(**batch, output_hidden_states=True).hidden_states[-1][:, -8:, :]
    return torch.nn.functional.normalize(states.mean(dim=1), dim=-1)


@pytest.fixture(scope="module")
def drama_release(tmp_path_factory) -> Path:
    return write_drama_release(tmp_path_factory.mktemp("release") / "drama-base")


@pytest.fixture(scope="module")
def llara_release(tmp_path_factory) -> Path:
    return write_llara_release(tmp_path_factory.mktemp("release") / "LLARA-passage")


def test_releases_are_told_apart_by_their_layout(drama_release, llara_release, tiny_llama_dir):
    assert detect_release(drama_release) == "drama" and detect_release(llara_release) == "llara"
    with pytest.raises(ValueError, match=r"neither a DRAMA release .* nor a LLaRA release"):
        detect_release(tiny_llama_dir)


def test_converted_drama_is_a_standard_folder_matching_its_documented_usage(drama_release, tmp_path):
    output = tmp_path / "drama"
    convert_release(drama_release, output)
    modules = json.loads((output / "modules.json").read_text())
    assert all(entry["type"].startswith("sentence_transformers.") for entry in modules)
    assert json.loads((output / "config.json").read_text())["is_causal"] is False
    assert not list(output.glob("*.py"))  # no remote code travels along
    model = SentenceTransformer(str(output))  # no trust_remote_code
    for texts, query in ((QUERIES, True), (DOCUMENTS, False)):
        expected = drama_reference(drama_release, texts, query)
        encode = model.encode_query if query else model.encode_document
        torch.testing.assert_close(encode(texts, convert_to_tensor=True), expected, atol=2e-5, rtol=0)
    # Matryoshka: truncate_dim gives the reference's truncate-then-normalise cosines.
    small = SentenceTransformer(str(output), truncate_dim=32)
    expected = (
        drama_reference(drama_release, QUERIES, True, 32) @ drama_reference(drama_release, DOCUMENTS, False, 32).T
    )
    scores = small.similarity(small.encode_query(QUERIES), small.encode_document(DOCUMENTS))
    torch.testing.assert_close(scores, expected, atol=2e-5, rtol=0)
    card = (output / "README.md").read_text()
    assert str(DRAMA_DEMO_SCORES["full"]) in card and "truncate_dim" in card and "dpr-scale issue #20" in card
    provenance = json.loads((output / "st_drama_conversion.json").read_text())
    assert provenance["release"] == "drama" and provenance["matryoshka_dims"] == drama_matryoshka_dims(64) == []


def test_drama_matryoshka_sizes_follow_the_releases():
    assert drama_matryoshka_dims(768) == [512, 256]
    assert drama_matryoshka_dims(1024) == [512, 256]
    assert drama_matryoshka_dims(2048) == [768, 512, 256]


def test_converted_llara_reproduces_the_release_usage_code(llara_release, tmp_path):
    output = tmp_path / "llara"
    assert main(["convert", str(llara_release), str(output)]) == 0
    model = SentenceTransformer(str(output), trust_remote_code=True)
    for texts, query in ((QUERIES, True), (DOCUMENTS, False)):
        expected = llara_reference(llara_release, texts, query)
        encode = model.encode_query if query else model.encode_document
        torch.testing.assert_close(encode(texts, convert_to_tensor=True), expected, atol=2e-5, rtol=0)
        # One text at a time, and through the prompt names, the same.
        single = torch.stack([encode([text], convert_to_tensor=True)[0] for text in texts])
        torch.testing.assert_close(single, expected, atol=2e-5, rtol=0)
    np.testing.assert_allclose(model.encode(QUERIES, prompt_name="query"), model.encode_query(QUERIES), atol=1e-6)


def test_converted_llara_loads_without_st_drama(llara_release, tmp_path):
    output = tmp_path / "llara"
    convert_release(llara_release, output, release="llara")
    expected = llara_reference(llara_release, QUERIES, True).numpy()
    script = textwrap.dedent(
        f"""
        import sys
        sys.modules["st_drama"] = None
        import numpy as np
        from sentence_transformers import SentenceTransformer
        model = SentenceTransformer({str(output)!r}, trust_remote_code=True)
        np.save({str(tmp_path / "queries.npy")!r}, model.encode_query({QUERIES!r}))
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    np.testing.assert_allclose(np.load(tmp_path / "queries.npy"), expected, atol=2e-5)


def test_a_hub_id_offline_and_bad_folders_get_clear_errors(tmp_path, capsys, monkeypatch, tiny_llama_dir):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ReleaseUnavailableError, match=r"facebook/drama-base is not a local folder .* --local-dir"):
        convert_release("facebook/drama-base", tmp_path / "out")
    assert not (tmp_path / "out").exists()
    (tmp_path / "empty").mkdir()
    assert main(["convert", str(tmp_path / "empty"), str(tmp_path / "out")]) == 2
    assert "missing config.json" in capsys.readouterr().err
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "something").write_text("x")
    assert main(["convert", str(tiny_llama_dir), str(tmp_path / "full"), "--release", "drama"]) == 2
    assert "is not empty" in capsys.readouterr().err

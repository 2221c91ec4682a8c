from __future__ import annotations

import itertools
import json

import pytest
import torch

from st_drama.corpus import CorpusFormatError
from st_drama.pruning import pack_token_blocks, perplexity, token_blocks
from st_drama.pruning.calibration import describe_text_source, iter_texts

from .pruning_helpers import (
    load_model,
    load_tokenizer,
    save_tiny_llama,
)


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    return save_tiny_llama(tmp_path_factory.mktemp("tiny_calibration"))


@pytest.fixture(scope="module")
def tokenizer(tiny_folder):
    return load_tokenizer(tiny_folder)


def test_blocks_hold_the_texts_in_order_separated_by_eos(tokenizer):
    texts = ["the wing", "pressure drag", "", "supersonic flow over a cone"]
    blocks = pack_token_blocks(tokenizer, texts, max_tokens=1000, sequence_length=5)
    stream = torch.cat(blocks.blocks).tolist()
    expected = []
    for text in texts:
        if text:
            expected += tokenizer(text, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    # Everything but a last single token (too short to predict anything from) is kept, in order.
    assert stream == expected[: len(stream)] and len(expected) - len(stream) < 2
    assert all(block.numel() == 5 for block in blocks.blocks[:-1]) and blocks.texts_read == 3


def test_the_token_budget_is_respected_and_stops_reading(tokenizer):
    read = []

    def endless():
        for index in itertools.count():
            read.append(index)
            yield f"text number {index} about boundary layers"

    blocks = pack_token_blocks(tokenizer, endless(), max_tokens=100, sequence_length=32)
    assert blocks.num_tokens == 100
    assert [block.numel() for block in blocks.blocks] == [32, 32, 32, 4]
    assert len(read) < 20  # an endless stream is read only as far as the budget needs


def test_batches_never_mix_lengths(tokenizer):
    blocks = pack_token_blocks(tokenizer, ["a b c d e f g h i j k l m n o p"] * 3, max_tokens=70, sequence_length=16)
    shapes = [tuple(batch.shape) for batch in blocks.batches(3)]
    assert sum(rows * length for rows, length in shapes) == blocks.num_tokens
    assert all(length in (16, blocks.blocks[-1].numel()) for _, length in shapes)


def test_corpus_paths_and_datasets_are_read(tokenizer, tmp_path):
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text(
        "\n".join(json.dumps({"_id": str(i), "title": "T", "text": f"doc {i}"}) for i in range(3)), encoding="utf-8"
    )
    assert list(iter_texts(corpus)) == ["T doc 0", "T doc 1", "T doc 2"]
    assert list(iter_texts(str(corpus))) == ["T doc 0", "T doc 1", "T doc 2"]
    datasets = pytest.importorskip("datasets")
    dataset = datasets.Dataset.from_dict({"text": ["x y", "z"]})
    assert list(iter_texts(dataset)) == ["x y", "z"]
    assert list(iter_texts(dataset["text"])) == ["x y", "z"]  # a column
    default = token_blocks(tokenizer, None, max_tokens=64, sequence_length=32)
    assert "cranfield" in default.source and default.num_tokens == 64


def test_in_memory_texts_are_told_apart_by_content():
    assert describe_text_source(["a", "b"]) == describe_text_source(["a", "b"])
    assert describe_text_source(["a", "b"]) != describe_text_source(["a", "c"])


def test_bad_calibration_text_is_reported(tokenizer, tmp_path):
    with pytest.raises(CorpusFormatError, match="Calibration text 1 is a int"):
        pack_token_blocks(tokenizer, iter_texts(["fine", 3]), max_tokens=100)
    with pytest.raises(ValueError, match="hold no tokens"):
        pack_token_blocks(tokenizer, ["", "   "], max_tokens=100)
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"_id": "1", "text": "ok"}\n{not json}\n', encoding="utf-8")
    with pytest.raises(CorpusFormatError, match=r"broken\.jsonl:2"):
        list(iter_texts(broken))


def test_perplexity_is_the_exponent_of_the_mean_next_token_loss(tiny_folder, tokenizer):
    model = load_model(tiny_folder)
    blocks = pack_token_blocks(tokenizer, ["laminar flow over a flat plate at high speed"] * 4, 90, sequence_length=20)
    total, count = 0.0, 0
    with torch.no_grad():
        for block in blocks.blocks:
            output = model(input_ids=block[None], labels=block[None])
            total += output.loss.item() * (block.numel() - 1)
            count += block.numel() - 1
    assert perplexity(model, blocks, batch_size=3) == pytest.approx(torch.tensor(total / count).exp().item(), rel=1e-5)

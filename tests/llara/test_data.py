from __future__ import annotations

import json

import pytest
from datasets import Dataset

from st_drama.corpus import CorpusFormatError
from st_drama.llara import build_pretraining_dataset, chunk_document


def test_chunks_are_consecutive_and_a_short_tail_joins_the_previous_chunk():
    ids = list(range(10))
    assert chunk_document(ids, 4, min_chunk_tokens=2) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert chunk_document(ids, 4, min_chunk_tokens=3) == [[0, 1, 2, 3], [4, 5, 6, 7, 8, 9]]
    assert chunk_document([1, 2], 4, min_chunk_tokens=3) == [[1, 2]]


def test_rows_pair_each_chunk_with_the_next_and_short_documents_give_ebae_rows(tiny_llama_dir, tmp_path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama_dir)
    long_text = "the pressure distribution on a swept wing at transonic speed was measured in a wind tunnel " * 4
    rows = [{"_id": "long", "text": long_text}, {"_id": "short", "text": "a short note"}]
    (tmp_path / "corpus.jsonl").write_text("\n".join(json.dumps(row) for row in rows), encoding="utf-8")
    dataset = build_pretraining_dataset(tmp_path, tokenizer, chunk_tokens=16)

    assert dataset.column_names == ["text", "next"]
    texts, nexts = dataset["text"], dataset["next"]
    long_chunks = len(texts) - 1
    assert long_chunks >= 3
    assert nexts[: long_chunks - 1] == texts[1:long_chunks]  # each chunk predicts the following one
    assert nexts[long_chunks - 1] == ""  # the last chunk of a document: EBAE only
    assert (texts[-1], nexts[-1]) == ("a short note", "")
    # Every token of the document is used once, in order.
    assert "".join(texts[:long_chunks]) == tokenizer.decode(
        tokenizer(long_text, add_special_tokens=False)["input_ids"]
    )


def test_malformed_corpus_names_file_and_line(tiny_llama_dir, tmp_path):
    from transformers import AutoTokenizer

    (tmp_path / "corpus.jsonl").write_text('{"_id": "1", "text": "fine"}\n{"_id": "2", "txt": "typo"}\n')
    with pytest.raises(CorpusFormatError, match=r"corpus.jsonl:2: document '2' has no field 'text'"):
        build_pretraining_dataset(tmp_path, AutoTokenizer.from_pretrained(tiny_llama_dir))


def test_dataset_input_and_document_limit(tiny_llama_dir):
    from transformers import AutoTokenizer

    corpus = Dataset.from_dict({"_id": ["a", "b", "c"], "text": ["one text", "two text", "three text"]})
    dataset = build_pretraining_dataset(corpus, AutoTokenizer.from_pretrained(tiny_llama_dir), max_documents=2)
    assert dataset["text"] == ["one text", "two text"]

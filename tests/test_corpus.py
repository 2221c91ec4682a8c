from __future__ import annotations

import json

import pytest
from datasets import Dataset

from st_drama.corpus import (
    CorpusFormatError,
    ReadReport,
    bundled_collection,
    load_corpus,
    load_qrels,
    load_queries,
)


def write_lines(path, lines):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_bundled_cranfield_is_complete():
    folder = bundled_collection("cranfield")
    documents = load_corpus(folder)
    assert len(documents) == 1400
    assert len(load_queries(folder)) == 225
    qrels = load_qrels(folder)
    assert sum(len(judged) for judged in qrels.values()) == 1837
    assert (folder / "PROVENANCE.md").is_file()


def test_empty_documents_are_kept_and_counted_unless_refused():
    report = ReadReport()
    documents = load_corpus("cranfield", report=report)
    assert len(documents) == 1400 and report.empty_documents == 2 and report.skipped == {}
    assert documents[470].doc_id == "471" and documents[470].full_text == ""
    with pytest.raises(CorpusFormatError, match=r"corpus.jsonl:471: document '471' has an empty 'text'"):
        load_corpus("cranfield", keep_empty=False)
    report = ReadReport()
    assert len(load_corpus("cranfield", keep_empty=False, skip_malformed=True, report=report)) == 1398
    assert report.skipped == {"empty text": 2}


def test_bytes_that_are_not_utf8_are_named_by_their_line(tmp_path):
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_bytes(b'{"_id": "a", "text": "fine"}\n{"_id": "b", "text": "caf\xe9"}\n{"_id": "c", "text": "ok"}\n')
    with pytest.raises(CorpusFormatError, match=r"corpus.jsonl:2: not UTF-8 text"):
        load_corpus(corpus)
    report = ReadReport()
    assert [document.doc_id for document in load_corpus(corpus, skip_malformed=True, report=report)] == ["a", "c"]
    assert report.skipped == {"not UTF-8": 1}
    qrels = tmp_path / "test.tsv"
    qrels.write_bytes(b"query-id\tcorpus-id\tscore\nq1\ta\t1\nq\xff\tb\t1\n")
    with pytest.raises(CorpusFormatError, match=r"test.tsv:3: not UTF-8 text"):
        load_qrels(qrels)


def test_malformed_json_names_file_and_line(tmp_path):
    corpus = write_lines(
        tmp_path / "corpus.jsonl",
        [
            json.dumps({"_id": "a", "text": "fine"}),
            '{"_id": "b", "text": "broken',
            json.dumps({"_id": "c", "text": "ok"}),
        ],
    )
    with pytest.raises(CorpusFormatError, match=r"corpus.jsonl:2: malformed JSON"):
        load_corpus(tmp_path)
    report = ReadReport()
    documents = load_corpus(corpus, skip_malformed=True, report=report)
    assert [document.doc_id for document in documents] == ["a", "c"]
    assert report.skipped == {"malformed JSON": 1}


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"text": "no id"}, r":1: missing field '_id'"),
        ({"_id": "x", "title": "only a title"}, r":1: document 'x' has no field 'text'"),
        ({"_id": "x", "text": 3}, r"fields 'text' and 'title' must be strings"),
        (["not", "an", "object"], r":1: expected a JSON object, got list"),
    ],
)
def test_bad_rows_name_the_field(tmp_path, row, message):
    write_lines(tmp_path / "corpus.jsonl", [json.dumps(row)])
    with pytest.raises(CorpusFormatError, match=message):
        load_corpus(tmp_path)


def test_duplicate_ids_are_refused(tmp_path):
    write_lines(
        tmp_path / "corpus.jsonl", [json.dumps({"_id": "a", "text": "x"}), json.dumps({"_id": "a", "text": "y"})]
    )
    with pytest.raises(CorpusFormatError, match=r":2: duplicate document id 'a'"):
        load_corpus(tmp_path)


def test_text_folder_and_dataset_sources(tmp_path):
    (tmp_path / "docs" / "sub").mkdir(parents=True)
    (tmp_path / "docs" / "one.txt").write_text("first document", encoding="utf-8")
    (tmp_path / "docs" / "sub" / "two.md").write_text("second document", encoding="utf-8")
    documents = load_corpus(tmp_path / "docs")
    assert [(d.doc_id, d.text) for d in documents] == [("one", "first document"), ("sub/two", "second document")]

    dataset = Dataset.from_dict({"id": ["p", "q"], "title": ["T", ""], "text": ["body", "other"]})
    documents = load_corpus(dataset)
    assert [(d.doc_id, d.full_text) for d in documents] == [("p", "T body"), ("q", "other")]
    with pytest.raises(CorpusFormatError, match="no 'text' column"):
        load_corpus(Dataset.from_dict({"body": ["x"]}))
    assert [d.text for d in load_corpus(["plain", "strings"])] == ["plain", "strings"]


def test_queries_and_qrels_errors_name_file_and_line(tmp_path):
    write_lines(
        tmp_path / "queries.jsonl", [json.dumps({"_id": "1", "text": "q"}), json.dumps({"_id": "2", "text": " "})]
    )
    with pytest.raises(CorpusFormatError, match=r"queries.jsonl:2: query '2' has a missing or empty 'text'"):
        load_queries(tmp_path)
    (tmp_path / "qrels").mkdir()
    (tmp_path / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n1\td1\tx\n", encoding="utf-8")
    with pytest.raises(CorpusFormatError, match=r"test.tsv:2: field 'score' is not a number"):
        load_qrels(tmp_path)
    (tmp_path / "qrels" / "test.tsv").write_text("q\td\n", encoding="utf-8")
    with pytest.raises(CorpusFormatError, match=r"test.tsv:1: expected the header"):
        load_qrels(tmp_path)


def test_unusable_path_is_named(tmp_path):
    with pytest.raises(CorpusFormatError, match="not a BEIR folder"):
        load_corpus(tmp_path / "missing.csv")

"""Reading corpora, queries and relevance judgements: BEIR folders, JSONL files, text folders, datasets.

One policy for every command: a malformed row (bad JSON, bytes that are not UTF-8, a missing or non-text field, a
duplicate id) raises :class:`CorpusFormatError` naming the file, the line and the field, unless the caller asks to
skip bad rows (``skip_malformed=True``, ``--skip-malformed``), in which case they are counted in a
:class:`ReadReport` and logged, never dropped silently. A document with an empty text is a valid row (test
collections have some, and evaluation must keep every judged document): it is kept and counted, and makes no
training rows.
"""

from __future__ import annotations

import csv
import json
import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

BUNDLED_COLLECTIONS = ("cranfield",)
TEXT_FILE_SUFFIXES = (".txt", ".md")


class CorpusFormatError(ValueError):
    """A corpus, query or qrels row that cannot be used; the message names file, line and field."""


@dataclass(frozen=True)
class Document:
    doc_id: str
    text: str
    title: str = ""

    @property
    def full_text(self) -> str:
        """Title and text as one string, the way BEIR and MTEB embed a document."""
        return f"{self.title} {self.text}".strip() if self.title else self.text


@dataclass
class ReadReport:
    """What a reader skipped and why (only filled when skipping is allowed), and how many documents were empty."""

    skipped: dict[str, int] = field(default_factory=dict)
    empty_documents: int = 0

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1

    @property
    def total_skipped(self) -> int:
        return sum(self.skipped.values())


def bundled_collection(name: str = "cranfield") -> Path:
    """Path of a BEIR-layout collection shipped inside the package (see its PROVENANCE.md)."""
    if name not in BUNDLED_COLLECTIONS:
        raise ValueError(f"No bundled collection {name!r}; bundled: {BUNDLED_COLLECTIONS}.")
    return Path(str(resources.files("st_drama") / "data" / name))


def resolve_collection_path(name_or_path: str | os.PathLike) -> Path:
    """A bundled collection's name (``"cranfield"``) or any path."""
    text = str(name_or_path)
    if text in BUNDLED_COLLECTIONS and not Path(text).exists():
        return bundled_collection(text)
    return Path(text)


def read_jsonl(path: str | os.PathLike) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line_number, object)`` for each non-blank line; malformed JSON names file and line."""
    path = Path(path)
    for line_number, line in _lines(path):
        if line.strip():
            yield line_number, _parse_json_object(line, f"{path}:{line_number}")


def load_corpus(
    source: str | os.PathLike | Iterable[Any],
    skip_malformed: bool = False,
    report: ReadReport | None = None,
    keep_empty: bool = True,
) -> list[Document]:
    """Documents from a BEIR folder (its ``corpus.jsonl``), a JSONL file, a folder of ``.txt``/``.md`` files,
    a ``datasets.Dataset`` (columns ``_id``/``id``, ``text``, optional ``title``) or an iterable of strings.

    Args:
        source: Where the documents are.
        skip_malformed: Skip and count bad rows (malformed JSON, missing or empty text, duplicate id) in ``report``
            instead of raising :class:`CorpusFormatError`.
        report: Receives the skip counts.
        keep_empty: Keep documents whose title and text are empty (the default: a valid row, counted in
            ``report.empty_documents``); False makes them bad rows.

    Returns:
        The documents in source order.
    """
    report = report if report is not None else ReadReport()
    policy = _RowPolicy(skip_malformed=skip_malformed, keep_empty=keep_empty, report=report)
    if isinstance(source, (str, os.PathLike)):
        documents = _load_corpus_path(resolve_collection_path(source), policy)
    else:
        documents = _load_corpus_rows(source, policy)
    if report.total_skipped:
        logger.warning(f"Skipped {report.total_skipped} malformed corpus rows (--skip-malformed): {report.skipped}")
    report.empty_documents = sum(1 for document in documents if not document.full_text.strip())
    if report.empty_documents:
        logger.info(f"{report.empty_documents} of {len(documents)} documents have no text; they are kept.")
    if not any(document.full_text.strip() for document in documents):
        raise CorpusFormatError(f"The corpus {str(source)!r} holds no document with text.")
    return documents


@dataclass
class _RowPolicy:
    """What to do with a bad row: raise (default) or skip and count it; whether empty documents are bad."""

    skip_malformed: bool
    keep_empty: bool
    report: ReadReport

    def reject(self, error: CorpusFormatError, reason: str) -> None:
        if not self.skip_malformed:
            raise error
        self.report.skip(reason)


def _load_corpus_path(path: Path, policy: _RowPolicy) -> list[Document]:
    if path.is_dir() and (path / "corpus.jsonl").is_file():
        return _load_corpus_jsonl(path / "corpus.jsonl", policy)
    if path.is_dir():
        return _load_text_folder(path, policy)
    if path.is_file() and path.suffix == ".jsonl":
        return _load_corpus_jsonl(path, policy)
    if path.is_file() and path.suffix in TEXT_FILE_SUFFIXES:
        return _load_text_files([path], path.parent, policy)
    raise CorpusFormatError(
        f"{path}: not a BEIR folder (with corpus.jsonl), a .jsonl file, or a folder of text files."
    )


def _load_corpus_jsonl(path: Path, policy: _RowPolicy) -> list[Document]:
    documents: list[Document] = []
    seen_ids: set[str] = set()
    for line_number, line in _lines(path, policy):
        if not line.strip():
            continue
        where = f"{path}:{line_number}"
        try:
            row = _parse_json_object(line, where)
        except CorpusFormatError as error:
            policy.reject(error, "malformed JSON")
            continue
        document = _checked_document(row, where, seen_ids, policy)
        if document is not None:
            documents.append(document)
    return documents


def _lines(path: Path, policy: _RowPolicy | None = None) -> Iterator[tuple[int, str]]:
    """``(line_number, text)`` of each line, decoded as UTF-8 line by line, so that bytes that are not UTF-8 are
    named by their line (and, when the policy allows, skipped and counted)."""
    with open(path, "rb") as handle:
        for line_number, raw in enumerate(handle, start=1):
            try:
                yield line_number, raw.decode("utf-8")
            except UnicodeDecodeError as error:
                problem = CorpusFormatError(
                    f"{path}:{line_number}: not UTF-8 text ({error.reason} at byte {error.start})"
                )
                if policy is None:
                    raise problem from error
                policy.reject(problem, "not UTF-8")


def _parse_json_object(line: str, where: str) -> dict[str, Any]:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as error:
        raise CorpusFormatError(f"{where}: malformed JSON ({error.msg})") from error
    if not isinstance(row, dict):
        raise CorpusFormatError(f"{where}: expected a JSON object, got {type(row).__name__}")
    return row


def _checked_document(row: dict[str, Any], where: str, seen_ids: set[str], policy: _RowPolicy) -> Document | None:
    """The row as a Document, or None when the policy skips it (counted in the report)."""
    try:
        document = _document_from_row(row, where)
    except CorpusFormatError as error:
        policy.reject(error, "invalid row")
        return None
    if not document.full_text.strip() and not policy.keep_empty:
        error = CorpusFormatError(f"{where}: document {document.doc_id!r} has an empty 'text' and no title")
        policy.reject(error, "empty text")
        return None
    if document.doc_id in seen_ids:
        policy.reject(CorpusFormatError(f"{where}: duplicate document id {document.doc_id!r}"), "duplicate id")
        return None
    seen_ids.add(document.doc_id)
    return document


def _document_from_row(row: dict[str, Any], where: str) -> Document:
    doc_id = row.get("_id", row.get("id"))
    if doc_id is None or str(doc_id).strip() == "":
        raise CorpusFormatError(f"{where}: missing field '_id' (or 'id')")
    if "text" not in row:
        raise CorpusFormatError(f"{where}: document {doc_id!r} has no field 'text'")
    text, title = row["text"], row.get("title") or ""
    if not isinstance(text, str) or not isinstance(title, str):
        raise CorpusFormatError(f"{where}: document {doc_id!r}: fields 'text' and 'title' must be strings")
    return Document(doc_id=str(doc_id), text=text, title=title)


def _load_text_folder(folder: Path, policy: _RowPolicy) -> list[Document]:
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in TEXT_FILE_SUFFIXES)
    if not files:
        raise CorpusFormatError(f"{folder}: no corpus.jsonl and no {TEXT_FILE_SUFFIXES} files inside.")
    return _load_text_files(files, folder, policy)


def _load_text_files(files: list[Path], root: Path, policy: _RowPolicy) -> list[Document]:
    documents = []
    seen_ids: set[str] = set()
    for file_path in files:
        try:
            text = file_path.read_text(encoding="utf-8")
        except UnicodeDecodeError as error:
            policy.reject(CorpusFormatError(f"{file_path}: not UTF-8 text ({error})"), "not UTF-8")
            continue
        row = {"_id": str(file_path.relative_to(root).with_suffix("")), "text": text}
        document = _checked_document(row, str(file_path), seen_ids, policy)
        if document is not None:
            documents.append(document)
    return documents


def _load_corpus_rows(rows: Iterable[Any], policy: _RowPolicy) -> list[Document]:
    """A ``datasets.Dataset`` (or any iterable of dicts) or plain strings."""
    column_names = getattr(rows, "column_names", None)
    if column_names is not None and "text" not in column_names:
        raise CorpusFormatError(f"The dataset has no 'text' column (columns: {column_names}).")
    documents: list[Document] = []
    seen_ids: set[str] = set()
    for index, row in enumerate(rows):
        where = f"row {index}"
        if isinstance(row, Document):
            row = {"_id": row.doc_id, "text": row.text, "title": row.title}
        elif isinstance(row, str):
            row = {"_id": index, "text": row}
        elif isinstance(row, dict):
            row = row if "_id" in row or "id" in row else {"_id": index, **row}
        else:
            error = CorpusFormatError(f"{where}: expected a string or a dict, got {type(row).__name__}")
            policy.reject(error, "invalid row")
            continue
        document = _checked_document(row, where, seen_ids, policy)
        if document is not None:
            documents.append(document)
    return documents


def load_queries(path: str | os.PathLike) -> dict[str, str]:
    """``{query_id: text}`` from a BEIR folder's ``queries.jsonl`` (or the file itself)."""
    path = resolve_collection_path(path)
    file_path = path / "queries.jsonl" if path.is_dir() else path
    queries: dict[str, str] = {}
    for line_number, row in read_jsonl(file_path):
        where = f"{file_path}:{line_number}"
        query_id = row.get("_id", row.get("id"))
        if query_id is None:
            raise CorpusFormatError(f"{where}: missing field '_id'")
        text = row.get("text")
        if not isinstance(text, str) or not text.strip():
            raise CorpusFormatError(f"{where}: query {query_id!r} has a missing or empty 'text'")
        if str(query_id) in queries:
            raise CorpusFormatError(f"{where}: duplicate query id {query_id!r}")
        queries[str(query_id)] = text
    return queries


def load_qrels(path: str | os.PathLike, split: str = "test") -> dict[str, dict[str, int]]:
    """``{query_id: {doc_id: score}}`` from a BEIR folder's ``qrels/<split>.tsv`` (header
    ``query-id corpus-id score``), or the file itself."""
    path = resolve_collection_path(path)
    file_path = path / "qrels" / f"{split}.tsv" if path.is_dir() else path
    qrels: dict[str, dict[str, int]] = {}
    lines = _lines(file_path)
    first = next(lines, None)
    header = next(csv.reader([first[1]], delimiter="\t"), None) if first else None
    if header is None or [name.strip() for name in header[:3]] != ["query-id", "corpus-id", "score"]:
        raise CorpusFormatError(f"{file_path}:1: expected the header 'query-id<TAB>corpus-id<TAB>score'")
    for line_number, line in lines:
        row = next(csv.reader([line.rstrip("\r\n")], delimiter="\t"), [])
        if not row or not "".join(row).strip():
            continue
        if len(row) < 3:
            raise CorpusFormatError(f"{file_path}:{line_number}: expected 3 tab-separated fields, got {len(row)}")
        try:
            score = int(float(row[2]))
        except ValueError as error:
            raise CorpusFormatError(f"{file_path}:{line_number}: field 'score' is not a number: {row[2]!r}") from error
        qrels.setdefault(row[0], {})[row[1]] = score
    return qrels

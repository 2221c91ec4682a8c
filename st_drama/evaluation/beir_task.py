"""MTEB retrieval tasks: local BEIR-layout folders (fully offline) and named MTEB tasks or benchmarks.

A BEIR folder holds ``corpus.jsonl``, ``queries.jsonl`` and ``qrels/<split>.tsv``; it is read only through
:mod:`st_drama.corpus`, so a bad row raises :class:`~st_drama.corpus.CorpusFormatError` naming file and line.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from datasets import Dataset
from mteb import TaskMetadata
from mteb.abstasks import AbsTaskRetrieval
from mteb.abstasks.abstask import AbsTask

from ..corpus import BUNDLED_COLLECTIONS, Document, load_corpus, load_qrels, load_queries, resolve_collection_path
from ..languages import detect_language
from ..runs import content_fingerprint

logger = logging.getLogger(__name__)

BEIR_FILES = ("corpus.jsonl", "queries.jsonl")
FINGERPRINT_LENGTH = 12


class TaskDataUnavailableError(RuntimeError):
    """A named MTEB task whose data cannot be loaded (typically: the Hugging Face Hub cannot be reached)."""


class BeirRetrievalTask(AbsTaskRetrieval):
    """An MTEB retrieval task over a local BEIR-layout folder.

    The folder is read and validated when the task is created (so bad data fails before any model runs). Only
    judged queries (those with a qrels row) are evaluated, as in MTEB's own loader; judged documents missing from
    the corpus are kept in the judgements (they count as not retrieved) and reported in a warning.

    Args:
        folder: A BEIR-layout folder, or the name of a collection bundled with st-drama (``"cranfield"``).
        name: The task name in results; defaults to the folder's name.
        language: MTEB language code such as ``"eng-Latn"``; detected from the text when not given.
        split: The qrels split to evaluate (``qrels/<split>.tsv``).
        skip_malformed: Skip and count malformed corpus rows instead of refusing the folder.
    """

    def __init__(
        self,
        folder: str | os.PathLike,
        name: str | None = None,
        language: str | None = None,
        split: str = "test",
        skip_malformed: bool = False,
        **kwargs: Any,
    ) -> None:
        self.folder = resolve_collection_path(folder)
        self.split = split
        _check_beir_layout(self.folder, split)
        self.documents = load_corpus(self.folder / "corpus.jsonl", skip_malformed=skip_malformed)
        self.queries_by_id = load_queries(self.folder)
        self.qrels = load_qrels(self.folder, split=split)
        self.judged_query_ids = _judged_query_ids(self.qrels, self.queries_by_id, self.folder, split)
        _warn_missing_documents(self.qrels, self.documents, self.folder, split)
        # mteb reads a task's metadata from its class (an instance attribute is taken for a filtered copy and dropped
        # on unload), so each folder gets its own subclass carrying its metadata.
        metadata = self._make_metadata(name, language)
        self.__class__ = type(f"BeirRetrievalTask_{_identifier(metadata.name)}", (type(self),), {"metadata": metadata})
        super().__init__(**kwargs)

    def _make_metadata(self, name: str | None, language: str | None) -> TaskMetadata:
        if language is None:
            language = detect_language(
                [document.full_text for document in self.documents[:500]] + list(self.queries_by_id.values())
            ).mteb
        return TaskMetadata(
            name=name or task_name_for_folder(self.folder),
            description=(
                f"Local BEIR-layout collection {self.folder}: {len(self.documents)} documents, "
                f"{len(self.judged_query_ids)} judged queries."
            ),
            dataset={"path": str(self.folder), "revision": folder_fingerprint(self.folder, self.split)},
            type="Retrieval",
            category="t2t",
            modalities=["text"],
            eval_splits=[self.split],
            eval_langs=[language],
            main_score="ndcg_at_10",
            license="not specified",
            dialect=[],
            bibtex_citation="",
        )

    def load_data(self, num_proc: int | None = None, **kwargs: Any) -> None:
        """Fill ``self.dataset`` (MTEB's v2 layout) from the files read at creation."""
        if self.data_loaded:
            return
        corpus = Dataset.from_dict(
            {
                "id": [document.doc_id for document in self.documents],
                "title": [document.title for document in self.documents],
                "text": [document.text for document in self.documents],
            }
        )
        queries = Dataset.from_dict(
            {
                "id": self.judged_query_ids,
                "text": [self.queries_by_id[query_id] for query_id in self.judged_query_ids],
            }
        )
        relevant_docs = {query_id: dict(self.qrels[query_id]) for query_id in self.judged_query_ids}
        self.dataset = {
            "default": {
                self.split: {"corpus": corpus, "queries": queries, "relevant_docs": relevant_docs, "top_ranked": None}
            }
        }
        self.data_loaded = True

    @property
    def language(self) -> str:
        """The task's MTEB language code (``"eng-Latn"``)."""
        return self.metadata.eval_langs[0]


def task_name_for_folder(folder: Path) -> str:
    """A task name from a folder's name: ``/data/my collection`` -> ``my_collection``."""
    name = re.sub(r"[^\w.-]+", "_", folder.resolve().name).strip("_")
    return name or "beir_collection"


def _identifier(name: str) -> str:
    return re.sub(r"\W", "_", name)


def folder_fingerprint(folder: Path, split: str = "test") -> str:
    """A short hash of the folder's corpus, queries and qrels: MTEB's dataset revision for the task, so cached
    results of a changed collection are never reused."""
    return content_fingerprint(folder, (*BEIR_FILES, f"qrels/{split}.tsv"), length=FINGERPRINT_LENGTH)


def is_beir_folder(path: str | os.PathLike) -> bool:
    """Whether ``path`` (or the bundled collection of that name) is a folder with a ``corpus.jsonl``."""
    return (resolve_collection_path(path) / "corpus.jsonl").is_file()


def load_tasks(
    specs: str | os.PathLike | AbsTask | Sequence[str | os.PathLike | AbsTask], skip_malformed: bool = False
) -> list[AbsTask]:
    """MTEB tasks from BEIR folders, bundled collection names (``"cranfield"``), MTEB task or benchmark names, or
    ready task (or ``mteb.Benchmark``) objects. Every task's data is loaded here, so a bad folder or an unreachable
    hub fails before any model runs.

    Raises:
        FileNotFoundError: A path that does not exist or lacks a BEIR file.
        ValueError: A name that is neither a folder nor a known MTEB task or benchmark.
        TaskDataUnavailableError: A named MTEB task whose data cannot be downloaded.
    """
    if isinstance(specs, (str, os.PathLike, AbsTask)) or hasattr(specs, "tasks"):
        specs = [specs]
    tasks: list[AbsTask] = []
    for spec in specs:
        tasks.extend(_tasks_for_spec(spec, skip_malformed))
    if not tasks:
        raise ValueError("No task to evaluate.")
    names = [task.metadata.name for task in tasks]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"Several tasks are named {duplicates}; pass distinct folders or names.")
    for task in tasks:
        if not task.data_loaded:
            _load_named_task_data(task)
    return tasks


def _tasks_for_spec(spec: str | os.PathLike | AbsTask, skip_malformed: bool) -> list[AbsTask]:
    if isinstance(spec, AbsTask):
        return [spec]
    if isinstance(getattr(spec, "tasks", None), Sequence):  # an mteb.Benchmark
        return list(spec.tasks)
    path = Path(spec)
    if path.exists() or str(spec) in BUNDLED_COLLECTIONS:
        return [BeirRetrievalTask(spec, skip_malformed=skip_malformed)]
    if os.sep in str(spec) or str(spec).endswith((".jsonl", ".tsv")):
        raise FileNotFoundError(f"{spec}: no such folder.")
    return _named_mteb_tasks(str(spec))


def _named_mteb_tasks(name: str) -> list[AbsTask]:
    import mteb

    try:
        return list(mteb.get_tasks(tasks=[name]))
    except KeyError as task_error:
        try:
            return list(mteb.get_benchmark(name).tasks)
        except KeyError:
            raise ValueError(
                f"{name!r} is not a folder, a bundled collection {BUNDLED_COLLECTIONS} or an MTEB task or benchmark "
                f"name ({task_error.args[0] if task_error.args else task_error})."
            ) from None


def _load_named_task_data(task: AbsTask) -> None:
    dataset = task.metadata.dataset.get("path", "?")
    try:
        task.load_data()
    except Exception as error:
        raise TaskDataUnavailableError(
            f"MTEB task {task.metadata.name!r} needs its dataset {dataset!r} from the Hugging Face Hub, which could "
            f"not be loaded ({type(error).__name__}: {error}). Run where the hub is reachable (or with the dataset in "
            "the local Hugging Face cache), or evaluate on a local BEIR-layout folder instead."
        ) from error


def _check_beir_layout(folder: Path, split: str) -> None:
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder (expected a BEIR-layout folder).")
    for relative in (*BEIR_FILES, f"qrels/{split}.tsv"):
        if not (folder / relative).is_file():
            raise FileNotFoundError(
                f"{folder / relative}: missing; a BEIR-layout folder holds corpus.jsonl, queries.jsonl and "
                f"qrels/{split}.tsv."
            )


def _judged_query_ids(
    qrels: dict[str, dict[str, int]], queries_by_id: dict[str, str], folder: Path, split: str
) -> list[str]:
    judged = [query_id for query_id in queries_by_id if query_id in qrels]
    unknown = [query_id for query_id in qrels if query_id not in queries_by_id]
    if unknown:
        logger.warning(
            f"{folder}/qrels/{split}.tsv judges {len(unknown)} query ids absent from queries.jsonl (e.g. "
            f"{unknown[0]!r}); they cannot be evaluated and are left out."
        )
    if not judged:
        raise ValueError(f"{folder}: no query in queries.jsonl has a judgement in qrels/{split}.tsv.")
    unjudged = len(queries_by_id) - len(judged)
    if unjudged:
        logger.warning(
            f"{folder}/queries.jsonl holds {unjudged} queries without a judgement in qrels/{split}.tsv; as in MTEB's "
            f"own loader they are not evaluated ({len(judged)} are)."
        )
    return judged


def _warn_missing_documents(
    qrels: dict[str, dict[str, int]], documents: list[Document], folder: Path, split: str
) -> None:
    known = {document.doc_id for document in documents}
    missing = {doc_id for judged in qrels.values() for doc_id in judged if doc_id not in known}
    if missing:
        logger.warning(
            f"{folder}/qrels/{split}.tsv judges {len(missing)} document ids absent from corpus.jsonl (e.g. "
            f"{sorted(missing)[0]!r}); no model can retrieve them, so they lower recall for every model alike."
        )

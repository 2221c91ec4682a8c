"""LLM synthetic queries, DRAMA style: a few-shot chat prompt asks the model to name a plausible search task for the
document, then to write one query in the document's language; replies are parsed robustly and filtered.

Rejection reasons (counted, never silent): ``empty`` (no query found), ``too long`` (over the word limit, or cut by
the token limit), ``repetitive`` (a degenerate loop), ``copy of document`` (n-gram overlap with the document),
``copy of prompt example`` (the model repeated a few-shot query), ``unrelated to document`` (no content word in
common with the document: small models drift off topic), ``wrong language`` (written in another script than the
document), and ``duplicate`` (decided by the caller across a chunk).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from st_drama.languages import dominant_script, language_name, language_script

from .chat import ChatLM, Conversation, Reply
from .config import GenerationConfig, QueryFilterConfig
from .text import (
    content_stems,
    most_repeated_ngram_count,
    ngram_overlap,
    normalize_text,
    words,
)

REJECT_EMPTY = "empty"
REJECT_TOO_LONG = "too long"
REJECT_REPETITIVE = "repetitive"
REJECT_DOCUMENT_COPY = "copy of document"
REJECT_EXAMPLE_COPY = "copy of prompt example"
REJECT_UNRELATED = "unrelated to document"
REJECT_WRONG_LANGUAGE = "wrong language"
REJECT_DUPLICATE = "duplicate"

SYSTEM_PROMPT = "You write realistic search queries that a given document answers."


@dataclass(frozen=True)
class FewShotExample:
    language: str
    document: str
    task: str
    query: str


# Our own examples: one per task type DRAMA brainstorms (question answering, web search, fact checking), and the
# same in Arabic so that Arabic documents see Arabic queries.
FEW_SHOT_EXAMPLES = (
    FewShotExample(
        "en",
        "The Nile is the longest river in Africa. It flows north for about 6,650 km through eleven countries and "
        "empties into the Mediterranean Sea near Alexandria.",
        "question answering",
        "how long is the nile river",
    ),
    FewShotExample(
        "en",
        "Aspirin lowers the risk of heart attack by stopping blood platelets from clumping together. Doctors often "
        "recommend a low daily dose for patients with heart disease.",
        "fact checking",
        "daily low-dose aspirin reduces heart attack risk",
    ),
    FewShotExample(
        "en",
        "Sourdough bread is leavened by a culture of wild yeast and lactic acid bacteria instead of baker's yeast. "
        "The bacteria give the bread its sour taste and help it keep longer.",
        "web search",
        "why does sourdough bread taste sour",
    ),
    FewShotExample(
        "ar",
        "تأسست جامعة القاهرة عام 1908 باسم الجامعة المصرية، وهي من أقدم الجامعات الحديثة في العالم العربي. "
        "وتضم اليوم أكثر من عشرين كلية في الطب والهندسة والآداب والعلوم.",
        "question answering",
        "متى تأسست جامعة القاهرة",
    ),
    FewShotExample(
        "ar",
        "يعد زيت الزيتون من أهم مكونات الغذاء في دول البحر الأبيض المتوسط، إذ يحتوي على دهون أحادية غير مشبعة "
        "تساعد على خفض الكوليسترول الضار في الدم.",
        "web search",
        "فوائد زيت الزيتون للكوليسترول",
    ),
)

_QUERY_LABEL = re.compile(r"^[\W_]*(?:search\s+)?query[\W_]*?[:\uff1a]\s*(.*)$", re.IGNORECASE)
_OTHER_LABEL = re.compile(r"^[\W_]*(?:task|language|document|answer)[\W_]*?[:\uff1a]", re.IGNORECASE)
_TRAILING_LABEL = re.compile(r"\s+(?:task|language)\s*[:\uff1a].*$", re.IGNORECASE)
_WRAPPING = ".\u2026\"'`*\u201c\u201d\u2018\u2019\u00ab\u00bb[]()<> -\u2022"


@dataclass(frozen=True)
class GeneratedQuery:
    """One parsed and checked reply: ``query`` is set when accepted, ``rejection`` names the reason otherwise.
    ``status`` says how the LLM did: ``"valid"`` (a query on its own ``Query:`` line, accepted), ``"repaired"``
    (accepted, but found without that line: the reply did not follow the format) or ``"rejected"``."""

    doc_index: int
    reply: str
    task: str
    query: str | None
    rejection: str | None

    @property
    def status(self) -> str:
        if self.query is None:
            return "rejected"
        return "valid" if well_formed(self.reply) else "repaired"


def well_formed(reply: str) -> bool:
    """Whether the reply has a ``Query:`` line with the query on it, as the prompt asks."""
    return any((match := _QUERY_LABEL.match(line.strip())) and match.group(1).strip() for line in reply.splitlines())


def instruction(document: str, language: str) -> str:
    """The user turn for one document."""
    return (
        f"Document:\n{document}\n\n"
        "First name a search task this document is useful for (question answering, web search or fact checking). "
        f"Then write one short search query in {language_name(language)} that this document answers.\n"
        "Reply with two lines:\nTask: ...\nQuery: ..."
    )


def build_conversation(document: str, language: str, few_shot: int = 2) -> Conversation:
    """System prompt, ``few_shot`` worked examples as earlier turns, then the document."""
    conversation: Conversation = [{"role": "system", "content": SYSTEM_PROMPT}]
    for example in select_examples(language, few_shot):
        conversation.append({"role": "user", "content": instruction(example.document, example.language)})
        conversation.append({"role": "assistant", "content": f"Task: {example.task}\nQuery: {example.query}"})
    conversation.append({"role": "user", "content": instruction(document, language)})
    return conversation


def select_examples(language: str, count: int) -> list[FewShotExample]:
    """Examples in the document's language first, topped up with English ones."""
    same_language = [example for example in FEW_SHOT_EXAMPLES if example.language == language]
    english = [example for example in FEW_SHOT_EXAMPLES if example.language == "en" and example.language != language]
    return (same_language + english)[:count]


def truncate_words(text: str, max_words: int) -> str:
    """The first ``max_words`` whitespace-separated words of ``text`` (unchanged when shorter)."""
    tokens = text.split()
    return text if len(tokens) <= max_words else " ".join(tokens[:max_words])


def parse_reply(reply: str) -> tuple[str, str]:
    """``(task, query)`` from a reply such as ``"Task: web search\\nQuery: ..."``; tolerant of markdown, quotes,
    missing labels, extra lines and labels on one line. Either part is ``""`` when absent."""
    lines = [line.strip() for line in reply.replace("\ufffd", "").splitlines()]
    lines = [line for line in lines if line]
    task = next((_after_colon(line) for line in lines if re.match(r"^[\W_]*task", line, re.IGNORECASE)), "")
    task = re.split(r"\bquery\s*[:\uff1a]", task, flags=re.IGNORECASE)[0]
    query = ""
    for position, line in enumerate(lines):
        match = _QUERY_LABEL.match(line)
        if match:
            query = match.group(1).strip() or _next_unlabelled(lines[position + 1 :])
            break
    else:
        query = _next_unlabelled(lines)
        if not query:
            query = _query_after_inline_label(reply)
    return _clean(task), _clean(_TRAILING_LABEL.sub("", query))


def _after_colon(line: str) -> str:
    return line.split(":", 1)[1] if ":" in line else ""


def _next_unlabelled(lines: list[str]) -> str:
    return next((line for line in lines if not _OTHER_LABEL.match(line) and not _QUERY_LABEL.match(line)), "")


def _query_after_inline_label(reply: str) -> str:
    """``"Task: web search Query: ..."`` on a single line."""
    match = re.search(r"query\s*[:\uff1a]\s*(.+)", reply, re.IGNORECASE)
    return match.group(1).splitlines()[0] if match else ""


def _clean(text: str) -> str:
    return " ".join(text.strip().strip(_WRAPPING).split())


def query_line_complete(reply: str) -> bool:
    """Whether a reply already holds a finished ``Query:`` line (so decoding can stop)."""
    match = re.search(r"query\s*[:\uff1a][^\n]*\S[^\n]*\n", reply, re.IGNORECASE)
    return match is not None


def check_query(
    query: str,
    document: str,
    language: str,
    finished: bool,
    settings: QueryFilterConfig = QueryFilterConfig(),
) -> str | None:
    """The rejection reason for a parsed query, or None when it is usable."""
    query_words = words(query)
    if not query_words:
        return REJECT_EMPTY
    if len(query_words) > settings.max_words or (settings.reject_unfinished and not finished):
        return REJECT_TOO_LONG
    if most_repeated_ngram_count(query, 3) > settings.max_ngram_repeats:
        return REJECT_REPETITIVE
    if _copies_example(query):
        return REJECT_EXAMPLE_COPY
    if (
        len(query_words) >= settings.copy_ngram_size
        and ngram_overlap(query, document, settings.copy_ngram_size) >= settings.copy_threshold
    ):
        return REJECT_DOCUMENT_COPY
    expected_script = language_script(language)
    query_script = dominant_script(query)
    if expected_script and query_script and query_script != expected_script:
        return REJECT_WRONG_LANGUAGE
    if len(content_stems(query) & content_stems(document)) < settings.min_shared_words:
        return REJECT_UNRELATED
    return None


def _copies_example(query: str) -> bool:
    normalized = normalize_text(query)
    return any(
        normalized == normalize_text(example.query) or ngram_overlap(query, example.query, 3) >= 0.75
        for example in FEW_SHOT_EXAMPLES
    )


class SyntheticQueryGenerator:
    """Batched synthetic-query generation with parsing and filtering.

    Args:
        chat_lm: The LLM backend (:func:`st_drama.augment.llm.load_chat_lm`).
        settings: Prompt and decoding settings.
        filters: Acceptance limits.
    """

    def __init__(
        self,
        chat_lm: ChatLM,
        settings: GenerationConfig = GenerationConfig(),
        filters: QueryFilterConfig = QueryFilterConfig(),
    ) -> None:
        self.chat_lm = chat_lm
        self.settings = settings
        self.filters = filters

    def generate(self, documents: Sequence[str], languages: Sequence[str], seed: int) -> list[GeneratedQuery]:
        """``queries_per_document`` checked queries per document, in document order.

        Prompts are generated longest first (less padding per batch); the order is fixed by the inputs, so the
        same documents and seed give the same replies.
        """
        doc_indices = [index for index in range(len(documents)) for _ in range(self.settings.queries_per_document)]
        prompt_documents = [
            truncate_words(documents[index], self.settings.max_document_words) for index in doc_indices
        ]
        conversations = [
            build_conversation(text, languages[index], self.settings.few_shot)
            for text, index in zip(prompt_documents, doc_indices, strict=True)
        ]
        order = sorted(range(len(conversations)), key=lambda position: -len(prompt_documents[position]))
        replies = self.chat_lm.generate(
            [conversations[position] for position in order],
            self.settings.sampling,
            seed=seed,
            stop_when=query_line_complete,
        )
        by_position = dict(zip(order, replies, strict=True))
        return [
            self._checked(doc_indices[position], by_position[position], documents[doc_indices[position]], languages)
            for position in range(len(conversations))
        ]

    def _checked(self, doc_index: int, reply: Reply, document: str, languages: Sequence[str]) -> GeneratedQuery:
        task, query = parse_reply(reply.text)
        finished = reply.finished or query_line_complete(reply.text)
        rejection = check_query(query, document, languages[doc_index], finished, self.filters)
        return GeneratedQuery(
            doc_index=doc_index,
            reply=reply.text,
            task=task,
            query=query if rejection is None else None,
            rejection=rejection,
        )

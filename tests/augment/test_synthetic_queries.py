from __future__ import annotations

import pytest
from conftest import cranfield_documents

from st_drama.augment.llm import SamplingConfig, TransformersChatLM
from st_drama.augment.synthetic_queries import (
    FEW_SHOT_EXAMPLES,
    REJECT_DOCUMENT_COPY,
    REJECT_EMPTY,
    REJECT_EXAMPLE_COPY,
    REJECT_REPETITIVE,
    REJECT_TOO_LONG,
    REJECT_UNRELATED,
    REJECT_WRONG_LANGUAGE,
    GenerationConfig,
    QueryFilterConfig,
    SyntheticQueryGenerator,
    build_conversation,
    check_query,
    parse_reply,
    query_line_complete,
)

DOCUMENT = (
    "the boundary layer on a flat plate grows with the distance from the leading edge, and its thickness depends "
    "on the reynolds number of the flow."
)


@pytest.mark.parametrize(
    ("reply", "task", "query"),
    [
        ("Task: web search\nQuery: what is lift", "web search", "what is lift"),
        ('**Task:** fact checking\n**Query:** "lift depends on speed"', "fact checking", "lift depends on speed"),
        (
            "task: qa\nSearch query: how thick is a boundary layer?\nLanguage: English",
            "qa",
            "how thick is a boundary layer?",
        ),
        ("Task: web search\nQuery:\nwhy do wings stall", "web search", "why do wings stall"),
        ("Task: web search Query: drag of a cylinder", "web search", "drag of a cylinder"),
        ("Query: lift coefficient Language: English", "", "lift coefficient"),
        ("- Query: 'heat transfer in slabs'", "", "heat transfer in slabs"),
        ("how do flaps change lift", "", "how do flaps change lift"),
        ("Task: web search\n", "web search", ""),
        ("", "", ""),
        ("Query: ...", "", ""),
        ("Task: web search\nQuery: bound\ufffd", "web search", "bound"),
        ("Task: question answering\nQuery: ما هو طول نهر النيل", "question answering", "ما هو طول نهر النيل"),
    ],
)
def test_parse_reply_is_tolerant(reply, task, query):
    assert parse_reply(reply) == (task, query)


def test_query_line_complete():
    assert not query_line_complete("Task: web search\nQuery: what is")
    assert query_line_complete("Task: web search\nQuery: what is lift\n")
    assert not query_line_complete("Task: web search\nQuery:\n")


@pytest.mark.parametrize(
    ("query", "language", "finished", "reason"),
    [
        ("how does the boundary layer grow", "en", True, None),
        ("", "en", True, REJECT_EMPTY),
        ("?!", "en", True, REJECT_EMPTY),
        (" ".join(["word"] * 40), "en", True, REJECT_TOO_LONG),
        ("how does the boundary layer grow", "en", False, REJECT_TOO_LONG),
        ("of a plate of a plate of a plate", "en", True, REJECT_REPETITIVE),
        ("how long is the nile river", "en", True, REJECT_EXAMPLE_COPY),
        ("the boundary layer on a flat plate grows with the distance", "en", True, REJECT_DOCUMENT_COPY),
        ("ما هو سمك الطبقة الحدية", "en", True, REJECT_WRONG_LANGUAGE),
        ("what is the boundary layer", "ar", True, REJECT_WRONG_LANGUAGE),
        ("what is the boundary layer", "und", True, None),
        ("minimally invasive breast cancer surgery", "en", True, REJECT_UNRELATED),
    ],
)
def test_check_query_rejection_reasons(query, language, finished, reason):
    assert check_query(query, DOCUMENT, language, finished) == reason


def test_unfinished_and_unrelated_replies_can_be_accepted_explicitly():
    settings = QueryFilterConfig(reject_unfinished=False, min_shared_words=0)
    assert check_query("how does the boundary layer grow", DOCUMENT, "en", False, settings) is None
    assert check_query("minimally invasive breast cancer surgery", DOCUMENT, "en", True, settings) is None


def test_conversation_is_few_shot_in_the_documents_language():
    english = build_conversation(DOCUMENT, "en", few_shot=2)
    assert [turn["role"] for turn in english] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert "in English" in english[-1]["content"] and DOCUMENT in english[-1]["content"]
    assert english[2]["content"].startswith("Task: ") and "\nQuery: " in english[2]["content"]
    arabic = build_conversation("نص عربي", "ar", few_shot=2)
    arabic_queries = {example.query for example in FEW_SHOT_EXAMPLES if example.language == "ar"}
    assert {turn["content"].split("Query: ")[1] for turn in arabic if turn["role"] == "assistant"} == arabic_queries
    assert "in Arabic" in arabic[-1]["content"]
    french = build_conversation("texte", "fr", few_shot=1)
    assert "in French" in french[-1]["content"] and len(french) == 4


@pytest.fixture(scope="module")
def tiny_chat_lm(tiny_chat_llm_dir):
    return TransformersChatLM(str(tiny_chat_llm_dir), precision="fp32", batch_size=3)


def test_generator_returns_one_checked_query_per_prompt(tiny_chat_lm):
    documents = [row["text"] for row in cranfield_documents(5)]
    settings = GenerationConfig(
        max_document_words=30, few_shot=1, queries_per_document=2, sampling=SamplingConfig(8, 0.8, 0.9)
    )
    generator = SyntheticQueryGenerator(tiny_chat_lm, settings, QueryFilterConfig(reject_unfinished=False))
    results = generator.generate(documents, ["en"] * 5, seed=3)
    assert [result.doc_index for result in results] == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    for result in results:
        assert (result.query is None) != (result.rejection is None)
        if result.query is not None:
            assert result.query == parse_reply(result.reply)[1]
    assert [result.reply for result in generator.generate(documents, ["en"] * 5, seed=3)] == [
        result.reply for result in results
    ]
    # The default filters reject replies cut off by the token limit, which most of the tiny model's are.
    strict = SyntheticQueryGenerator(tiny_chat_lm, settings).generate(documents, ["en"] * 5, seed=3)
    assert [result.reply for result in strict] == [result.reply for result in results]
    assert all(lenient.query == kept.query for lenient, kept in zip(results, strict, strict=True) if kept.query)
    assert sum(result.rejection == REJECT_TOO_LONG for result in strict) > sum(
        result.rejection == REJECT_TOO_LONG for result in results
    )


@pytest.mark.real_model
def test_smollm2_is_prompted_in_arabic_for_arabic_documents(smollm2_dir):
    from conftest import ARABIC_TEXTS

    from st_drama.languages import detect_language

    documents = list(ARABIC_TEXTS)
    languages = [detect_language(text).iso for text in documents]
    assert languages == ["ar", "ar"]
    lm = TransformersChatLM(str(smollm2_dir), batch_size=2)
    settings = GenerationConfig(max_document_words=60, sampling=SamplingConfig(32, 0.8, 0.9))
    results = SyntheticQueryGenerator(lm, settings).generate(documents, languages, seed=0)
    assert len(results) == 2
    for result in results:
        assert result.reply.strip()
        assert (result.query is None) != (result.rejection is None)
        if result.query is not None:  # accepted queries are written in Arabic script
            assert detect_language(result.query).iso == "ar"

"""Shared fixtures: tiny random Llama-family models with a real (small, trained) BPE tokenizer, and the real
SmolLM2 weights for the tests marked ``real_model``."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parent.parent
# The real test collections of ../shared/data (or $ST_DRAMA_SHARED_DATA); tests that need more than the bundled
# Cranfield skip where they are absent.
SHARED_DATA = Path(os.environ.get("ST_DRAMA_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))
BUNDLED_CRANFIELD = REPO_ROOT / "st_drama" / "data" / "cranfield"

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


# Two short Arabic passages written for these tests (general knowledge, no dataset licence involved).
ARABIC_TEXTS = [
    "نهر النيل هو أطول نهر في قارة أفريقيا، ويمر عبر عدة دول قبل أن يصب في البحر الأبيض المتوسط. "
    "اعتمد المصريون القدماء على مياهه في الزراعة وبنوا حضارتهم على ضفافه.",
    "تعد الطاقة الشمسية من أهم مصادر الطاقة المتجددة، إذ تحول الألواح الشمسية ضوء الشمس إلى كهرباء "
    "دون انبعاثات ضارة، وتنتشر محطاتها في المناطق الصحراوية المشمسة.",
]


def shared_collection(name: str) -> Path:
    """A collection folder: the bundled Cranfield, or one of ../shared/data (the test is skipped without it)."""
    if name == "cranfield":
        return BUNDLED_CRANFIELD
    folder = SHARED_DATA / name
    if not (folder / "corpus.jsonl").is_file():
        pytest.skip(f"needs {folder} (set ST_DRAMA_SHARED_DATA to the shared collections)")
    return folder


def cranfield_texts(limit: int = 300) -> list[str]:
    texts = []
    with open(BUNDLED_CRANFIELD / "corpus.jsonl", encoding="utf-8") as handle:
        for line in handle:
            texts.append(json.loads(line)["text"])
            if len(texts) >= limit:
                break
    return texts


def train_tiny_tokenizer(output_dir: Path, vocab_size: int = 400):
    """A byte-level BPE tokenizer trained on Cranfield text; pad == eos, as in SmolLM2."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tokenizer.train_from_iterator(cranfield_texts(), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        pad_token="<|im_end|>",
        unk_token="<|endoftext|>",
    )
    fast.save_pretrained(output_dir)
    return fast


def save_tiny_decoder(output_dir: Path, model_type: str = "llama", seed: int = 0, **overrides) -> Path:
    """A tiny randomly initialised causal LM of the given Llama-family type, saved with the tiny tokenizer."""
    from transformers import AutoConfig, AutoModelForCausalLM

    tokenizer = train_tiny_tokenizer(output_dir)
    settings = dict(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    settings.update(overrides)
    config = AutoConfig.for_model(model_type, **settings)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)
    model.save_pretrained(output_dir)
    return output_dir


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory) -> Path:
    return save_tiny_decoder(tmp_path_factory.mktemp("tiny_llama"))


@pytest.fixture(scope="session")
def smollm2_dir() -> Path:
    """The real SmolLM2-135M-Instruct weights, converted once into the st-drama cache."""
    from st_drama import default_llm_path

    return Path(default_llm_path())


class InterruptAfterSave:
    """A trainer callback that stops the run once a checkpoint at or after ``after_step`` is written, as a killed
    job would (that checkpoint is complete on disk)."""

    def __new__(cls, after_step: int):
        from transformers import TrainerCallback

        class _Interrupt(TrainerCallback):
            def on_save(self, args, state, control, **kwargs):
                if state.global_step >= after_step:
                    raise KeyboardInterrupt(f"interrupted after step {state.global_step}")

        return _Interrupt()


CHATML_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def cranfield_documents(limit: int) -> list[dict]:
    """The first ``limit`` non-empty Cranfield rows (``_id``, ``title``, ``text``)."""
    rows = []
    with open(BUNDLED_CRANFIELD / "corpus.jsonl", encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            if row["text"].strip():
                rows.append(row)
            if len(rows) == limit:
                break
    return rows


def write_beir_corpus(folder: Path, rows: list[dict]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "corpus.jsonl", "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row) + "\n")
    return folder


@pytest.fixture(scope="session")
def tiny_chat_llm_dir(tmp_path_factory) -> Path:
    """A tiny random Llama with a ChatML chat template (SmolLM2's format)."""
    folder = save_tiny_decoder(tmp_path_factory.mktemp("tiny_chat_llm"), max_position_embeddings=4096)
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokenizer.chat_template = CHATML_TEMPLATE
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def small_corpus(tmp_path_factory) -> Path:
    """A BEIR folder with 40 Cranfield documents."""
    return write_beir_corpus(tmp_path_factory.mktemp("small_corpus"), cranfield_documents(40))


SUBSET_DOCUMENTS = 150


def write_cranfield_subset(folder: Path, documents: int = SUBSET_DOCUMENTS) -> Path:
    """The first ``documents`` Cranfield documents and the queries judged against them: a real collection small
    enough for a tiny model to go through every stage in seconds."""
    (folder / "qrels").mkdir(parents=True)
    kept_ids: set[str] = set()
    with (
        open(BUNDLED_CRANFIELD / "corpus.jsonl", encoding="utf-8") as source,
        open(folder / "corpus.jsonl", "w", encoding="utf-8") as target,
    ):
        for line in source:
            row = json.loads(line)
            if row["text"].strip():
                kept_ids.add(row["_id"])
                target.write(line)
            if len(kept_ids) == documents:
                break
    qrels_lines = (BUNDLED_CRANFIELD / "qrels" / "test.tsv").read_text(encoding="utf-8").splitlines()
    judged = [line for line in qrels_lines[1:] if line.split("\t")[1] in kept_ids]
    (folder / "qrels" / "test.tsv").write_text("\n".join([qrels_lines[0], *judged]) + "\n", encoding="utf-8")
    judged_queries = {line.split("\t")[0] for line in judged}
    with (
        open(BUNDLED_CRANFIELD / "queries.jsonl", encoding="utf-8") as source,
        open(folder / "queries.jsonl", "w", encoding="utf-8") as target,
    ):
        target.writelines(line for line in source if json.loads(line)["_id"] in judged_queries)
    return folder

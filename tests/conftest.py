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

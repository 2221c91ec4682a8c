from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from conftest import InterruptAfterSave
from sentence_transformers import SentenceTransformer

from st_drama.cli import main
from st_drama.llara import pretrain

RUN = dict(corpus="cranfield", steps=6, batch_size=4, chunk_tokens=32, max_documents=12, save_steps=2)
RUN["skip_malformed"] = True
RUN["show_progress"] = False


def weights(model_dir) -> dict[str, torch.Tensor]:
    model = SentenceTransformer(str(model_dir), trust_remote_code=True)
    return {name: tensor.clone() for name, tensor in model.state_dict().items()}


def test_interrupted_run_resumes_to_the_weights_of_an_uninterrupted_run(tiny_llama_dir, tmp_path):
    model_path = str(tiny_llama_dir)
    uninterrupted = pretrain(model_path, output_dir=tmp_path / "whole", seed=7, bf16=False, **RUN)

    with pytest.raises(KeyboardInterrupt):
        pretrain(model_path, output_dir=tmp_path / "cut", seed=7, bf16=False, callbacks=[InterruptAfterSave(4)], **RUN)
    assert not (tmp_path / "cut" / "model").exists()
    with pytest.raises(ValueError, match="pass resume=True"):
        pretrain(model_path, output_dir=tmp_path / "cut", seed=7, bf16=False, **RUN)
    resumed = pretrain(model_path, output_dir=tmp_path / "cut", seed=7, bf16=False, resume=True, **RUN)

    metadata = json.loads((tmp_path / "cut" / "model" / "st_drama_run.json").read_text())
    assert metadata["resumed_from"].endswith("checkpoint-4")
    # Cranfield's two empty abstracts are kept, make no rows, and are reported; nothing was skipped.
    assert metadata["empty_documents"] == 2 and metadata["skipped_documents"] == {}
    expected, actual = weights(uninterrupted), weights(resumed)
    for name, tensor in expected.items():
        torch.testing.assert_close(actual[name], tensor, msg=name)


def test_lora_run_saves_a_merged_self_contained_llara_model(tiny_llama_dir, tmp_path):
    model_dir = pretrain(str(tiny_llama_dir), output_dir=tmp_path, lora=True, lora_rank=4, learning_rate=5e-2, **RUN)
    assert not os.path.exists(os.path.join(model_dir, "adapter_config.json"))
    checkpoint_files = os.listdir(tmp_path / "checkpoints" / "checkpoint-6")
    assert "adapter_model.safetensors" in checkpoint_files  # checkpoints keep only the adapters
    adapted = SentenceTransformer(model_dir, trust_remote_code=True)
    assert adapted[0].prompt_style == "llara" and not adapted[0].has_adapters
    from st_drama import build_model

    base = build_model(str(tiny_llama_dir), style="llara")
    texts = ["flow over a cone"]
    assert not np.allclose(adapted.encode_query(texts), base.encode_query(texts))


def test_command_line_pretrain(tiny_llama_dir, tmp_path, capsys):
    exit_code = main(
        ["pretrain", str(tiny_llama_dir), "cranfield", str(tmp_path), "--steps", "2", "--batch-size", "2",
         "--chunk-tokens", "16", "--max-docs", "4", "--skip-malformed", "--no-bf16"]
    )  # fmt: skip
    assert exit_code == 0
    assert "Adapted model saved" in capsys.readouterr().out
    assert (tmp_path / "model" / "modules.json").is_file()


def test_command_line_reports_bad_corpus_in_one_line(tiny_llama_dir, tmp_path, capsys):
    (tmp_path / "corpus.jsonl").write_text('{"_id": "1", "text": "ok"}\nnot json\n')
    exit_code = main(["pretrain", str(tiny_llama_dir), str(tmp_path), str(tmp_path / "run"), "--steps", "1"])
    assert exit_code == 2
    assert "corpus.jsonl:2: malformed JSON" in capsys.readouterr().err

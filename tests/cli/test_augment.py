from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from conftest import cranfield_documents, write_beir_corpus

from st_drama.augment.augmenter import Augmenter
from st_drama.augment.writer import load_augmented_dataset
from st_drama.cli import main, make_parser
from st_drama.cli.augment import config_from_args

NUM_DOCS = 30


def augment_command(corpus, output_dir, llm_dir) -> list[str]:
    return [
        sys.executable, "-m", "st_drama.cli", "augment", str(corpus), str(output_dir),
        "--llm", str(llm_dir), "--precision", "fp32", "--max-docs", str(NUM_DOCS), "--chunk-size", "1",
        "--positive-ranks", "1-3", "--negative-ranks", "6-14", "--negatives", "3", "--max-new-tokens", "12",
        "--seed", "3", "--no-progress",
    ]  # fmt: skip


def subprocess_env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def markers(output_dir) -> dict[str, dict]:
    """The done-markers of finished chunks (none while the output folder does not exist yet)."""
    folder = output_dir / ".augment" / "chunks"
    return {path.name: json.loads(path.read_text()) for path in sorted(folder.glob("*.json"))}


def test_kill_9_then_rerun_loses_and_duplicates_nothing(tiny_chat_llm_dir, small_corpus, tmp_path):
    killed_dir, clean_dir = tmp_path / "killed", tmp_path / "clean"
    command = augment_command(small_corpus, killed_dir, tiny_chat_llm_dir)
    process = subprocess.Popen(command, env=subprocess_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    try:
        while not markers(killed_dir):
            assert process.poll() is None, process.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "no chunk finished in time"
            time.sleep(0.02)
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        process.stderr.close()
    done_when_killed = markers(killed_dir)
    assert 0 < len(done_when_killed) < NUM_DOCS, "the run was not interrupted midway"

    resumed = subprocess.run(command, env=subprocess_env(), capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"({NUM_DOCS}/{NUM_DOCS} chunks done)" in resumed.stdout
    # The uninterrupted reference run, in this process (same code path as the command, one process start less).
    arguments = make_parser().parse_args(augment_command(small_corpus, clean_dir, tiny_chat_llm_dir)[3:])
    Augmenter(config_from_args(arguments)).generate(small_corpus, clean_dir, progress=False)

    resumed_rows = load_augmented_dataset(killed_dir, cache_dir=str(tmp_path / "cache")).to_list()
    clean_rows = load_augmented_dataset(clean_dir, cache_dir=str(tmp_path / "cache")).to_list()
    assert len(clean_rows) >= NUM_DOCS  # one crop row per document at least
    assert resumed_rows == clean_rows
    assert markers(killed_dir) == markers(clean_dir)
    # Chunks finished before the kill were not made again.
    assert {name: markers(killed_dir)[name] for name in done_when_killed} == done_when_killed
    summary = json.loads((killed_dir / ".augment" / "summary.json").read_text())
    assert summary["this_run"]["chunks_made"] == NUM_DOCS - len(done_when_killed)
    assert not list((killed_dir / ".augment" / "tmp").iterdir())


def test_command_line_maps_to_the_config():
    args = make_parser().parse_args(
        "augment corpus out --sources crop --rerank pointwise --negatives 5 --max-docs 9 --shard 2/3 --seed 4 "
        "--negative-ranks 20-40 --positive-ranks 1-5 --rerank-depth 12 --rerank-negative-ranks 6-12 "
        "--temperature 0 --queries-per-doc 2 --crop-context-removal 0.25 --crops-per-doc 4".split()
    )
    config = config_from_args(args)
    assert config.sources == ("crop",) and config.rerank == "pointwise" and config.max_docs == 9
    assert config.num_negatives == 5 and config.seed == 4
    assert config.mining.negative_ranks == (20, 40) and config.mining.positive_ranks == (1, 5)
    assert config.reranking.depth == 12 and config.reranking.negative_ranks == (6, 12)
    assert config.generation.sampling.greedy and config.generation.queries_per_document == 2
    assert config.llm == "smollm2-135m" and config.crop.context_removal == 0.25 and config.crop.per_document == 4
    defaults = config_from_args(make_parser().parse_args(["augment", "c", "o"]))
    assert defaults.crop.context_removal == 1.0 and defaults.crop.per_document == 1


def test_command_line_errors_are_one_clear_line(small_corpus, tmp_path, capsys):
    corpus = write_beir_corpus(tmp_path / "corpus", cranfield_documents(12))
    lines = (corpus / "corpus.jsonl").read_text().splitlines()
    lines[2] = "not json"
    (corpus / "corpus.jsonl").write_text("\n".join(lines) + "\n")
    base = [
        "augment",
        str(corpus),
        str(tmp_path / "out"),
        "--sources",
        "crop",
        "--no-progress",
        "--positive-ranks",
        "1-2",
        "--negative-ranks",
        "3-8",
        "--negatives",
        "2",
    ]
    assert main(base) == 2
    assert "corpus.jsonl:3: malformed JSON" in capsys.readouterr().err
    assert main([*base, "--skip-malformed"]) == 0
    assert "malformed corpus rows skipped: {'malformed JSON': 1}" in capsys.readouterr().out

    out = ["augment", str(small_corpus), str(tmp_path / "other"), "--sources", "crop", "--no-progress"]
    assert main([*out, "--shard", "0/2"]) == 2
    assert "numbered 1..n" in capsys.readouterr().err
    assert main([*out, "--negative-ranks", "30"]) == 2
    assert "--negative-ranks expects LOW-HIGH" in capsys.readouterr().err
    assert main([*out, "--rerank", "pairrm"]) == 2
    assert "needs local weights: pass --pairrm-weights" in capsys.readouterr().err
    assert main([*out, "--sources", "crop,questions"]) == 2
    assert "sources must be" in capsys.readouterr().err
    assert main([*out, "--crop-context-removal", "2"]) == 2
    assert "context_removal is a probability in [0, 1], got 2.0" in capsys.readouterr().err
    assert main([*out, "--crops-per-doc", "0"]) == 2
    assert "per_document is a number of crops per document, at least 1, got 0" in capsys.readouterr().err

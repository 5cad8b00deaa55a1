#!/usr/bin/env bash
# Creates bench/.venv-litellm with the LiteLLM proxy, kept apart from the main
# venv so that LiteLLM's large dependency tree never leaks into llm-gateway's.
# LiteLLM is only a point of comparison: the harness starts it against the mock
# upstream with bench/litellm.yaml, offline and without a database.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.venv-litellm"
python="${LITELLM_PYTHON:-python3.11}"

if [[ -x "$venv/bin/litellm" ]]; then
    echo "litellm already installed in $venv"
    exit 0
fi

"$python" -m venv "$venv"
"$venv/bin/pip" install --quiet --upgrade pip
# uvloop and httptools make the comparison fair: llm-gateway runs on them too.
"$venv/bin/pip" install --quiet 'litellm[proxy]' uvloop httptools
"$venv/bin/litellm" --version || true
echo "litellm installed in $venv"

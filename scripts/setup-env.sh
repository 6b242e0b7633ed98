#!/usr/bin/env bash
# Create or update .venv idempotently: torch's CPU build first (any other spec pulls a multi-GB
# CUDA build), then the package and its pinned lock. Skips all work when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${WMIL_VENV:-.venv}
stamp="$VENV/.wmil-installed"
want=$(cat pyproject.toml constraints.txt scripts/setup-env.sh | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet torch==2.13.0
# the llm extra compiles llama.cpp from source (llama-cpp-python; minutes, once: pip caches the wheel)
if ! command -v cmake >/dev/null || ! command -v c++ >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && apt-get install -y -qq cmake g++ >/dev/null
  else
    echo "setup-env: cmake and a C++ compiler are needed to build llama-cpp-python (apt-get install cmake g++)" >&2
    exit 1
  fi
fi
CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) "$VENV/bin/python" -m pip install --quiet -c constraints.txt -e '.[test,llm]'
echo "$want" > "$stamp"
echo "environment ready: $VENV"

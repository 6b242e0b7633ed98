#!/usr/bin/env bash
# Create or update .venv idempotently: torch's CPU build first (any other spec pulls a multi-GB
# CUDA build), then llama.cpp built portably, then the package and its pinned lock. Skips all work
# when nothing changed (the stamp covers this script, the pins and the llama.cpp build flags).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${WMIL_VENV:-.venv}

# llama.cpp for a portable x86-64-v3 baseline (AVX2, FMA, F16C, BMI2), never for the build host:
# its default GGML_NATIVE=ON adds AVX-512 and AMX tile code, and AMX that a CPU advertises but a
# sandbox forbids crashes the server on its first completion (SIGSEGV in ggml_backend_amx_mul_mat).
LLAMA_CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON \
-DGGML_BMI2=ON -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
llama_pin=$(grep -i '^llama[-_]cpp[-_]python==' constraints.txt)

stamp="$VENV/.wmil-installed"
want=$(printf '%s\n' "$LLAMA_CMAKE_ARGS" | cat - pyproject.toml constraints.txt scripts/setup-env.sh \
  | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet torch==2.13.0

if ! command -v cmake >/dev/null || ! command -v c++ >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && apt-get install -y -qq cmake g++ >/dev/null
  else
    echo "setup-env: cmake and a C++ compiler are needed to build llama-cpp-python (apt-get install cmake g++)" >&2
    exit 1
  fi
fi

# pip's own wheel cache is keyed on the source, not on CMAKE_ARGS, so a wheel built earlier with
# native flags would be picked up again. The wheel is built with pip's cache off, into a folder
# keyed on the pin, the flags and the compiler, and force-installed from there.
key=$(printf '%s\n%s\n%s\n' "$llama_pin" "$LLAMA_CMAKE_ARGS" "$(c++ --version | head -n 1)" \
  | sha256sum | cut -c1-16)
wheels="${XDG_CACHE_HOME:-$HOME/.cache}/wmil/llama-wheels/$key"
if ! ls "$wheels"/llama_cpp_python-*.whl >/dev/null 2>&1; then
  echo "setup-env: building $llama_pin for portable x86-64 (a few minutes, once per machine)"
  tmp=$(mktemp -d "${TMPDIR:-/tmp}/wmil-llama-wheel.XXXXXX")
  CMAKE_ARGS="$LLAMA_CMAKE_ARGS" CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) \
    "$VENV/bin/python" -m pip wheel --quiet --no-cache-dir --no-deps --no-binary llama-cpp-python \
    -w "$tmp" "$llama_pin"
  mkdir -p "$(dirname "$wheels")"
  rm -rf "$wheels" "$wheels.partial" && mv "$tmp" "$wheels.partial" && mv "$wheels.partial" "$wheels"
fi
"$VENV/bin/python" -m pip install --quiet --no-cache-dir --force-reinstall --no-deps "$wheels"/llama_cpp_python-*.whl

"$VENV/bin/python" -m pip install --quiet -c constraints.txt -e '.[test,llm,lint]'
echo "$want" > "$stamp"
echo "environment ready: $VENV"

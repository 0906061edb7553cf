#!/usr/bin/env bash
# Install everything tinyml needs on a Debian/Ubuntu machine:
#   system: gcc, gcc-arm-none-eabi + newlib, qemu-system-arm, stm32flash (apt, when missing);
#           for the tests' host fuzzing of the serial parser: clang + libFuzzer (libclang-rt-14-dev)
#   python: a virtual environment in .venv/ with tinyml and its dependencies (pip, by name)
# Safe to run again; it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v gcc >/dev/null 2>&1 || need_apt+=(gcc)
command -v arm-none-eabi-gcc >/dev/null 2>&1 || need_apt+=(gcc-arm-none-eabi)
[ -d /usr/lib/arm-none-eabi/newlib ] || need_apt+=(libnewlib-arm-none-eabi)
command -v qemu-system-arm >/dev/null 2>&1 || need_apt+=(qemu-system-arm)
command -v stm32flash >/dev/null 2>&1 || need_apt+=(stm32flash)
# for the tests (tests/test_firmware_serial_fuzz.py): clang with libFuzzer
command -v clang >/dev/null 2>&1 || need_apt+=(clang)
need_fuzzer=0
ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-*.a >/dev/null 2>&1 || need_fuzzer=1
python3 -c "import venv, ensurepip" >/dev/null 2>&1 || need_apt+=(python3-venv)

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
if [ ${#need_apt[@]} -gt 0 ] || [ "$need_fuzzer" -eq 1 ]; then
    $SUDO apt-get update -qq
fi
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "tinyml install: apt packages: ${need_apt[*]}" >&2
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
# libFuzzer's runtime: its own package on Debian 12 (libclang-rt-14-dev), part of
# libclang-common-*-dev elsewhere; optional (only the fuzzing test needs it)
if ! ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-*.a >/dev/null 2>&1; then
    ver=$(clang --version 2>/dev/null | sed -n 's/.*clang version \([0-9]*\).*/\1/p' | head -1)
    echo "tinyml install: apt package: libclang-rt-${ver:-14}-dev (libFuzzer)" >&2
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "libclang-rt-${ver:-14}-dev" >/dev/null \
        || echo "tinyml install: warning: libFuzzer not installed; tests/test_firmware_serial_fuzz.py will fail" >&2
fi

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e '.[test]'
# Keras 2 (tf_keras): the only Keras whose LSTM converts to the fused int8
# UNIDIRECTIONAL_SEQUENCE_LSTM with TensorFlow 2.21 (tests/test_ops_lstm.py).
# --no-deps: tf-keras depends on the full `tensorflow` package, which would
# clash with the `tensorflow-cpu` that '.[test]' installs.
.venv/bin/python -m pip install -q --no-deps tf-keras==2.21.0
echo "tinyml install: done (.venv/bin/tinyml)" >&2

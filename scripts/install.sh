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
# optional for tests (tests/test_firmware_serial_fuzz.py): clang with libFuzzer
command -v clang >/dev/null 2>&1 || need_apt+=(clang)
if ! ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-*.a >/dev/null 2>&1 \
   && apt-cache show libclang-rt-14-dev >/dev/null 2>&1; then
    need_apt+=(libclang-rt-14-dev)
fi
python3 -c "import venv, ensurepip" >/dev/null 2>&1 || need_apt+=(python3-venv)

if [ ${#need_apt[@]} -gt 0 ]; then
    echo "tinyml install: apt packages: ${need_apt[*]}" >&2
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e '.[test]'
echo "tinyml install: done (.venv/bin/tinyml)" >&2

"""Fuzz the firmware's serial command parser on the host (libFuzzer, ASan + UBSan).

`firmware/fuzz/serial_fuzz.c` compiles `firmware/app/serial_eembc.c`
unmodified against host stubs (UART, timer, a small model) and feeds the
fuzzer's bytes as the UART's receive stream. Three builds cover the
parser's configurations (`firmware/fuzz/model.h`): `plain` (image buffer),
`stream` (--stream-input, no image buffer) and `stream-buffer` (both).

    python -m tinyml.testing.serial_fuzz --seconds 600          # the long run
    python -m tinyml.testing.serial_fuzz --runs 20000 --seed 1  # the CI smoke

Each variant starts from the seed corpus of EEMBC commands
(`firmware/fuzz/corpus/`, copied: the checkout is never written) with the
command dictionary `firmware/fuzz/serial.dict`. Any sanitizer report,
protocol-invariant violation, crash, timeout or leak is a finding: the
reproducer is kept in the output folder and the exit status is 1.
Needs clang with libFuzzer (Debian 12: `clang`, `libclang-rt-14-dev`,
installed by scripts/install.sh).
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field

from tinyml import paths
from tinyml.errors import ToolchainError

VARIANTS: dict[str, int] = {"plain": 0, "stream": 1, "stream-buffer": 2}
FUZZ_DIR = os.path.join(paths.FIRMWARE, "fuzz")
CORPUS = os.path.join(FUZZ_DIR, "corpus")
DICT = os.path.join(FUZZ_DIR, "serial.dict")

_CFLAGS = ["-g", "-O1", "-fsanitize=fuzzer,address,undefined", "-fno-sanitize-recover=all",
           "-fno-omit-frame-pointer", "-Wall", "-Wextra", "-Werror"]
_STATUS = re.compile(r"^#(\d+)\s+\w+\s+cov: (\d+) ft: (\d+) corp: (\d+)/")
_EXEC_S = re.compile(r"exec/s: (\d+)")
_FINDING = re.compile(r"ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:|"
                      r"protocol invariant broken|deadly signal")


@dataclass
class FuzzResult:
    """One variant's run: libFuzzer's final figures and any finding."""

    variant: str
    execs: int = 0
    cov: int = 0            # edges covered (libFuzzer's `cov`)
    features: int = 0       # libFuzzer's `ft`
    corpus: int = 0         # corpus units at the end
    exec_per_s: int = 0
    returncode: int = 0
    findings: list[str] = field(default_factory=list)   # report lines
    artifacts: list[str] = field(default_factory=list)  # reproducer files

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.findings and not self.artifacts


def find_clang() -> str:
    """clang that can link `-fsanitize=fuzzer`, or a ToolchainError naming the fix."""
    for name in ("clang", "clang-14", "clang-15", "clang-16"):
        exe = shutil.which(name)
        if exe:
            return exe
    raise ToolchainError("clang not found (needed for the libFuzzer harness)",
                         fix="install clang and libclang-rt-14-dev (bash scripts/install.sh)")


def build(variant: str, out_dir: str, *, planted_bug: bool = False, clang: str | None = None) -> str:
    """Compile the harness for one variant; returns the executable's path."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}")
    clang = clang or find_clang()
    exe = os.path.join(out_dir, f"serial_fuzz_{variant}{'_bug' if planted_bug else ''}")
    cmd = [clang, *_CFLAGS, f"-DFUZZ_VARIANT={VARIANTS[variant]}",
           f"-DFUZZ_PLANTED_BUG={1 if planted_bug else 0}",
           "-I", FUZZ_DIR, "-I", os.path.join(paths.FIRMWARE, "app"),
           "-I", os.path.join(paths.FIRMWARE, "runtime"),
           os.path.join(FUZZ_DIR, "serial_fuzz.c"),
           os.path.join(paths.FIRMWARE, "runtime", "console.c"), "-o", exe]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        if "libclang_rt.fuzzer" in proc.stderr or "fuzzer" in last:
            raise ToolchainError(f"clang cannot link libFuzzer: {last}",
                                 fix="install libclang-rt-14-dev (bash scripts/install.sh)")
        raise ToolchainError(f"the fuzz harness did not compile: {last}", where=FUZZ_DIR)
    return exe


def run(exe: str, variant: str, work_dir: str, *, seconds: float | None = None,
        runs: int | None = None, seed: int = 1, max_len: int = 512) -> FuzzResult:
    """Fuzz `exe` from a copy of the seed corpus, for `seconds` or `runs` inputs."""
    corpus = os.path.join(work_dir, f"corpus_{variant}")
    artifacts = os.path.join(work_dir, f"artifacts_{variant}") + os.sep
    shutil.copytree(CORPUS, corpus, dirs_exist_ok=True)
    os.makedirs(artifacts, exist_ok=True)
    # libFuzzer's RSS limit reads getrusage's ru_maxrss, which Linux carries
    # across exec: a fuzzer started from a 2.3 GB pytest worker "used" 2.3 GB
    # before its first input (CI's out-of-memory on the empty input). So the
    # RSS watchdog is off and each allocation is capped instead; leaks are
    # LeakSanitizer's findings.
    args = [exe, f"-seed={seed}", f"-dict={DICT}", f"-max_len={max_len}", "-timeout=10",
            "-rss_limit_mb=0", "-malloc_limit_mb=2048", "-print_final_stats=1",
            f"-artifact_prefix={artifacts}"]
    if seconds is not None:
        args.append(f"-max_total_time={int(seconds)}")
    if runs is not None:
        args.append(f"-runs={runs}")
    args.append(corpus)
    env = dict(os.environ, ASAN_OPTIONS="abort_on_error=0:detect_leaks=1",
               UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
    proc = subprocess.run(args, capture_output=True, text=True, env=env)
    result = FuzzResult(variant, returncode=proc.returncode)
    for line in proc.stderr.splitlines():
        m = _STATUS.match(line)
        if m:
            result.execs, result.cov, result.features, result.corpus = map(int, m.groups())
        m = _EXEC_S.search(line)
        if m and line.startswith("#"):
            result.exec_per_s = int(m.group(1))
        if line.startswith("stat::number_of_executed_units:"):
            result.execs = int(line.split(":")[-1])
        if line.startswith("stat::average_exec_per_sec:"):
            result.exec_per_s = int(line.split(":")[-1])
        if _FINDING.search(line):
            result.findings.append(line.strip())
    result.artifacts = sorted(os.path.join(artifacts, f) for f in os.listdir(artifacts))
    return result


def fuzz(variants: list[str], work_dir: str, *, seconds: float | None = None,
         runs: int | None = None, seed: int = 1) -> list[FuzzResult]:
    """Build and fuzz each variant in turn (`seconds` is the total, split equally)."""
    clang = find_clang()
    each = None if seconds is None else max(1.0, seconds / len(variants))
    results = []
    for v in variants:
        exe = build(v, work_dir, clang=clang)
        results.append(run(exe, v, work_dir, seconds=each, runs=runs, seed=seed))
    return results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tinyml.testing.serial_fuzz",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, help="total fuzzing time, split over the variants")
    ap.add_argument("--runs", type=int, help="inputs per variant (after the seed corpus)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--variant", choices=sorted(VARIANTS), action="append",
                    help="fuzz only this build (repeatable; default: all three)")
    ap.add_argument("-o", "--out", help="keep corpora and reproducers here (default: a temp folder)")
    a = ap.parse_args(argv)
    if a.seconds is None and a.runs is None:
        a.seconds = 60.0
    variants = a.variant or list(VARIANTS)
    try:
        find_clang()
        work = a.out or tempfile.mkdtemp(prefix="tinyml-serial-fuzz-")
        os.makedirs(work, exist_ok=True)
        results = fuzz(variants, work, seconds=a.seconds, runs=a.runs, seed=a.seed)
    except ToolchainError as e:
        print(e.line(), file=sys.stderr)
        return e.exit_code
    bad = 0
    for r in results:
        verdict = "ok" if r.ok else f"FINDING ({len(r.artifacts)} reproducer(s))"
        print(f"{r.variant}: {r.execs} execs, cov {r.cov}, ft {r.features}, corpus {r.corpus}, "
              f"{r.exec_per_s} exec/s: {verdict}")
        for line in r.findings[:5]:
            print(f"  {line}")
        for path in r.artifacts:
            print(f"  reproducer: {path}")
        bad += not r.ok
    print(f"corpora and reproducers in {work}", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

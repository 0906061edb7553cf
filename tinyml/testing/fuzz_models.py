"""Model fuzzing: a structure-aware mutator of .tflite files and a crash-proof runner.

`Mutator` finds the editable places of a model by walking its flatbuffer with
the `tflite` readers (tensor types, shapes, buffer indices, scales, zero
points, quantized dimensions, operator opcode indices, inputs, outputs,
option fields, the operators vector for op order, the offsets that link
tables) and makes one mutant at a time: byte flips, truncations, zero-filled
regions, flatbuffer offset edits, or a semantic edit of one of those fields
(every edit keeps the file's length, so the rest of the file stays valid).

`run_forked` runs one target (a callable) in a forked child with its own
process group, stdout/stderr captured, and a timeout; `classify` turns what
happened into one of OUTCOMES. `fuzz` runs a campaign: each mutant through
`inspect` and `plan`, accepted ones through `generate` and `verify
--sanitize`, each command being the CLI's `main(argv)` (passed in by the
caller, scripts/fuzz_models.py or the tests) in a forked child.
"""
from __future__ import annotations

import json
import os
import random
import select
import signal
import struct
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from typing import Callable

import tflite

# Outcome classes (the table). All but the first two fail a run;
# GENERATED_FAULT: tinyml accepted the model but its C failed to compile or
# crashed (a sanitizer report under verify --sanitize).
OK, ERROR, TRACEBACK, SIGNAL, HANG, NOT_BIT_EXACT, GENERATED_FAULT = (
    "ok", "error", "traceback", "signal", "hang", "not-bit-exact", "generated-code-fault")
OUTCOMES = (OK, ERROR, TRACEBACK, SIGNAL, HANG, NOT_BIT_EXACT, GENERATED_FAULT)
FAILING = (TRACEBACK, SIGNAL, HANG, NOT_BIT_EXACT, GENERATED_FAULT)
_GENERATED_FAULTS = ("generated code crashed or failed", "host compile of generated C failed",
                     "generated code wrote a short output file")
TRACEBACK_EXIT = 70          # a forked target that let an exception escape exits with this


@dataclass(frozen=True)
class Site:
    """One editable field: absolute byte position, struct format, and what it is."""
    pos: int
    fmt: str                  # struct format: "<b" "<B" "<i" "<I" "<q" "<f"
    what: str                 # "type", "shape", "buffer", "scale", "zero_point", "qdim", "opcode",
    #                           "op_input", "op_output", "option", "option_enum", "graph_io", "offset"


@dataclass(frozen=True)
class Mutant:
    base: str                 # the model it came from
    how: str                  # a short description of the edit
    data: bytes


def _tab_field(tab, slot: int) -> int:
    """Absolute position of a table's scalar field, or 0 when absent."""
    o = tab.Offset(slot)
    return tab.Pos + o if o else 0


def _vector(tab, slot: int) -> tuple[int, int]:
    """(start, length) of a table's vector field, (0, 0) when absent."""
    o = tab.Offset(slot)
    return (tab.Vector(o), tab.VectorLen(o)) if o else (0, 0)


# options table name -> [(vtable slot, format, enum?)]
_OPTION_FIELDS = {
    "Conv2DOptions": [(4, "<b", True), (6, "<i", False), (8, "<i", False), (10, "<b", True), (12, "<i", False),
                      (14, "<i", False)],
    "DepthwiseConv2DOptions": [(4, "<b", True), (6, "<i", False), (8, "<i", False), (10, "<i", False),
                               (12, "<b", True), (14, "<i", False), (16, "<i", False)],
    "Pool2DOptions": [(4, "<b", True), (6, "<i", False), (8, "<i", False), (10, "<i", False), (12, "<i", False),
                      (14, "<b", True)],
    "FullyConnectedOptions": [(4, "<b", True), (6, "<b", True), (8, "<B", False)],
    "AddOptions": [(4, "<b", True)], "MulOptions": [(4, "<b", True)], "SubOptions": [(4, "<b", True)],
    "SoftmaxOptions": [(4, "<f", False)],
    "ConcatenationOptions": [(4, "<i", False), (6, "<b", True)],
}
_TABLE_NAMES = {v: k for k, v in vars(tflite.BuiltinOptions).items() if isinstance(v, int)}


def find_sites(data: bytes) -> tuple[list[Site], list[int]]:
    """The semantic sites of a model, and the positions of its operators-vector entries."""
    m = tflite.Model.GetRootAs(data, 0)
    sites: list[Site] = []
    sg = m.Subgraphs(0)
    for i in range(sg.TensorsLength()):
        t = sg.Tensors(i)
        tab = t._tab
        for slot, fmt, what in ((6, "<b", "type"), (8, "<I", "buffer")):
            p = _tab_field(tab, slot)
            if p:
                sites.append(Site(p, fmt, what))
        start, n = _vector(tab, 4)
        sites += [Site(start + 4 * k, "<i", "shape") for k in range(n)]
        o = tab.Offset(4)
        if o:
            sites.append(Site(tab.Pos + o, "<I", "offset"))
        q = t.Quantization()
        if q is not None:
            start, n = _vector(q._tab, 8)
            sites += [Site(start + 4 * k, "<f", "scale") for k in range(n)]
            start, n = _vector(q._tab, 10)
            sites += [Site(start + 8 * k, "<q", "zero_point") for k in range(n)]
            p = _tab_field(q._tab, 16)
            if p:
                sites.append(Site(p, "<i", "qdim"))
    ops_start, nops = _vector(sg._tab, 10)
    op_entries = [ops_start + 4 * k for k in range(nops)]
    sites += [Site(p, "<I", "offset") for p in op_entries]
    for i in range(nops):
        op = sg.Operators(i)
        tab = op._tab
        p = _tab_field(tab, 4)
        if p:
            sites.append(Site(p, "<I", "opcode"))
        for slot, what in ((6, "op_input"), (8, "op_output")):
            start, n = _vector(tab, slot)
            sites += [Site(start + 4 * k, "<i", what) for k in range(n)]
        p = _tab_field(tab, 10)
        if p:
            sites.append(Site(p, "<B", "option_enum"))
        name = _TABLE_NAMES.get(op.BuiltinOptionsType())
        table = op.BuiltinOptions() if name in _OPTION_FIELDS else None
        if table is not None:
            for slot, fmt, enum in _OPTION_FIELDS[name]:
                o = table.Offset(slot)
                if o:
                    sites.append(Site(table.Pos + o, fmt, "option_enum" if enum else "option"))
    for slot in (6, 8):
        start, n = _vector(sg._tab, slot)
        sites += [Site(start + 4 * k, "<i", "graph_io") for k in range(n)]
    return sites, op_entries


_INTS = [0, 1, 2, 3, -1, -2, 7, 127, 128, 255, 256, 1000, 1 << 16, 1 << 20, (1 << 20) + 1, (1 << 31) - 1, -(1 << 31)]
_SCALES = [0.0, -1.0, float("nan"), float("inf"), -float("inf"), 1e30, 1e-30, 1e-45, 2.0 ** 16, 2.0 ** 17, 1e6]
_ZPS = [-129, 128, 1000, -1000, 127, -128, 0, 255, 256, 32768, 1 << 40, -(1 << 40)]


class Mutator:
    """Mutants of one model, drawn from a seeded random.Random."""

    KINDS = ("flip", "truncate", "zero", "offset", "semantic", "semantic", "semantic", "order")

    def __init__(self, name: str, data: bytes, rng: random.Random) -> None:
        self.name, self.data, self.rng = name, data, rng
        self.sites, self.op_entries = find_sites(data)

    def mutant(self) -> Mutant:
        kind = self.rng.choice(self.KINDS)
        if kind == "order" and len(self.op_entries) < 2:
            kind = "semantic"
        return getattr(self, "_" + kind)()

    def _new(self, how: str, data: bytes | bytearray) -> Mutant:
        return Mutant(self.name, how, bytes(data))

    def _flip(self) -> Mutant:
        d = bytearray(self.data)
        n = self.rng.randint(1, 8)
        for _ in range(n):
            d[self.rng.randrange(len(d))] ^= 1 << self.rng.randrange(8)
        return self._new(f"flip {n} bit(s)", d)

    def _truncate(self) -> Mutant:
        cut = self.rng.randrange(len(self.data))
        return self._new(f"truncate at {cut}", self.data[:cut])

    def _zero(self) -> Mutant:
        d = bytearray(self.data)
        start, n = self.rng.randrange(len(d)), self.rng.choice([1, 4, 16, 64, 256])
        d[start:start + n] = bytes(min(n, len(d) - start))
        return self._new(f"zero {n} bytes at {start}", d)

    def _offset(self) -> Mutant:
        offsets = [s for s in self.sites if s.what == "offset"]
        s = self.rng.choice(offsets)
        (v,) = struct.unpack_from("<I", self.data, s.pos)
        nv = self.rng.choice([v + 4, v - 4, v + 8, v - 8, v + self.rng.randrange(1, 4096), 0, 0xFFFFFFFF]) & 0xFFFFFFFF
        d = bytearray(self.data)
        struct.pack_into("<I", d, s.pos, nv)
        return self._new(f"offset at {s.pos}: {v} -> {nv}", d)

    def _order(self) -> Mutant:
        """Swap two operators (each vector entry is an offset relative to its own position)."""
        a, b = sorted(self.rng.sample(range(len(self.op_entries)), 2))
        pa, pb = self.op_entries[a], self.op_entries[b]
        (ra,) = struct.unpack_from("<I", self.data, pa)
        (rb,) = struct.unpack_from("<I", self.data, pb)
        d = bytearray(self.data)
        struct.pack_into("<I", d, pa, pb + rb - pa)
        struct.pack_into("<I", d, pb, pa + ra - pb)
        return self._new(f"swap operators {a} and {b}", d)

    def _value(self, s: Site, old):
        r = self.rng
        if s.what == "scale":
            return r.choice(_SCALES + [old * 2, old / 2, old * 1000, old / 1000, old * 1e6])
        if s.what == "zero_point":
            return r.choice(_ZPS + [old + 1, old - 1])
        if s.what == "type":
            return r.randrange(-1, 20)
        if s.what in ("option_enum",):
            return r.choice([r.randrange(0, 8), r.randrange(0, 128)]) if s.fmt == "<b" else r.randrange(0, 256)
        if s.fmt == "<B":
            return r.randrange(0, 256)
        if s.fmt == "<f":
            return r.choice(_SCALES + [old * 2, -old])
        if s.what in ("buffer", "opcode") or s.fmt == "<I":
            return r.choice([0, 1, old + 1, old - 1 if old else 0, r.randrange(0, 64), 0xFFFFFFFF, 1 << 20])
        return r.choice(_INTS + [old + 1, old - 1, r.randrange(-1, 64)])

    def _semantic(self) -> Mutant:
        s = self.rng.choice([s for s in self.sites if s.what != "offset"])
        (old,) = struct.unpack_from(s.fmt, self.data, s.pos)
        new = self._value(s, old)
        lim = {"<b": (-128, 127), "<B": (0, 255), "<i": (-(1 << 31), (1 << 31) - 1), "<I": (0, (1 << 32) - 1),
               "<q": (-(1 << 63), (1 << 63) - 1)}.get(s.fmt)
        if lim is not None:
            new = min(max(int(new), lim[0]), lim[1])
        d = bytearray(self.data)
        struct.pack_into(s.fmt, d, s.pos, new)
        return self._new(f"{s.what} at {s.pos}: {old!r} -> {new!r}", d)


def run_forked(target: Callable[[], int], timeout: float) -> tuple[int | None, int | None, str, str, float]:
    """Run `target()` in a forked child (own process group, fds 1 and 2 captured).

    Returns (exit code or None, signal number or None (-1 for a timeout),
    stdout, stderr, seconds). An exception escaping `target` is printed with
    its traceback and exits TRACEBACK_EXIT."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.monotonic()
        pid = os.fork()
        if pid == 0:                                   # the child
            code = TRACEBACK_EXIT
            try:
                os.setpgid(0, 0)
                os.dup2(out.fileno(), 1)
                os.dup2(err.fileno(), 2)
                sys.stdout = open(1, "w", closefd=False)      # not a parent's replacement (pytest capture)
                sys.stderr = open(2, "w", closefd=False)
                code = int(target() or 0)
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            except BaseException:
                traceback.print_exc()
            finally:
                try:
                    sys.stdout.flush()
                    sys.stderr.flush()
                finally:
                    os._exit(code)
        fd = os.pidfd_open(pid)
        try:
            ready, _, _ = select.select([fd], [], [], timeout)
        finally:
            os.close(fd)
        sig: int | None = None
        if not ready:
            with _suppress():
                os.killpg(pid, signal.SIGKILL)
            with _suppress():
                os.kill(pid, signal.SIGKILL)
            sig = -1
        _, status = os.waitpid(pid, 0)
        with _suppress():
            os.killpg(pid, signal.SIGKILL)            # whatever the target left behind (compilers, oracles)
        seconds = time.monotonic() - t0
        code = None
        if sig is None:
            if os.WIFSIGNALED(status):
                sig = os.WTERMSIG(status)
            else:
                code = os.WEXITSTATUS(status)
        out.seek(0)
        err.seek(0)
        return code, sig, out.read().decode(errors="replace"), err.read().decode(errors="replace"), seconds


class _suppress:
    def __enter__(self):
        return self

    def __exit__(self, *exc) -> bool:
        return exc[0] is not None and issubclass(exc[0], OSError)


def classify(code: int | None, sig: int | None, stdout: str, stderr: str,
             bit_exact: Callable[[str], bool] | None = None) -> tuple[str, str]:
    """(outcome, detail) of one forked CLI run.

    exit 0 -> ok (or not-bit-exact when `bit_exact(stdout)` says so); a
    non-zero exit whose stderr ends with one 'error:' line and holds no
    traceback -> error; a traceback anywhere -> traceback; a signal -> signal;
    the timeout -> hang."""
    if sig == -1:
        return HANG, "timeout"
    if sig is not None:
        return SIGNAL, signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else f"signal {sig}"
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    verdict = _json_object(stdout)
    if "Traceback" not in stderr and code not in (0, TRACEBACK_EXIT) and verdict is not None \
            and bit_exact is None:
        # a --json answer with a non-zero exit: a verdict (plan: does not fit), or {"ok": false, "error": ...}
        if verdict.get("ok") is False:
            return ERROR, str(verdict.get("error", ""))[:300]
        return OK, f"exit {code}"
    if "Traceback (most recent call last)" in stderr or code == TRACEBACK_EXIT:
        return TRACEBACK, (lines[-1] if lines else "traceback")[:200]
    if bit_exact is not None and code in (0, 1) and not bit_exact(stdout):
        return NOT_BIT_EXACT, stdout.strip().splitlines()[-1][:300] if stdout.strip() else "no output"
    if code == 0:
        if bit_exact is not None and not bit_exact(stdout):
            return NOT_BIT_EXACT, stdout.strip().splitlines()[-1][:200] if stdout.strip() else "no output"
        return OK, ""
    # a negative exit status in a child process (e.g. 128+n from a shell) counts as a signal death
    if code is not None and code >= 128 and code - 128 in signal.Signals._value2member_map_:
        return SIGNAL, f"exit {code} ({signal.Signals(code - 128).name})"
    last = lines[-1] if lines else ""
    if any(k in last for k in _GENERATED_FAULTS):
        return GENERATED_FAULT, last[:300]
    if last.startswith("error: "):
        return ERROR, last[:200]
    return TRACEBACK, f"exit {code} without a one-line error: {last[:160]!r}"


def _json_object(stdout: str) -> dict | None:
    lines = stdout.strip().splitlines()
    if not lines:
        return None
    try:
        d = json.loads(lines[-1])
    except ValueError:
        return None
    return d if isinstance(d, dict) else None


@dataclass
class Tally:
    """Outcome counts per command, with one example per failing class."""
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)
    refusals: dict[str, list[str]] = field(default_factory=dict)     # generate/verify's clean errors, said

    def add(self, command: str, outcome: str, mutant: Mutant, detail: str) -> None:
        row = self.counts.setdefault(command, {k: 0 for k in OUTCOMES})
        row[outcome] += 1
        if outcome in FAILING:
            self.examples.setdefault(command, []).append(f"{outcome}: {mutant.base} ({mutant.how}): {detail}")
        elif outcome == ERROR and command not in ("inspect", "plan"):
            self.refusals.setdefault(command, []).append(f"{mutant.base} ({mutant.how}): {detail[:200]}")

    @property
    def failures(self) -> int:
        return sum(row[k] for row in self.counts.values() for k in FAILING)

    def table(self) -> str:
        head = "| command | mutants | " + " | ".join(OUTCOMES) + " |"
        rows = [head, "|---|---:|" + "---:|" * len(OUTCOMES)]
        for cmd, row in self.counts.items():
            rows.append(f"| {cmd} | {sum(row.values())} | " + " | ".join(str(row[k]) for k in OUTCOMES) + " |")
        return "\n".join(rows)


DEFAULT_MODELS = ("mlperf-tiny/ad01_int8.tflite", "mlperf-tiny/kws_ref_model.tflite",
                  "mlperf-tiny/pretrainedResnet_quant.tflite", "mlperf-tiny/vww_96_int8.tflite",
                  "tflm/person_detect.tflite", "vit/vit_relu_d64x4.tflite",
                  "mobilenetv2/mobilenetv2_a030_80_int8.tflite")


def shared_models() -> list[str]:
    from tinyml.paths import shared_models as root_dir
    root = root_dir()
    return [os.path.join(root, m) for m in DEFAULT_MODELS if os.path.isfile(os.path.join(root, m))]


def _bit_exact(stdout: str) -> bool:
    """False only when verify's JSON says the outputs differ."""
    try:
        d = json.loads(stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return True
    return d.get("bit_exact", True) is not False


@dataclass
class FuzzConfig:
    models: list[str]
    mutants: int
    verify: int
    seed: int = 0
    timeout: float = 60.0
    verify_timeout: float = 300.0
    generate: int = 50


def fuzz(cfg: FuzzConfig, cli_main: Callable[[list[str]], int], progress=None) -> Tally:
    """Run the campaign: each command is `cli_main(argv)` (tinyml.cli.main, passed in by
    the caller: this module sits below the CLI) in a forked child."""
    from tinyml.codegen.importer import load_bytes
    from tinyml.errors import TinymlError
    # imported once here, so each forked child starts with them loaded
    from tinyml.codegen import emit, lower, pipeline, verify  # noqa: F401

    if not cfg.models:
        raise TinymlError("no models to mutate", "scripts/fuzz_models.py",
                          "pass .tflite files, or set TINYML_SHARED_MODELS to the shared models folder")
    rng = random.Random(cfg.seed)
    mutators = [Mutator(os.path.basename(p), load_bytes(p), rng) for p in cfg.models]
    tally = Tally()
    verified = generated = 0
    with tempfile.TemporaryDirectory(prefix="tinyml-fuzz-") as tmp:
        path = os.path.join(tmp, "mutant.tflite")
        for n in range(cfg.mutants):
            mutant = mutators[n % len(mutators)].mutant()
            with open(path, "wb") as f:
                f.write(mutant.data)
            accepted = False
            for name, argv in (("inspect", ["inspect", path, "--json"]), ("plan", ["plan", path, "--json"])):
                code, sig, out, err, _ = run_forked(lambda argv=argv: cli_main(argv), cfg.timeout)
                outcome, detail = classify(code, sig, out, err)
                tally.add(name, outcome, mutant, detail)
                accepted = accepted or (name == "inspect" and outcome == OK and not detail)
            if accepted and generated < cfg.generate:
                generated += 1
                argv = ["generate", path, "-o", os.path.join(tmp, "gen")]
                code, sig, out, err, _ = run_forked(lambda argv=argv: cli_main(argv), cfg.timeout)
                outcome, detail = classify(code, sig, out, err)
                tally.add("generate", outcome, mutant, detail)
            if accepted and verified < cfg.verify:
                verified += 1
                argv = ["verify", path, "--sanitize", "--inputs", "3", "--json"]
                code, sig, out, err, _ = run_forked(lambda argv=argv: cli_main(argv), cfg.verify_timeout)
                outcome, detail = classify(code, sig, out, err, bit_exact=_bit_exact)
                tally.add("verify --sanitize", outcome, mutant, detail)
            if progress:
                progress(n + 1, cfg.mutants, tally)
    return tally

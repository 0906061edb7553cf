"""Run a built firmware's self-test on an emulator and parse its report.

QEMU (`qemu-system-arm`):
- STM32F4 boards run the unchanged board binary on `netduinoplus2`
  (STM32F405); the console USART is connected to the matching `-serial`.
- Cortex-M7 boards (and the L4) run on an MPS2 machine (`mps2-an500` is a
  Cortex-M7) from the DIR/mps2 variant build: memory origins follow the MPS2
  map, SRAM and flash sizes stay the board's.
- `-icount shift=0`: one guest instruction = 1 ns of virtual time. The
  firmware times inferences with SysTick on the processor clock, so
  instructions = SysTick ticks * 1e9 / (the machine's SysTick clock):
  168 MHz on netduinoplus2 (5.95 ns per tick), 25 MHz on MPS2 (40 per tick).
  These are instructions, not cycles: QEMU models no pipeline, cache or
  flash wait states.

Renode: DIR/renode/<board>.repl/.resc/.robot are generated from the board
descriptor; used when a `renode` binary is on PATH.

A run ends when the firmware exits via semihosting, prints its RESULT line,
faults (the HardFault handler prints PC/LR/CFSR and RESULT FAIL), or the
timeout expires; the emulator process is always killed.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import asdict, dataclass, field

import jinja2

from tinyml.boards import Board, load_board
from tinyml.firmware.build import TEMPLATE_DIR, ensure_variant, load_build_meta, variant_dir
from tinyml.errors import ToolchainError, TinymlError

# QEMU 7.2 stm32f405-soc creates its USARTs in this order; serial port i is USART i.
QEMU_STM32F405_USARTS = [0x4001_1000, 0x4000_4400, 0x4000_4800, 0x4000_4C00,
                         0x4000_5000, 0x4001_1400, 0x4000_7800, 0x4000_7C00]
# SysTick clock (processor clock) of each QEMU machine, Hz.
QEMU_SYSTICK_HZ = {"netduinoplus2": 168_000_000, "mps2-an500": 25_000_000,
                   "mps2-an386": 25_000_000, "mps2-an385": 25_000_000}


@dataclass
class VectorResult:
    index: int
    passed: bool
    ticks: int
    detail: str = ""


@dataclass
class EmulationResult:
    passed: bool
    instructions_per_inference: int | None
    peak_sram_bytes_measured: int | None
    flash_bytes: int | None
    emulator: str
    machine: str
    variant: str
    board: str
    model: str
    note: str
    vectors: list[VectorResult] = field(default_factory=list)
    arena_bytes: int | None = None
    arena_used_bytes: int | None = None
    stack_bytes: int | None = None
    stack_used_bytes: int | None = None
    stack_estimate_bytes: int | None = None   # static worst case of the build (firmware/stack_usage.py)
    static_ram_bytes: int | None = None
    timer: str = ""
    fault: str | None = None
    error: str | None = None
    timed_out: bool = False
    seconds: float = 0.0
    output: str = ""

    def to_json(self) -> dict:
        d = asdict(self)
        d["vectors"] = [asdict(v) for v in self.vectors]
        return d


def qemu_serial_args(board: Board, variant: str, spec: str) -> list[str]:
    """`-serial` options that connect `spec` (e.g. "stdio") to the console UART."""
    if variant != "native":
        return ["-serial", spec]
    if board.qemu.machine != "netduinoplus2":
        raise TinymlError(f"no QEMU serial mapping for machine {board.qemu.machine}", board.path,
                          "use netduinoplus2 or an mps2 variant")
    try:
        idx = QEMU_STM32F405_USARTS.index(board.uart.base)
    except ValueError:
        raise TinymlError(f"QEMU's STM32F405 has no USART at 0x{board.uart.base:08x}", board.path,
                          "use a USART1-6 console") from None
    args: list[str] = []
    for _ in range(idx):
        args += ["-serial", "null"]
    return args + ["-serial", spec]


def qemu_command(board: Board, elf: str, variant: str, serial: str = "stdio") -> list[str]:
    qemu = shutil.which("qemu-system-arm")
    if qemu is None:
        raise ToolchainError("qemu-system-arm not found on PATH", "tinyml emulate",
                             "install the qemu-system-arm package (apt)")
    return [qemu, "-M", board.qemu.machine, "-nographic", "-monitor", "none",
            "-icount", "shift=0", "-semihosting-config", "enable=on,target=native",
            "-kernel", elf, *qemu_serial_args(board, variant, serial)]


def machine_note(board: Board, variant: str) -> str:
    if variant == "native":
        return (f"unchanged {board.name} binary on QEMU {board.qemu.machine}")
    return (f"{board.name} variant build on QEMU {board.qemu.machine}: memory origins follow the "
            f"MPS2 map (flash at 0x0, SRAM at 0x20000000), sizes are the board's")


def _run_capture(cmd: list[str], timeout: float) -> tuple[str, bool, int | None]:
    """Run until exit, a RESULT line (+ grace), or timeout. Returns (output, timed_out, rc)."""
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    chunks: list[bytes] = []
    done = threading.Event()

    def reader() -> None:
        assert proc.stdout is not None
        for line in iter(proc.stdout.readline, b""):
            chunks.append(line)
            if line.startswith(b"RESULT "):
                done.set()
        done.set()

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    timed_out = not done.wait(timeout)
    rc = None
    try:
        rc = proc.wait(timeout=0 if timed_out else 3)
    except subprocess.TimeoutExpired:
        pass
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
    t.join(timeout=2)
    return b"".join(chunks).decode("utf-8", "replace"), timed_out, rc


_VEC = re.compile(r"^vector (\d+) (PASS|FAIL)(.*?)ticks=(\d+)", re.M)
_RUN = re.compile(r"^run rc=(-?\d+) ticks=(\d+)", re.M)
_MEM = re.compile(r"^memory arena_bytes=(\d+) arena_used=(\d+) stack_bytes=(\d+) stack_used=(\d+) "
                  r"static_ram=(\d+)", re.M)
_TIMER = re.compile(r"^timer source=(\w+) hz=(\d+)", re.M)
_FAULT = re.compile(r"^FAULT .*$", re.M)
_RESULT = re.compile(r"^RESULT (PASS|FAIL)", re.M)


def parse_selftest(text: str, systick_hz: int, res: EmulationResult) -> None:
    text = text.replace("\r", "")
    for m in _VEC.finditer(text):
        res.vectors.append(VectorResult(int(m.group(1)), m.group(2) == "PASS", int(m.group(4)),
                                        m.group(3).strip()))
    ticks = [v.ticks for v in res.vectors]
    if not ticks:
        ticks = [int(m.group(2)) for m in _RUN.finditer(text)]
    tm = _TIMER.search(text)
    if tm:
        res.timer = tm.group(1)
    if ticks and tm:
        hz = systick_hz if tm.group(1) == "systick" else int(tm.group(2))
        res.instructions_per_inference = round(sum(ticks) / len(ticks) * 1e9 / hz)
    mm = _MEM.search(text)
    if mm:
        a, au, s, su, st = (int(x) for x in mm.groups())
        res.arena_bytes, res.arena_used_bytes, res.stack_bytes = a, au, s
        res.stack_used_bytes, res.static_ram_bytes = su, st
        res.peak_sram_bytes_measured = st + su + au
    fm = _FAULT.search(text)
    if fm:
        res.fault = fm.group(0)
    rm = _RESULT.search(text)
    res.passed = bool(rm and rm.group(1) == "PASS" and not res.fault
                      and all(v.passed for v in res.vectors))


def emulate(out_dir: str, emulator: str = "qemu", timeout: float = 120.0, progress=None
            ) -> EmulationResult:
    meta = load_build_meta(out_dir)
    if meta.get("mode") != "selftest":
        raise TinymlError(f"{out_dir} was built in {meta.get('mode')} mode", out_dir,
                          "rebuild with --mode selftest to emulate the self-test")
    board = load_board(meta["board"])
    if emulator == "renode":
        return emulate_renode(out_dir, board, meta, timeout)
    if emulator != "qemu":
        raise TinymlError(f"unknown emulator {emulator!r}", "tinyml emulate", "use qemu or renode")
    variant = board.qemu.variant
    elf = ensure_variant(out_dir, variant, progress) if variant != "native" else \
        os.path.join(out_dir, "firmware.elf")
    if not os.path.exists(elf):
        raise TinymlError(f"no firmware at {elf}", out_dir, "run `tinyml build` first")
    cmd = qemu_command(board, elf, variant)
    t0 = time.monotonic()
    text, timed_out, rc = _run_capture(cmd, timeout)
    meta = load_build_meta(out_dir)
    sizes = meta["sizes"].get(variant, {})
    res = EmulationResult(passed=False, instructions_per_inference=None,
                          peak_sram_bytes_measured=None, flash_bytes=sizes.get("flash_bytes"),
                          emulator="qemu", machine=board.qemu.machine, variant=variant,
                          board=board.name, model=meta.get("model", ""),
                          note=machine_note(board, variant), timed_out=timed_out,
                          seconds=round(time.monotonic() - t0, 2), output=text,
                          stack_estimate_bytes=sizes.get("stack_estimate"))
    parse_selftest(text, QEMU_SYSTICK_HZ.get(board.qemu.machine, 0) or 1, res)
    if timed_out:
        res.passed = False
        res.error = f"no RESULT line within {timeout:g} s (firmware hung or too slow)"
    elif "qemu: fatal" in text:
        res.passed = False
        res.error = next(l for l in text.splitlines() if "qemu: fatal" in l).strip()
    elif not _RESULT.search(text):
        res.passed = False
        res.error = f"emulator exited (code {rc}) without a RESULT line"
    return res


# ---------------------------------------------------------------- per-op profile

# Force-included into every translation unit of the profile build: defines the
# generated model.c's TINYML_OP_BEGIN/TINYML_OP_END hooks (firmware/app/profile.h).
PROFILE_CFLAGS = "-DTINYML_PROFILE=1 -include app/profile.h"
_PROF = re.compile(r"^prof slot=(\d+) op=(-?\d+) kind=(\S+) ticks=(\d+)", re.M)
_PROF_TOTAL = re.compile(r"^prof overhead=(\d+) steps=(\d+) total=(\d+)", re.M)


@dataclass
class OpProfile:
    slot: int           # position in tinyml_run()
    op: int             # TFLite op index (first op of a fused group)
    kind: str           # TFLite op name or fused kernel name
    instructions: int   # hook overhead subtracted


@dataclass
class ProfileResult:
    emulation: EmulationResult
    ops: list[OpProfile]
    total_instructions: int | None      # profiled run, hooks included
    hook_overhead_instructions: int | None
    code: dict | None = None            # code_size() of the plain build's map

    def by_kind(self) -> list[dict]:
        acc: dict[str, list[int]] = {}
        for o in self.ops:
            a = acc.setdefault(o.kind, [0, 0])
            a[0] += 1
            a[1] += o.instructions
        total = sum(v[1] for v in acc.values()) or 1
        rows = [{"kind": k, "steps": n, "instructions": i, "share": round(i / total, 4)}
                for k, (n, i) in acc.items()]
        return sorted(rows, key=lambda r: -r["instructions"])

    def to_json(self) -> dict:
        d = self.emulation.to_json()
        d["profile"] = {"ops": [asdict(o) for o in self.ops], "kinds": self.by_kind(),
                        "total_instructions_profiled": self.total_instructions,
                        "hook_overhead_instructions": self.hook_overhead_instructions,
                        "sum_of_ops_instructions": sum(o.instructions for o in self.ops)}
        if self.code is not None:
            d["code_size"] = self.code
        return d


def _sync_tree(src: str, dst: str) -> None:
    """Copy src into dst, rewriting only files whose bytes differ (keeps make incremental)."""
    for root, _, files in os.walk(src):
        rel = os.path.relpath(root, src)
        if rel.split(os.sep)[0] in ("profile", "mps2", "obj"):
            continue
        os.makedirs(os.path.join(dst, rel), exist_ok=True)
        for f in files:
            a, b = os.path.join(root, f), os.path.join(dst, rel, f)
            with open(a, "rb") as fh:
                data = fh.read()
            if os.path.exists(b):
                with open(b, "rb") as fh:
                    if fh.read() == data:
                        continue
            with open(b, "wb") as fh:
                fh.write(data)


def build_profile_firmware(out_dir: str, progress=None) -> tuple[Board, str, str]:
    """Build DIR's model and vectors again in DIR/profile with the per-op hooks
    compiled in (same sources, flags plus PROFILE_CFLAGS); returns (board, variant, ELF)."""
    from tinyml.firmware.build import prepare_project, run_make
    meta = load_build_meta(out_dir)
    if meta.get("mode") != "selftest":
        raise TinymlError(f"{out_dir} was built in {meta.get('mode')} mode", out_dir,
                          "rebuild with --mode selftest to profile the self-test")
    board = load_board(meta["board"])
    variant = board.qemu.variant
    pdir = os.path.join(out_dir, "profile")
    for need in ("model", "vectors.c"):
        if not os.path.exists(os.path.join(out_dir, need)):
            raise TinymlError(f"{out_dir} has no {need}", out_dir, "run `tinyml build` first")
    os.makedirs(pdir, exist_ok=True)
    _sync_tree(os.path.join(out_dir, "model"), os.path.join(pdir, "model"))
    with open(os.path.join(out_dir, "vectors.c")) as f:
        vec = f.read()
    vpath = os.path.join(pdir, "vectors.c")
    if not os.path.exists(vpath) or open(vpath).read() != vec:
        with open(vpath, "w") as f:
            f.write(vec)
    extra = " ".join(x for x in (meta.get("extra_cflags", ""), PROFILE_CFLAGS) if x)
    prepare_project(board, pdir, "selftest", [variant], meta["stack_bytes"], extra)
    if progress:
        progress(f"compiling the profile build ({variant} memory map) in {pdir}")
    run_make(board, pdir, variant, meta["stack_bytes"])
    return board, variant, os.path.join(variant_dir(pdir, variant), "firmware.elf")


def profile(out_dir: str, timeout: float = 120.0, progress=None) -> ProfileResult:
    """Per-op instructions on QEMU: builds DIR/profile (see build_profile_firmware),
    runs its self-test (which also checks every vector) and one recorded run of vector 0."""
    board, variant, elf = build_profile_firmware(out_dir, progress)
    meta = load_build_meta(out_dir)
    cmd = qemu_command(board, elf, variant)
    t0 = time.monotonic()
    text, timed_out, rc = _run_capture(cmd, timeout)
    hz = QEMU_SYSTICK_HZ.get(board.qemu.machine, 0) or 1
    res = EmulationResult(passed=False, instructions_per_inference=None, peak_sram_bytes_measured=None,
                          flash_bytes=None, emulator="qemu", machine=board.qemu.machine, variant=variant,
                          board=board.name, model=meta.get("model", ""),
                          note=machine_note(board, variant) + "; profile build (per-op timer hooks)",
                          timed_out=timed_out, seconds=round(time.monotonic() - t0, 2), output=text)
    parse_selftest(text, hz, res)
    clean = text.replace("\r", "")
    tm = _TIMER.search(clean)
    scale = 1e9 / (hz if not tm or tm.group(1) == "systick" else int(tm.group(2)))
    ops = [OpProfile(int(m.group(1)), int(m.group(2)), m.group(3), round(int(m.group(4)) * scale))
           for m in _PROF.finditer(clean)]
    tot = _PROF_TOTAL.search(clean)
    if timed_out:
        res.passed = False
        res.error = f"no RESULT line within {timeout:g} s (firmware hung or too slow)"
    elif not _RESULT.search(clean):
        res.passed = False
        res.error = f"emulator exited (code {rc}) without a RESULT line"
    elif not tot:
        res.passed = False
        res.error = "the profile build printed no per-op report"
    code = None
    plain_map = os.path.join(out_dir, "firmware.map")
    if os.path.exists(plain_map):
        code = code_size(plain_map)
    return ProfileResult(res, ops, round(int(tot.group(3)) * scale) if tot else None,
                         round(int(tot.group(1)) * scale) if tot else None, code)


# ---------------------------------------------------------------- code size

_MAP_ENTRY = re.compile(r"^\s*(\.\S+)?\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(\S+\.o)\s*$")


def code_size(map_path: str) -> dict:
    """Linked bytes by origin, from a GNU ld map (after --gc-sections): `model`
    (generated model.o: code and its const parameter structs), `kernels` (the
    kernel objects), `weights` (weights.o: constant tensors and derived tables),
    `runtime` (everything else: startup, UART, app, libc). Addresses 0 are
    discarded input sections and are skipped."""
    try:
        lines = open(map_path).read().splitlines()
    except OSError:
        raise TinymlError(f"no linker map at {map_path}", map_path, "rebuild with `tinyml build`") from None
    try:
        start = next(i for i, l in enumerate(lines) if l.startswith("Linker script and memory map"))
    except StopIteration:
        raise TinymlError("not a GNU ld map file", map_path, "rebuild with `tinyml build`") from None
    out = {"model": 0, "kernels": 0, "weights": 0, "runtime": 0}
    per_kernel: dict[str, int] = {}
    section = ""
    for line in lines[start:]:
        m = _MAP_ENTRY.match(line)
        if not m:
            t = line.strip()
            if t.startswith(".") and " " not in t:
                section = t
            continue
        sec = m.group(1) or section
        addr, size, obj = int(m.group(2), 16), int(m.group(3), 16), m.group(4)
        section = ""
        if addr == 0 or size == 0 or sec.startswith((".bss", ".tinyml_arena", ".stack", ".debug", ".ARM.attributes",
                                                     ".comment")):
            continue
        if obj.endswith("model/model.o"):
            out["model"] += size
        elif obj.endswith("model/weights.o"):
            out["weights"] += size
        elif "/kernels/src/" in obj:
            out["kernels"] += size
            k = os.path.basename(obj)[:-2]
            per_kernel[k] = per_kernel.get(k, 0) + size
        else:
            out["runtime"] += size
    out["code_excluding_weights"] = out["model"] + out["kernels"]
    out["per_kernel"] = dict(sorted(per_kernel.items(), key=lambda kv: -kv[1]))
    return out


# ---------------------------------------------------------------- Renode

def write_renode_files(out_dir: str, board: Board, elf: str, timeout: float = 120.0) -> dict[str, str]:
    if not board.renode.platform:
        raise TinymlError(f"board {board.name} has no Renode platform", board.path,
                          "use --emulator qemu")
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                             trim_blocks=True, lstrip_blocks=True)
    rdir = os.path.join(out_dir, "renode")
    os.makedirs(rdir, exist_ok=True)
    ctx = {"board": board, "elf": os.path.abspath(elf), "timeout": int(timeout),
           "repl": os.path.join(rdir, f"{board.name}.repl"),
           "resc": os.path.join(rdir, f"{board.name}.resc"),
           "sram": [m for m in board.sram_regions], "flash": board.flash_region("native")}
    out = {}
    for tmpl, ext in (("renode.repl.j2", "repl"), ("renode.resc.j2", "resc"), ("renode.robot.j2", "robot")):
        path = os.path.join(rdir, f"{board.name}.{ext}")
        with open(path, "w") as f:
            f.write(env.get_template(tmpl).render(**ctx))
        out[ext] = path
    return out


def emulate_renode(out_dir: str, board: Board, meta: dict, timeout: float) -> EmulationResult:
    elf = os.path.join(out_dir, "firmware.elf")
    files = write_renode_files(out_dir, board, elf, timeout)
    renode = shutil.which("renode")
    if renode is None:
        raise ToolchainError("renode not found on PATH", "tinyml emulate --emulator renode",
                             f"install Renode; the scripts are ready in {os.path.dirname(files['resc'])}")
    cmd = [renode, "--disable-xwt", "--console", "-e", f"include @{files['resc']}; start"]
    t0 = time.monotonic()
    text, timed_out, _ = _run_capture(cmd, timeout)
    res = EmulationResult(passed=False, instructions_per_inference=None,
                          peak_sram_bytes_measured=None,
                          flash_bytes=meta["sizes"]["native"]["flash_bytes"], emulator="renode",
                          machine=board.renode.platform, variant="native", board=board.name,
                          model=meta.get("model", ""),
                          note=f"unchanged {board.name} binary on Renode {board.renode.platform}",
                          timed_out=timed_out, seconds=round(time.monotonic() - t0, 2), output=text)
    # Renode's SysTick runs at the board's reset clock as configured in the platform.
    parse_selftest(text, board.reset_clock_hz, res)
    if timed_out:
        res.passed = False
        res.error = f"no RESULT line within {timeout:g} s"
    return res


def spawn_qemu(out_dir: str, serial: str) -> subprocess.Popen:
    """Start QEMU on DIR's firmware with the console UART on `serial` (a QEMU
    chardev spec such as "tcp:127.0.0.1:4444,server=on,wait=on" or "pty").
    The caller owns the process (kill its process group when done)."""
    meta = load_build_meta(out_dir)
    board = load_board(meta["board"])
    variant = board.qemu.variant
    elf = ensure_variant(out_dir, variant) if variant != "native" else os.path.join(out_dir, "firmware.elf")
    cmd = qemu_command(board, elf, variant, serial)
    return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)


def stop_qemu(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()


# ---------------------------------------------------------------- serial sessions

_LISTEN = re.compile(r"waiting for connection on: \S*?tcp:([^:,\s]+):(\d+)")
_BUSY = ("Address already in use", "Failed to find an available port")


@dataclass
class SerialSession:
    """A QEMU process running a serial-mode build with its console UART on a
    TCP server socket. `url` is what pyserial (`tinyml run --port`) opens."""
    proc: subprocess.Popen
    host: str
    port: int
    board: str
    machine: str
    variant: str
    model: str
    note: str
    elf: str
    output: list[str] = field(default_factory=list)
    # Instructions per `m-lap-us` unit the device reports under this machine
    # (None if unknown). The firmware converts SysTick ticks with the clock it
    # believes it runs at (TINYML_CPU_HZ); QEMU's SysTick runs at the machine's
    # clock and -icount shift=0 makes one instruction 1 ns.
    instructions_per_lap_us: float | None = None
    banner: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"socket://{self.host}:{self.port}"

    def tail(self, n: int = 10) -> list[str]:
        return [ln.rstrip() for ln in self.output[-n:]]


def firmware_cpu_hz(out_dir: str, variant: str) -> int | None:
    """TINYML_CPU_HZ of DIR's `variant` build (the clock its micros() assume)."""
    try:
        with open(os.path.join(variant_dir(out_dir, variant), "board_config.h")) as f:
            m = re.search(r"#define TINYML_CPU_HZ (\d+)u?", f.read())
    except OSError:
        return None
    return int(m.group(1)) if m else None


def instructions_per_lap_us(out_dir: str, variant: str, machine: str) -> float | None:
    """lap-us -> instructions: us * cpu_hz/1e6 = SysTick ticks; ticks * 1e9 / systick_hz = ns = instructions."""
    cpu_hz, systick_hz = firmware_cpu_hz(out_dir, variant), QEMU_SYSTICK_HZ.get(machine)
    if not cpu_hz or not systick_hz:
        return None
    return cpu_hz / 1e6 * 1e9 / systick_hz


def _die_with_parent() -> None:
    """preexec_fn: the kernel kills QEMU if the process that started it dies
    (even by SIGKILL), so no emulator is ever left running on its own."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _check_port_free(host: str, port: int) -> None:
    import socket
    if port == 0:
        return
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as QEMU binds
        try:
            s.bind((host, port))
        except OSError as exc:
            raise TinymlError(f"TCP port {port} on {host} is busy ({exc.strerror})", f"{host}:{port}",
                              "pick another --port, or omit --port to use a free one") from None


def _await_banner(sess: SerialSession, timeout: float) -> list[str]:
    """Be the first client: QEMU (`wait=on`) starts the guest on this connect;
    read the boot banner up to `m-ready`, then disconnect (QEMU listens again).

    Needed because QEMU's STM32 USART drops bytes that arrive before the
    firmware has enabled it: a client that types right after connecting
    would lose its first command. After the banner the UART is on."""
    import socket
    deadline = time.monotonic() + timeout
    buf = b""
    with socket.create_connection((sess.host, sess.port), timeout=timeout) as s:
        while b"m-ready" not in buf:
            if sess.proc.poll() is not None:
                raise TinymlError(f"QEMU exited (code {sess.proc.returncode}) while the firmware booted: "
                                  + " | ".join(ln for ln in sess.tail(3) if ln), sess.elf,
                                  "run the self-test build of the same model to find the fault")
            left = deadline - time.monotonic()
            if left <= 0:
                raise TinymlError(f"the firmware printed no boot banner (m-ready) within {timeout:g} s "
                                  f"(got {buf[-80:]!r})", sess.elf,
                                  "check that DIR is a serial-mode build of this tree; rebuild it")
            s.settimeout(min(left, 0.5))
            try:
                chunk = s.recv(4096)
            except socket.timeout:
                continue
            if not chunk:
                raise TinymlError("QEMU closed the serial socket during boot", sess.elf,
                                  "check the QEMU output above")
            buf += chunk
    return [ln.strip() for ln in buf.decode("ascii", "replace").splitlines() if ln.strip()]


def start_serial_session(out_dir: str, port: int = 0, host: str = "127.0.0.1", timeout: float = 30.0,
                         progress=None, on_output=None, await_banner: bool = True) -> SerialSession:
    """Start QEMU on DIR's serial-mode firmware with the console UART on a TCP
    server socket (`port` 0 = any free port).

    QEMU waits for the first client before it starts the guest (`wait=on`).
    With `await_banner` (default) this function is that client: it reads the
    boot banner (`m-init-done`, `m-ready`) and disconnects, so the session is
    returned with the firmware running and its UART enabled; later clients
    (`tinyml run`, MLPerf Tiny's runner) connect to the running firmware.
    Without it, it returns as soon as QEMU listens and the first client sees
    the banner. Console lines QEMU itself prints (semihosting, errors) go to
    `on_output` and `SerialSession.output`. Stop with `stop_serial_session`.
    """
    meta = load_build_meta(out_dir)
    if meta.get("mode") != "serial":
        raise TinymlError(f"{out_dir} was built in {meta.get('mode')} mode, which has no serial protocol",
                          out_dir, "rebuild with `tinyml build MODEL --board B -o DIR --mode serial`")
    if not 0 <= port <= 65535:
        raise TinymlError(f"--port {port} is not a TCP port", "tinyml emulate --serial", "use 1..65535 or 0")
    board = load_board(meta["board"])
    variant = board.qemu.variant
    elf = ensure_variant(out_dir, variant, progress) if variant != "native" else \
        os.path.join(out_dir, "firmware.elf")
    if not os.path.exists(elf):
        raise TinymlError(f"no firmware at {elf}", out_dir, "run `tinyml build` first")
    _check_port_free(host, port)
    cmd = qemu_command(board, elf, variant, f"tcp:{host}:{port},server=on,wait=on,nodelay=on")
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True,
                            preexec_fn=_die_with_parent)
    sess = SerialSession(proc, host, port, board.name, board.qemu.machine, variant,
                         meta.get("model", ""), machine_note(board, variant), elf,
                         instructions_per_lap_us=instructions_per_lap_us(out_dir, variant, board.qemu.machine))
    listening = threading.Event()

    def reader() -> None:
        assert proc.stdout is not None
        for raw in iter(proc.stdout.readline, b""):
            line = raw.decode("utf-8", "replace")
            sess.output.append(line)
            m = _LISTEN.search(line)
            if m and not listening.is_set():
                sess.port = int(m.group(2))
                listening.set()
            elif on_output is not None:
                on_output(line.rstrip("\r\n"))
        listening.set()

    threading.Thread(target=reader, daemon=True).start()
    try:
        ok = listening.wait(timeout)
    except BaseException:
        stop_serial_session(sess, grace=0)
        raise
    if ok and proc.poll() is None and await_banner:
        try:
            sess.banner = _await_banner(sess, timeout)
        except BaseException:
            stop_serial_session(sess, grace=0)
            raise
    if not ok or proc.poll() is not None:
        stop_serial_session(sess, grace=0)
        text = "".join(sess.output)
        if any(b in text for b in _BUSY):
            raise TinymlError(f"TCP port {port} on {host} is busy", f"{host}:{port}",
                              "pick another --port, or omit --port to use a free one")
        if not ok:
            raise TinymlError(f"QEMU did not open its serial socket within {timeout:g} s", " ".join(cmd[:3]),
                              "check that qemu-system-arm runs (try it by hand) and the machine is not overloaded")
        last = next((ln.strip() for ln in reversed(sess.output) if ln.strip()), "no output")
        raise TinymlError(f"QEMU exited (code {proc.returncode}) before listening: {last}", elf,
                          "rebuild the firmware; check the QEMU version (7.2 is tested)")
    return sess


def stop_serial_session(sess: SerialSession, grace: float = 3.0) -> int | None:
    """Stop QEMU: SIGTERM (QEMU shuts down cleanly), SIGKILL after `grace` s.
    Returns QEMU's exit code (None if it had to be killed)."""
    proc = sess.proc
    if proc.poll() is None and grace > 0:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=grace)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            pass
    killed = proc.poll() is None
    stop_qemu(proc)
    return None if killed else proc.returncode

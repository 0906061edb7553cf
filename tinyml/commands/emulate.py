"""`tinyml emulate DIR [--emulator qemu|renode] [--json] [--timeout S]`: run a
built firmware's self-test on an emulator and report pass/fail, instructions
per inference and measured peak SRAM.

`tinyml emulate DIR --serial [--port N] [--duration S]`: start a serial-mode
build (`tinyml build ... --mode serial`) on QEMU with its console UART on a
TCP socket, print `socket://127.0.0.1:N` (with --json: one object with url and
pid) as soon as QEMU listens and the firmware has booted (its banner is read
and dropped), and keep it running for `tinyml run --port URL` (or MLPerf
Tiny's runner) until Ctrl-C, SIGTERM or --duration; QEMU is always stopped on
the way out.

`tinyml emulate DIR --profile [--json]`: rebuild DIR's model in DIR/profile
with the generated code's per-op hooks (TINYML_OP_BEGIN/END) reading the
timer, run the self-test there, and print instructions per op and per op kind."""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time

from tinyml.errors import TinymlError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("emulate", help="run the firmware self-test in QEMU or Renode, or serve a serial-mode build (--serial)")
    p.add_argument("dir", help="directory written by `tinyml build`")
    p.add_argument("--emulator", choices=["qemu", "renode"], default="qemu")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds before the run is failed")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.add_argument("--show-output", action="store_true", help="echo the firmware console")
    p.add_argument("--serial", action="store_true",
                   help="serial-mode build: put the console UART on a TCP socket and keep QEMU running")
    p.add_argument("--port", type=int, default=0,
                   help="with --serial: TCP port on 127.0.0.1 (default: any free port)")
    p.add_argument("--duration", type=float, default=None,
                   help="with --serial: stop after this many seconds (default: until Ctrl-C / SIGTERM)")
    p.add_argument("--profile", action="store_true",
                   help="build DIR/profile with per-op timer hooks and print instructions per op and per kind (QEMU)")
    p.set_defaults(func=run)


def _json(d: dict, res) -> dict:
    """The --json object: without the raw console output, with its tail on failure."""
    d.pop("output")
    if not res.passed:
        d["output_tail"] = res.output.replace("\r", "").splitlines()[-15:]
    return d


def run(args: argparse.Namespace) -> int:
    from tinyml.firmware.build import load_build_meta
    from tinyml.firmware.emulate import emulate

    if args.serial:
        return run_serial(args)
    if args.port or args.duration is not None:
        raise TinymlError("--port and --duration apply to serial sessions", "tinyml emulate",
                          "add --serial (for a build made with --mode serial)")
    if load_build_meta(args.dir).get("mode") == "serial":
        raise TinymlError(f"{args.dir} was built in serial mode (no self-test to run)", args.dir,
                          f"serve it with `tinyml emulate {args.dir} --serial`, or rebuild with --mode selftest")

    if args.profile:
        return run_profile(args)
    res = emulate(args.dir, args.emulator, args.timeout,
                  progress=lambda m: print(m, file=sys.stderr))
    if args.json:
        print(json.dumps(_json(res.to_json(), res)))
    else:
        if args.show_output or not res.passed:
            sys.stdout.write(res.output.replace("\r", ""))
        print(f"{res.emulator} {res.machine}: {res.note}")
        for v in res.vectors:
            print(f"  vector {v.index}: {'PASS' if v.passed else 'FAIL'} {v.detail}".rstrip())
        if res.instructions_per_inference is not None:
            print(f"  instructions per inference: {res.instructions_per_inference:,} "
                  f"(-icount shift=0, SysTick; instructions, not cycles)")
        if res.peak_sram_bytes_measured is not None:
            print(f"  measured peak SRAM: {res.peak_sram_bytes_measured:,} B = static {res.static_ram_bytes:,}"
                  f" + stack {res.stack_used_bytes:,} (of {res.stack_bytes:,}) + arena"
                  f" {res.arena_used_bytes:,} (of {res.arena_bytes:,})"
                  + (f"; static stack estimate {res.stack_estimate_bytes:,} B"
                     if res.stack_estimate_bytes is not None else ""))
        if res.flash_bytes is not None:
            print(f"  flash: {res.flash_bytes:,} B")
        if res.fault:
            print(f"  {res.fault}")
        if res.error:
            print(f"  error: {res.error}")
        print("PASSED" if res.passed else "FAILED")
    return 0 if res.passed else 1


def run_profile(args: argparse.Namespace) -> int:
    from tinyml.firmware.profile import profile

    if args.emulator != "qemu":
        raise TinymlError("--profile runs on QEMU only", "tinyml emulate --profile", "use --emulator qemu")
    prof = profile(args.dir, args.timeout, progress=lambda m: print(m, file=sys.stderr))
    res = prof.emulation
    if args.json:
        print(json.dumps(_json(prof.to_json(), res)))
        return 0 if res.passed else 1
    if args.show_output or not res.passed:
        sys.stdout.write(res.output.replace("\r", ""))
    print(f"{res.emulator} {res.machine}: {res.note}")
    total = sum(o.instructions for o in prof.ops) or 1
    print(f"{'slot':>4} {'op':>4}  {'kind':<24} {'instructions':>13} {'share':>6}")
    for o in prof.ops:
        print(f"{o.slot:>4} {o.op:>4}  {o.kind:<24} {o.instructions:>13,} {100.0 * o.instructions / total:5.1f}%")
    print()
    print(f"{'kind':<24} {'steps':>5} {'instructions':>13} {'share':>6}")
    for k in prof.by_kind():
        print(f"{k['kind']:<24} {k['steps']:>5} {k['instructions']:>13,} {100.0 * k['share']:5.1f}%")
    print(f"{'sum of ops':<24} {len(prof.ops):>5} {sum(o.instructions for o in prof.ops):>13,}")
    if prof.total_instructions is not None:
        print(f"profiled run: {prof.total_instructions:,} instructions incl. hooks "
              f"({prof.hook_overhead_instructions:,} per hook pair, subtracted per op); "
              f"-icount shift=0, instructions, not cycles")
    if prof.code is not None:
        c = prof.code
        print(f"code size (board build, linked): generated model.c {c['model']:,} B + kernels {c['kernels']:,} B"
              f" = {c['code_excluding_weights']:,} B, runtime/app/libc {c['runtime']:,} B")
    if prof.accounting:
        from tinyml.memory_planner.report import Accounting
        for line in Accounting(**prof.accounting).lines():
            print(line)
    if res.error:
        print(f"  error: {res.error}")
    print("PASSED" if res.passed else "FAILED")
    return 0 if res.passed else 1


class _Stop(Exception):
    pass


def _raise_stop(signum, frame) -> None:
    raise _Stop(signal.Signals(signum).name)


def run_serial(args: argparse.Namespace) -> int:
    from tinyml.firmware.serial_session import start_serial_session, stop_serial_session

    if args.emulator != "qemu":
        raise TinymlError("--serial runs on QEMU only", "tinyml emulate --serial", "use --emulator qemu")
    if args.duration is not None and args.duration <= 0:
        raise TinymlError(f"--duration {args.duration:g} must be > 0", "tinyml emulate --serial",
                          "give seconds, or omit it to run until Ctrl-C")
    err = sys.stderr
    # SIGTERM behaves like Ctrl-C: leave the wait loop and stop QEMU.
    old_term = signal.signal(signal.SIGTERM, _raise_stop)
    # Ctrl-C is this command's stop, whatever it inherited: a parent that ignored SIGINT
    # (Python then installs no handler) or blocked it would leave it serving forever
    first_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
    sess = None
    reason = "stopped"
    try:
        sess = start_serial_session(args.dir, port=args.port, timeout=min(args.timeout, 60.0),
                                    progress=lambda m: print(m, file=err),
                                    on_output=lambda line: print(f"[qemu] {line}", file=err, flush=True))
        if args.json:
            print(json.dumps({"ok": True, "url": sess.url, "host": sess.host, "port": sess.port,
                              "pid": os.getpid(), "qemu_pid": sess.proc.pid, "board": sess.board,
                              "machine": sess.machine, "variant": sess.variant, "model": sess.model,
                              "note": sess.note, "banner": sess.banner,
                              "instructions_per_lap_us": sess.instructions_per_lap_us}), flush=True)
        else:
            print(sess.url, flush=True)
        print(f"qemu {sess.machine}: {sess.note}", file=err)
        if sess.instructions_per_lap_us:
            print(f"latency: under -icount shift=0 one m-lap-us unit the firmware reports is "
                  f"{sess.instructions_per_lap_us:g} guest instructions (its SysTick clock assumption vs "
                  f"QEMU {sess.machine}'s); instructions, not cycles", file=err)
        print(f"serial console of {sess.board} ({sess.model}) at {sess.url}; firmware booted "
              f"({', '.join(sess.banner)}). Try: tinyml run --port {sess.url} INPUT --model MODEL.tflite",
              file=err)
        print("Ctrl-C stops the emulator" + (f" (or after {args.duration:g} s)" if args.duration else ""),
              file=err, flush=True)
        t_end = time.monotonic() + args.duration if args.duration else None
        while sess.proc.poll() is None:
            if t_end is not None and time.monotonic() >= t_end:
                reason = f"--duration {args.duration:g} s elapsed"
                break
            time.sleep(0.1)
        else:
            tail = " | ".join(ln for ln in sess.tail(5) if ln)
            raise TinymlError(f"QEMU exited on its own (code {sess.proc.returncode}): {tail or 'no output'}",
                              sess.elf, "the firmware faulted or exited; run the self-test build to check it")
    except (KeyboardInterrupt, _Stop) as exc:
        reason = f"{exc or 'SIGINT'} received" if isinstance(exc, _Stop) else "Ctrl-C"
    finally:
        # Ignore further Ctrl-C / SIGTERM while QEMU is being stopped.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            if sess is not None:
                stop_serial_session(sess)
        finally:
            signal.signal(signal.SIGTERM, old_term)
            signal.signal(signal.SIGINT, first_int)
    if sess is None:
        print(f"{reason}: interrupted before QEMU started", file=err)
        return 130
    print(f"{reason}: QEMU (pid {sess.proc.pid}) stopped", file=err)
    return 0

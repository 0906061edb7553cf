"""`tinyml run --port PORT INPUT...`: inference on a device over the MLPerf Tiny runner protocol."""
from __future__ import annotations

import argparse
import json
import os
import sys

from tinyml.errors import TinymlError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "run", help="run inputs on a board or the emulator over the MLPerf Tiny serial protocol",
        description="Send each INPUT to the device (db load / db <hex>), run `infer N W`, and print the "
                    "results and latency: in ms at the clock the firmware reports on a board, in guest "
                    "instructions on the emulator. PORT is a device path, a pty, or socket://host:port.")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image (PNG/JPEG/BMP) or raw .bin input")
    p.add_argument("--port", required=True, help="serial port, pty, or socket://host:port")
    p.add_argument("--model", help=".tflite whose input shape/scale/zero point convert images")
    p.add_argument("--baud", type=int, default=115200)
    p.add_argument("--iterations", type=int, default=1, help="inferences timed per input (infer N)")
    p.add_argument("--warmup", type=int, default=0, help="warm-up inferences (infer N W)")
    p.add_argument("--pixels", default="auto",
                   help="image pixel mapping: auto (the input's int8 range), raw (bytes as is), or LO,HI")
    p.add_argument("--labels", help="comma-separated class names for the printed class")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for each answer")
    p.add_argument("--chunk", type=int, default=32, help="bytes per `db <hex>` command")
    p.add_argument("--stream", action="store_true",
                   help="send each input in row stripes while the model runs (`stream%%`; firmware built "
                        "with --mode serial --stream-input); --iterations/--warmup do not apply")
    p.add_argument("--reset-polarity", choices=("normal", "inverted", "none"), default="none",
                   help="drive BOOT0 low / NRST released on open (see deploy/WIRING.md)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tinyml.deploy.inputs import IMAGE_EXTS, input_spec, load_input
    from tinyml.deploy.latency import latency
    from tinyml.deploy.runner import DeviceRunner, model_id
    from tinyml.eembc import wire_payload
    from tinyml.deploy.serial_port import open_port
    from tinyml.deploy.stm32_bootloader import ResetControl

    if args.iterations < 1 or args.warmup < 0 or not 1 <= args.chunk <= 512:
        raise TinymlError("--iterations must be >= 1, --warmup >= 0, --chunk in 1..512", "tinyml run",
                          "fix the option")
    spec = input_spec(args.model) if args.model else None
    payloads = [(path, load_input(path, spec, args.pixels)) for path in args.inputs]
    images = {path for path in args.inputs if os.path.splitext(path)[1].lower() in IMAGE_EXTS}
    labels = args.labels.split(",") if args.labels else None
    rts = dtr = None
    if args.reset_polarity != "none":
        rts, dtr = ResetControl(args.reset_polarity).states(boot0_high=False, in_reset=False)
    ser = open_port(args.port, args.baud, timeout=0.1, rts=rts, dtr=dtr)
    try:
        dev = DeviceRunner(ser, timeout=args.timeout, chunk=args.chunk, where=args.port)
        name = dev.hello()
        profile = dev.profile()
        clock = dev.clock()
        device_model = model_id(profile)
        results = []
        for path, data in payloads:
            # MLPerf Tiny devices take their benchmark's wire format (uint8 pixels, float32 windows)
            data = wire_payload(device_model, data, spec.nbytes if spec else None,
                                spec.scale if spec else None, spec.zero_point if spec else None,
                                tensor=path in images, where=path)
            if args.stream:
                inf = dev.stream(data, name=path)
            else:
                dev.load(data)
                inf = dev.infer(args.iterations, args.warmup, name=path)
            results.append(inf)
            if not args.json:
                cls = (labels[inf.top] if labels and inf.top is not None and inf.top < len(labels)
                       else inf.top)
                lat = latency(inf.latency_us, clock).label
                what = (f"anomaly score {inf.results[0]}" if device_model == "ad01" and len(inf.results) == 1
                        else f"class {cls}  results {inf.results}")
                print(f"{os.path.basename(path)}: {what}  latency {lat}")
            else:
                print(f"{os.path.basename(path)}: done", file=sys.stderr)
    finally:
        ser.close()
    if args.json:
        inputs = []
        for r in results:
            lat = latency(r.latency_us, clock)
            inputs.append({**r.as_dict(), "instructions": lat.instructions, "latency": lat.label})
        print(json.dumps({"ok": True, "port": args.port, "device": name, "profile": profile,
                          "clock": None if clock is None else {
                              "text": clock.text, "hz": clock.hz, "timer": clock.timer, "board": clock.board,
                              "variant": clock.variant, "emulated": clock.emulated},
                          "model_id": device_model, "inputs": inputs}))
    return 0

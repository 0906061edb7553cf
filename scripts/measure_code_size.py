"""Re-measure codegen/code_size*.json (kernel code bytes, runtime base, model.c per call).

    .venv/bin/python scripts/measure_code_size.py           # rewrite the tables (about 80 s)
    .venv/bin/python scripts/measure_code_size.py --check   # exit 1 if a table is stale

One table per core: code_size.json (the default board, stm32f746g-disco, Cortex-M7) and
code_size_cortex-m4.json (stm32f4-discovery's flags).

Run it after editing a kernel, the runtime, the app or the code generator's model.c:
tests/test_code_size.py fails until the committed table equals this measurement. Needs
arm-none-eabi-gcc; the shared reference models (TINYML_SHARED_MODELS or ../shared/models)
are part of the model.c corpus (firmware/code_table.py).
"""
from __future__ import annotations

import argparse
import json
import sys

from tinyml.firmware.code_table import TABLE_BOARDS, measure, table_file, table_text


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="compare with the committed tables, write nothing")
    args = ap.parse_args(argv)
    stale = []
    for board in TABLE_BOARDS:
        path = table_file(board)
        text = table_text(measure(board, progress=lambda m: print(f"{board}: {m}", file=sys.stderr)))
        if args.check:
            if open(path).read() != text:
                stale.append(path)
            continue
        with open(path, "w") as f:
            f.write(text)
        print(f"wrote {path}: {len(json.loads(text)['functions'])} kernel functions")
    if args.check:
        print("stale: " + ", ".join(stale) + "; run .venv/bin/python scripts/measure_code_size.py" if stale
              else "the code-size tables are current")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())

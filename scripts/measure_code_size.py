"""Re-measure codegen/code_size.json (kernel code bytes, runtime base, model.c per call).

    .venv/bin/python scripts/measure_code_size.py           # rewrite the table (about 30 s)
    .venv/bin/python scripts/measure_code_size.py --check   # exit 1 if the table is stale

Run it after editing a kernel, the runtime, the app or the code generator's model.c:
tests/test_code_size.py fails until the committed table equals this measurement. Needs
arm-none-eabi-gcc; the shared reference models (TINYML_SHARED_MODELS or ../shared/models)
are part of the model.c corpus (firmware/code_table.py).
"""
from __future__ import annotations

import argparse
import json
import sys

from tinyml.codegen.code_size import TABLE
from tinyml.firmware.code_table import measure, table_text


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="compare with the committed table, write nothing")
    args = ap.parse_args(argv)
    text = table_text(measure(progress=lambda m: print(m, file=sys.stderr)))
    if args.check:
        same = open(TABLE).read() == text
        print("code_size.json is current" if same else
              "code_size.json is stale: run .venv/bin/python scripts/measure_code_size.py")
        return 0 if same else 1
    with open(TABLE, "w") as f:
        f.write(text)
    print(f"wrote {TABLE}: {len(json.loads(text)['functions'])} kernel functions")
    return 0


if __name__ == "__main__":
    sys.exit(main())

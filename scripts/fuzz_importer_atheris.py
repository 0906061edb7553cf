"""Coverage-guided fuzzing of the importer, the validator and the pipeline (optional; atheris).

    .venv/bin/python -m pip install atheris          # or: pip install -e '.[fuzz]'
    mkdir -p /tmp/corpus && cp ../shared/models/mlperf-tiny/{ad01_int8,kws_ref_model}.tflite /tmp/corpus/
    .venv/bin/python scripts/fuzz_importer_atheris.py /tmp/corpus -max_total_time=600 -rss_limit_mb=4096

Each input goes through `import_bytes` (the validator, then the IR) and, when
accepted, `codegen.pipeline.compile` (lowering and memory planning). A
`TinymlError` is a clean refusal; any other exception, a hang (-timeout) or a
crash is a finding that libFuzzer reports and saves. Not run in CI (the
fixed-seed structure-aware smoke run in tests/test_fuzz_models.py is).
"""
from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from tinyml.codegen.importer import import_bytes
    from tinyml.codegen.pipeline import CompileOptions, compile as compile_model
    from tinyml.errors import TinymlError


def one_input(data: bytes) -> None:
    try:
        graph = import_bytes(data, "fuzz.tflite")
        compile_model(graph, CompileOptions())
    except TinymlError:
        pass


def main() -> None:
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()

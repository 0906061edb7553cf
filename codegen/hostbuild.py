"""Compile a generated model library with the host C compiler."""
from __future__ import annotations

import glob
import os
import shutil
import subprocess

from tinyml.errors import ToolchainError

HOST_MAIN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "host", "host_main.c")
# Host builds check every kernel's scratch against its *_scratch_size() (tinyml/common.h).
STRICT = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-DTINYML_CHECK_SCRATCH"]
SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-g"]


def compile_host(gen_dir: str, sanitize: bool = False, cc: str | None = None,
                 extra_flags: list[str] | None = None) -> str:
    """Build `gen_dir/host_model` from model.c, weights.c, the kernels and the harness."""
    cc = cc or os.environ.get("CC", "gcc")
    if shutil.which(cc) is None:
        raise ToolchainError(f"host C compiler '{cc}' not found", fix="install gcc (apt-get install gcc)")
    trace = bool(extra_flags and "-DTINYML_TRACE" in extra_flags)
    exe = os.path.join(gen_dir, ("host_model_asan" if sanitize else "host_model") + ("_trace" if trace else ""))
    srcs = [os.path.join(gen_dir, "model.c"), os.path.join(gen_dir, "weights.c"), HOST_MAIN]
    srcs += sorted(glob.glob(os.path.join(gen_dir, "kernels", "src", "*.c")))
    cmd = [cc, *STRICT, *(SANITIZE if sanitize else []), *(extra_flags or []),
           "-I", gen_dir, "-I", os.path.join(gen_dir, "kernels", "include"), *srcs, "-o", exe, "-lm"]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        first = next((ln for ln in res.stderr.splitlines() if "error" in ln), res.stderr.strip()[:300])
        raise ToolchainError(f"host compile of generated C failed: {first}", where=gen_dir,
                             fix="this is a tinyml bug; please report it with the model")
    return exe


def run_host(exe: str, records: bytes, count: int, out_bytes_per_record: int, workdir: str,
             env: dict | None = None) -> bytes:
    inp = os.path.join(workdir, "inputs.bin")
    outp = os.path.join(workdir, "outputs.bin")
    with open(inp, "wb") as f:
        f.write(records)
    full_env = dict(os.environ, **(env or {}))
    res = subprocess.run([exe, str(count), inp, outp], capture_output=True, text=True, env=full_env)
    if res.returncode != 0:
        raise ToolchainError(f"generated code crashed or failed (exit {res.returncode}): "
                             f"{(res.stderr.strip().splitlines() or [''])[0][:300]}", where=exe,
                             fix="this is a tinyml bug; please report it with the model")
    with open(outp, "rb") as f:
        data = f.read()
    if len(data) != count * out_bytes_per_record:
        raise ToolchainError("generated code wrote a short output file", where=exe)
    return data

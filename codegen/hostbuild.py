"""Compile a generated model library with the host C compiler."""
from __future__ import annotations

import glob
import hashlib
import os
import re
import shutil
import subprocess
import tempfile

from tinyml.errors import ToolchainError

HOST_MAIN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "host", "host_main.c")
# Host builds check every kernel's scratch against its *_scratch_size() (tinyml/common.h).
STRICT = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-DTINYML_CHECK_SCRATCH"]
SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-g"]


def compile_host(gen_dir: str, sanitize: bool = False, cc: str | None = None,
                 extra_flags: list[str] | None = None, cache_dir: str | None = None) -> str:
    """Build `gen_dir/host_model` from model.c, weights.c, the kernels and the harness.

    The kernels are the same C for every model (they include only the kernel headers), so
    their objects are kept in `cache_dir` (default: kernel_cache_dir()) under a hash of
    compiler, flags, source and every kernel header: a second model with the same library
    links in a fraction of a second instead of recompiling ~45 files (3 s, 14 s sanitized).
    model.c, weights.c and the harness are compiled every time."""
    cc = cc or os.environ.get("CC", "gcc")
    path = shutil.which(cc)
    if path is None:
        raise ToolchainError(f"host C compiler '{cc}' not found", fix="install gcc (apt-get install gcc)")
    trace = bool(extra_flags and "-DTINYML_TRACE" in extra_flags)
    exe = os.path.join(gen_dir, ("host_model_asan" if sanitize else "host_model") + ("_trace" if trace else ""))
    flags = [*STRICT, *(SANITIZE if sanitize else []), *(extra_flags or []),
             "-I", gen_dir, "-I", os.path.join(gen_dir, "kernels", "include")]
    kernels = sorted(glob.glob(os.path.join(gen_dir, "kernels", "src", "*.c")))
    objs = _kernel_objects(cc, path, flags, gen_dir, kernels, cache_dir or kernel_cache_dir())
    srcs = [os.path.join(gen_dir, "model.c"), os.path.join(gen_dir, "weights.c"), HOST_MAIN]
    _run([cc, *flags, *srcs, *(objs if objs is not None else kernels), "-o", exe, "-lm"], gen_dir)
    return exe


def kernel_cache_dir() -> str:
    """Where compiled kernel objects are kept: $TINYML_CACHE_DIR, else $XDG_CACHE_HOME/tinyml
    (~/.cache/tinyml); deleting it is always safe."""
    base = os.environ.get("TINYML_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "tinyml")
    return os.path.join(base, "host-kernels")


def _kernel_objects(cc: str, cc_path: str, flags: list[str], gen_dir: str, kernels: list[str],
                    cache_dir: str) -> list[str] | None:
    """The kernels' object files from the cache, compiling (in one compiler run) those missing.
    None when the cache cannot be written: the caller then compiles the sources directly."""
    inc = os.path.join(gen_dir, "kernels", "include")
    headers = sorted(glob.glob(os.path.join(inc, "**", "*.h"), recursive=True)
                     + glob.glob(os.path.join(gen_dir, "kernels", "src", "*.h")))
    st = os.stat(cc_path)
    common = hashlib.sha256()
    # the gen-dir paths in the flags differ per model and do not change the object code
    for part in [cc_path, str(st.st_size), str(int(st.st_mtime)),
                 *[f for f in flags if not f.startswith(gen_dir)]]:
        common.update(part.encode() + b"\0")
    for h in headers:
        common.update(os.path.relpath(h, gen_dir).encode() + b"\0")
        with open(h, "rb") as f:
            common.update(f.read())
    known = {os.path.relpath(h, inc) for h in headers} | {os.path.basename(h) for h in headers}
    objs, missing = [], []
    for src in kernels:
        key = common.copy()
        with open(src, "rb") as f:
            text = f.read()
        # a kernel including a model-specific header (model.h, weights.h) could not be shared
        if any(q.decode() not in known for q in re.findall(rb'#\s*include\s*"([^"]+)"', text)):
            return None
        key.update(os.path.basename(src).encode() + b"\0" + text)
        obj = os.path.join(cache_dir, f"{os.path.basename(src)[:-2]}-{key.hexdigest()[:24]}.o")
        objs.append(obj)
        if not os.path.exists(obj):
            missing.append((src, obj))
    if not missing:
        return objs
    try:
        os.makedirs(cache_dir, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=cache_dir) as tmp:
            _run([cc, *flags, "-c", *[s for s, _ in missing]], gen_dir, cwd=tmp)
            for src, obj in missing:      # atomic: parallel builds may race to the same object
                os.replace(os.path.join(tmp, os.path.basename(src)[:-2] + ".o"), obj)
    except OSError:
        return None
    return objs


def _run(cmd: list[str], gen_dir: str, cwd: str | None = None) -> None:
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd)
    if res.returncode != 0:
        first = next((ln for ln in res.stderr.splitlines() if "error" in ln), res.stderr.strip()[:300])
        raise ToolchainError(f"host compile of generated C failed: {first}", where=gen_dir,
                             fix="this is a tinyml bug; please report it with the model")


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

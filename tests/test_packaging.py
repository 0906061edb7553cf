"""The wheel is the product: one import name (`tinyml`), every data file the
tool reads at run time (C kernels, firmware sources, templates, board
descriptors, the shipped models), and a non-editable install into a fresh
venv runs `tinyml demo` end to end (host verification, firmware build, QEMU
self-test) from a directory outside the checkout.

Also: the MLPerf-Tiny serial test doubles (`tinyml/testing/`) are for tests
only; nothing else in the package imports them.
"""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile

import pytest
from import_scan import import_statements

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Files the tool opens at run time; listed by name so that a glob in
# pyproject.toml that matches nothing cannot pass unnoticed.
REQUIRED_DATA = [
    "tinyml/firmware/kernels/include/tinyml/kernels.h",
    "tinyml/firmware/kernels/include/tinyml/config.h",
    "tinyml/firmware/kernels/src/conv.c",
    "tinyml/firmware/kernels/src/fused_common.h",
    "tinyml/firmware/runtime/startup.c",
    "tinyml/firmware/runtime/runtime.h",
    "tinyml/firmware/app/main.c",
    "tinyml/firmware/app/profile.h",
    "tinyml/firmware/postprocess/detect_post.c",
    "tinyml/firmware/templates/linker.ld.j2",
    "tinyml/firmware/templates/Makefile.j2",
    "tinyml/firmware/templates/renode.resc.j2",
    "tinyml/codegen/templates/model.c.j2",
    "tinyml/codegen/templates/CMakeLists.txt.j2",
    "tinyml/codegen/host/host_main.c",
    "tinyml/boards/stm32f746g-disco.toml",
    "tinyml/boards/stm32f4-discovery.toml",
    "tinyml/tinyvit/pretrained/vit_digits.tflite",
    "tinyml/tinyvit/pretrained/vit_digits.json",
    "tinyml/tinyvit/pretrained/vit_digits_det.tflite",
    "tinyml/tinyvit/pretrained/vit_digits_det.json",
    "tinyml/deploy/WIRING.md",
]


def _package_dirs() -> dict[str, str]:
    """Checkout folder -> import package, from pyproject's [tool.setuptools] package-dir."""
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        mapping = tomllib.load(f)["tool"]["setuptools"]["package-dir"]
    return {folder: pkg for pkg, folder in mapping.items()}


def _source_files() -> list[str]:
    """The checkout's files as git sees them (tracked + new, not ignored), relative to ROOT."""
    if shutil.which("git") is None:
        pytest.skip("git not installed")
    r = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT,
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"not a git checkout: {r.stderr.strip()}")
    return [f for f in r.stdout.splitlines() if os.path.isfile(os.path.join(ROOT, f))]


def _shipped(files: list[str]) -> dict[str, str]:
    """Checkout path -> path inside the wheel, for every file under a package folder."""
    dirs = _package_dirs()
    out = {}
    for f in files:
        folder, _, rest = f.partition("/")
        if folder in dirs and rest and "__pycache__" not in f and not f.endswith(".pyc"):
            out[f] = dirs[folder].replace(".", "/") + "/" + rest
    return out


# ------------------------------------------------------------ runtime vs tinyml.testing

def _module_name(wheel_path: str) -> str:
    mod = wheel_path[:-3].replace("/", ".")
    return mod[:-len(".__init__")] if mod.endswith(".__init__") else mod


def _runtime_users_of_testing(py_files: dict[str, str]) -> list[str]:
    """`py_files`: path inside the package (tinyml/...) -> source. Returns the
    runtime files (all but tinyml/testing/) that import tinyml.testing."""
    bad = []
    for path, source in sorted(py_files.items()):
        if path.startswith("tinyml/testing/"):
            continue
        mod = _module_name(path)
        names = {t for target, ns in import_statements(source, mod, path.endswith("__init__.py"))
                 for t in [target] + [f"{target}.{n}" for n in ns]}
        if any(n == "tinyml.testing" or n.startswith("tinyml.testing.") for n in names):
            bad.append(path)
    return bad


def test_import_scan_sees_testing_imports():
    """The scanner itself: each spelling of an import of the test doubles is caught."""
    for src in ("import tinyml.testing.fake_dut", "from tinyml.testing import fake_dut",
                "from tinyml import testing", "from ..testing.bootloader_sim import BootloaderSim",
                "import importlib\nimportlib.import_module('tinyml.testing.fake_dut')"):
        assert _runtime_users_of_testing({"tinyml/deploy/runner.py": src}) == ["tinyml/deploy/runner.py"], src
    assert _runtime_users_of_testing({"tinyml/deploy/runner.py": "from tinyml.deploy import inputs"}) == []
    assert _runtime_users_of_testing({"tinyml/testing/fake_dut.py": "from tinyml.testing import x"}) == []


def test_runtime_does_not_import_test_doubles():
    shipped = _shipped(_source_files())
    py = {w: open(os.path.join(ROOT, f), encoding="utf-8").read()
          for f, w in shipped.items() if f.endswith(".py")}
    assert "tinyml/testing/fake_dut.py" in py and "tinyml/firmware/emulate.py" in py
    assert _runtime_users_of_testing(py) == []


# ------------------------------------------------------------ the wheel

@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> str:
    """Build the wheel from a copy of the checkout's files (no stale build/ dir, no
    writes into the checkout)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    for f in _source_files():
        dst = src / f
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(os.path.join(ROOT, f), dst)
    cmd = [sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "-w", str(tmp / "dist"),
           "--disable-pip-version-check", "-q"]
    if importlib.util.find_spec("setuptools") and importlib.util.find_spec("wheel"):
        cmd.append("--no-build-isolation")   # build with the installed setuptools (offline)
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=str(tmp))
    assert r.returncode == 0, r.stdout + r.stderr
    wheels = [p for p in os.listdir(tmp / "dist") if p.endswith(".whl")]
    assert len(wheels) == 1, wheels
    return str(tmp / "dist" / wheels[0])


@pytest.mark.slow
def test_wheel_one_top_level_name_and_all_files(wheel):
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        info = next(n.split("/")[0] for n in names if n.endswith(".dist-info/METADATA"))
        top = z.read(f"{info}/top_level.txt").decode().split()
        py = {n: z.read(n).decode("utf-8") for n in names if n.endswith(".py")}
    assert top == ["tinyml"]
    assert {n.split("/")[0] for n in names} == {"tinyml", info}
    missing = [f for f in REQUIRED_DATA if f not in names]
    assert missing == [], f"package data missing from the wheel: {missing}"
    # Every file under a package folder of the checkout (sources and data) is in the wheel.
    shipped = _shipped(_source_files())
    assert len(shipped) > 150
    missing = sorted(f for f, w in shipped.items() if w not in names)
    assert missing == [], f"checkout files missing from the wheel: {missing}"
    assert _runtime_users_of_testing(py) == []


def _venv_with_deps(root) -> tuple[str, str]:
    """A fresh venv (no pip, no tinyml) whose site-packages reaches the test
    runner's installed dependencies through a .pth file. Only the listed folders
    are added: the .pth files inside them (an editable tinyml's finder) are not
    run, so `tinyml` can only come from the wheel."""
    venv = os.path.join(str(root), "venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True,
                   capture_output=True)
    py = os.path.join(venv, "bin", "python")
    purelib = subprocess.run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    deps = [p for p in sys.path if os.path.basename(p) in ("site-packages", "dist-packages")
            and os.path.isdir(p) and not os.path.samefile(p, purelib)]
    with open(os.path.join(purelib, "zz_test_runner_deps.pth"), "w") as f:
        f.write("\n".join(deps) + "\n")
    return py, purelib


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PIP_", "VIRTUAL_ENV"))}
    env.update(PYTHONNOUSERSITE="1", PIP_DISABLE_PIP_VERSION_CHECK="1", TF_CPP_MIN_LOG_LEVEL="3")
    return env


_PROBE = """
import importlib, json, sys
import tinyml, tinyml.paths as paths
mods = {m: importlib.import_module("tinyml." + m).__file__ for m in
        ("codegen", "memory_planner", "firmware", "boards", "deploy", "tinyvit", "cli")}
from tinyml.tinyvit.pretrained import default_classifier_path
import tinyml.cli
tinyml.cli.build_parser()                      # imports every command module
print(json.dumps({"tinyml": tinyml.__file__, "mods": mods, "checkout": paths.CHECKOUT,
                  "kernels": paths.KERNELS, "boards": paths.BOARDS, "templates": paths.TEMPLATES,
                  "model": default_classifier_path(),
                  "testing_loaded": sorted(m for m in sys.modules if m.startswith("tinyml.testing"))}))
"""


@pytest.mark.slow
@pytest.mark.emulator
@pytest.mark.timeout(600)
@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="arm-none-eabi-gcc not installed")
@pytest.mark.skipif(shutil.which("qemu-system-arm") is None, reason="qemu-system-arm not installed")
def test_installed_wheel_runs_demo(wheel, tmp_path):
    py, purelib = _venv_with_deps(tmp_path)
    env = _clean_env()
    run_dir = tmp_path / "elsewhere"
    run_dir.mkdir()
    pip = [py, "-m", "pip"]
    if subprocess.run(pip + ["--version"], capture_output=True, env=env).returncode != 0:
        pip = [sys.executable, "-m", "pip", "--python", py]
    r = subprocess.run(pip + ["install", "--no-deps", "--no-index", "--force-reinstall", "-q", wheel],
                       capture_output=True, text=True, env=env, cwd=str(run_dir))
    assert r.returncode == 0, r.stdout + r.stderr

    r = subprocess.run([py, "-c", _PROBE], capture_output=True, text=True, env=env, cwd=str(run_dir))
    assert r.returncode == 0, r.stderr
    probe = json.loads(r.stdout)
    inside = lambda p: os.path.realpath(p).startswith(os.path.realpath(purelib) + os.sep)  # noqa: E731
    assert inside(probe["tinyml"]), probe["tinyml"]
    for name, path in probe["mods"].items():
        assert inside(path), (name, path)
    for key in ("kernels", "boards", "templates", "model"):
        assert inside(probe[key]) and os.path.exists(probe[key]), (key, probe[key])
    assert probe["checkout"] is None
    assert probe["testing_loaded"] == []

    tinyml = os.path.join(os.path.dirname(py), "tinyml")     # the console script
    assert os.path.exists(tinyml)
    d = subprocess.run([tinyml, "demo", "--inputs", "10"], capture_output=True, text=True, env=env,
                       cwd=str(run_dir), timeout=540)
    assert d.returncode == 0, d.stdout + d.stderr
    assert "Traceback" not in d.stderr
    assert "BIT-EXACT" in d.stdout
    assert "self-test PASSED on " in d.stdout, d.stdout
    assert "demo OK" in d.stdout
    assert (run_dir / "out" / "demo" / "firmware" / "firmware.elf").exists()
    # The generated library's kernels came from the installed package.
    assert (run_dir / "out" / "demo" / "model" / "kernels" / "src" / "conv.c").exists()

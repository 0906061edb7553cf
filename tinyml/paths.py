"""Where the project's own files live, in a checkout and in an installed wheel.

The top-level folders of the checkout (codegen/, firmware/, ...) are installed
as subpackages of `tinyml`; their data files (kernels, templates, board
descriptors) are package data. Each location is asked of the import system,
so the answer is right in both layouts. Nothing here imports those packages.
"""
from __future__ import annotations

import importlib.util
import os


def package_dir(name: str) -> str:
    """Folder of subpackage `tinyml.<name>` (without importing it)."""
    spec = importlib.util.find_spec(f"tinyml.{name}")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"tinyml.{name} is not installed")
    return list(spec.submodule_search_locations)[0]


FIRMWARE = package_dir("firmware")
KERNELS = os.path.join(FIRMWARE, "kernels")
BOARDS = package_dir("boards")
TEMPLATES = os.path.join(package_dir("codegen"), "templates")
# The checkout this package runs from, or None in a non-editable install.
_here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHECKOUT = _here if os.path.exists(os.path.join(_here, "pyproject.toml")) else None


def shared_models() -> str:
    """The read-only reference models folder: $TINYML_SHARED_MODELS, else
    ../shared/models beside the checkout, else ./shared/models (installed)."""
    env = os.environ.get("TINYML_SHARED_MODELS")
    if env:
        return env
    if CHECKOUT is not None:
        return os.path.join(os.path.dirname(CHECKOUT), "shared", "models")
    return os.path.join(os.getcwd(), "shared", "models")

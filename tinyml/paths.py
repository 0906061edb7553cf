"""Where the project's own files live (works from a checkout or an install)."""
from __future__ import annotations

import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIRMWARE = os.path.join(ROOT, "firmware")
KERNELS = os.path.join(FIRMWARE, "kernels")
BOARDS = os.path.join(ROOT, "boards")
TEMPLATES = os.path.join(ROOT, "codegen", "templates")


def shared_models() -> str:
    """The read-only reference models folder (../shared/models beside the checkout)."""
    env = os.environ.get("TINYML_SHARED_MODELS")
    if env:
        return env
    return os.path.join(os.path.dirname(ROOT), "shared", "models")

"""Quiet TensorFlow for training commands (`search`, `train`) unless --verbose.

TensorFlow's native code (absl, oneDNN banners, XLA) writes to file
descriptor 2 whatever TF_CPP_MIN_LOG_LEVEL says, and Keras / absl add Python
warnings. `quiet_native_stderr` points fd 2 at /dev/null for the command and
gives Python's `sys.stderr` a duplicate of the real stderr, so the command's
own lines, progress bars and error messages still show while native chatter
does not. Child processes (gcc, forked planners) inherit the silenced fd 2;
their errors reach the user through the Python side that runs them.
"""
from __future__ import annotations

import contextlib
import logging
import os
import sys
import warnings
from typing import Iterator


@contextlib.contextmanager
def quiet_native_stderr(enabled: bool = True) -> Iterator[None]:
    if not enabled:
        yield
        return
    try:
        sys.stderr.flush()
        real = os.dup(2)
    except (OSError, ValueError, AttributeError):
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    saved_stderr = sys.stderr
    py_err = os.fdopen(real, "w", buffering=1, encoding="utf-8", errors="replace", closefd=False)
    os.dup2(devnull, 2)
    sys.stderr = py_err
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "3")
    levels = {name: logging.getLogger(name).level for name in ("tensorflow", "absl", "keras")}
    for name in levels:
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
        try:
            py_err.flush()
        except (OSError, ValueError):
            pass
        sys.stderr = saved_stderr
        os.dup2(real, 2)
        os.close(real)
        os.close(devnull)

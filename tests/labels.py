"""Reading a result's JSON through its labels only (the "axes" block), as a user without the source would."""

from __future__ import annotations

import numpy as np


def at(obj, path: str):
    """The value at a JSON path like ``width.function``, ``cells[2].gradient`` or ``points[1].drt``."""
    for part in path.replace("[", ".[").split("."):
        obj = obj[int(part[1:-1])] if part.startswith("[") else obj[part]
    return obj


def check_labels(out: dict) -> int:
    """Every labelled array in ``out`` has one named axis per dimension, and as many entries along each axis as
    the label's coordinates there; returns how many arrays were checked."""
    for path, label in out["axes"].items():
        shape = np.shape(np.asarray(at(out, path), dtype=object))
        if 0 in shape:  # JSON keeps no axis after an empty one ([[], []] for a (2, 0, e) array)
            shape = shape[: shape.index(0) + 1]
            assert len(shape) <= len(label["dims"]), path
            continue
        assert len(shape) == len(label["dims"]), path
        for k, dim in enumerate(label["dims"]):
            if dim in label["coords"]:
                assert shape[k] == len(label["coords"][dim]), (path, dim)
    return len(out["axes"])

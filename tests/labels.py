"""Reading a result's JSON through its labels only (the "axes" block), as a user without the source would."""

from __future__ import annotations

import json
import re

import numpy as np

# a field name, a list index [2], or a dict key ["a.b c"] (a JSON string)
STEP = re.compile(r'\.?([A-Za-z_]\w*)|\[(\d+)\]|\[("(?:[^"\\]|\\.)*")\]')


def at(obj, path: str):
    """The value at a JSON path like ``width.function``, ``cells[2].gradient`` or ``bands["clip 1"].epoch``."""
    end = 0
    for step in STEP.finditer(path):
        assert step.start() == end, f"bad path {path!r} at {end}"
        name, index, key = step.groups()
        obj = obj[name] if name else obj[int(index)] if index else obj[json.loads(key)]
        end = step.end()
    assert end == len(path), f"bad path {path!r} at {end}"
    return obj


def numeric(value) -> bool:
    """Whether a JSON value is a non-empty (nested) list of numbers (null: a non-finite number)."""
    if not isinstance(value, list) or not value:
        return False
    return all(numeric(v) if isinstance(v, list) else v is None or type(v) in (int, float) for v in value)


def as_fields(path: str) -> str:
    """A path with every name-like dict key written as a field (``a["b"]`` → ``a.b``): JSON does not tell a record
    from a dict, so :func:`unlabelled` walks both the same way."""
    return re.sub(r'\["([A-Za-z_]\w*)"\]', r".\1", path)


def unlabelled(obj, labels: set[str], path: str = "") -> list[str]:
    """The paths of the arrays in ``obj`` that no label covers (``labels``: their paths through :func:`as_fields`).
    Descriptions are exempt: a ``config`` or ``net`` record (its lists are the settings themselves, the grid's
    values or a net's widths, described by ``trust <command> --help``) and ``shapes`` (each tensor's shape)."""
    if path in labels:
        return []
    if isinstance(obj, dict):
        skip = ("axes", "undefined", "format", "result") if path == "" else ()
        return [p for k, v in obj.items() if k not in skip and k not in ("config", "net", "shapes")
                for p in unlabelled(v, labels, f"{path}.{k}".lstrip(".") if re.fullmatch(r"[A-Za-z_]\w*", k)
                                    else f"{path}[{json.dumps(k, ensure_ascii=False)}]")]  # fmt: skip
    if isinstance(obj, list):
        return [path] if numeric(obj) else [p for i, v in enumerate(obj) for p in unlabelled(v, labels, f"{path}[{i}]")]
    return []


def check_array_labels(arrays: dict) -> int:
    """Every bulk array (``arrays.npz``, or ``Result.arrays()``) is labelled in ``__axes__`` with one named axis per
    dimension and as many entries along each as the label's coordinates; returns how many arrays were checked."""
    arrays = dict(arrays)
    labels = json.loads(str(arrays.pop("__axes__"))) if "__axes__" in arrays else {}
    assert sorted(labels) == sorted(arrays), "every bulk array is labelled"
    for key, label in labels.items():
        assert np.ndim(arrays[key]) == len(label["dims"]), key
        for axis, dim in enumerate(label["dims"]):
            if dim in label["coords"]:
                assert np.shape(arrays[key])[axis] == len(label["coords"][dim]), (key, dim)
    return len(labels)


def check_labels(out: dict) -> int:
    """Every array in ``out`` is labelled (:func:`unlabelled`), and every labelled one has one named axis per
    dimension and as many entries along each axis as the label's coordinates there; returns how many arrays were
    checked."""
    missing = unlabelled(out, {as_fields(p) for p in out["axes"]})
    assert not missing, f"unlabelled arrays: {missing}"
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

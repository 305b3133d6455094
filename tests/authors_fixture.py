"""A small copy of the Fromage authors' repository layout (github.com/jxbz/fromage, make-plots/ and classify-mnist/
logs), written from scratch: plain float64 logs, and ``np.save`` object arrays of pickled PyTorch scalar tensors
assembled opcode by opcode (PyTorch is not needed to write them, and nothing here is ever unpickled)."""

from __future__ import annotations

import pickle
import struct
from pathlib import Path

import numpy as np

from trust.base.tensor_records import MAGIC, PROTOCOL
from trust.experiments.shared.authors import CURVATURE_FOLDERS, CURVATURE_STEPS


def _global(module: str, name: str) -> bytes:
    return pickle.GLOBAL + f"{module}\n{name}\n".encode()


def _unicode(text: str) -> bytes:
    data = text.encode()
    return pickle.BINUNICODE + struct.pack("<I", len(data)) + data


def _bytes(data: bytes) -> bytes:
    return pickle.BINBYTES + struct.pack("<I", len(data)) + data


def _int(n: int) -> bytes:
    return pickle.BININT + struct.pack("<i", n)


def storage_bytes(value: float, key: str = "94926171990384") -> bytes:
    """``torch.save`` of a one-element float32 storage in PyTorch's legacy format."""
    sizes = {"protocol_version": PROTOCOL, "little_endian": True, "type_sizes": {"short": 2, "int": 4, "long": 4}}
    record = (pickle.PROTO + b"\x02" + pickle.MARK + _unicode("storage") + _global("torch", "FloatStorage")
              + _unicode(key) + _unicode("cuda:0") + _int(1) + pickle.NONE + pickle.TUPLE + pickle.BINPERSID
              + pickle.STOP)  # fmt: skip
    head = b"".join(pickle.dumps(v, protocol=2) for v in (MAGIC, PROTOCOL, sizes))
    return head + record + pickle.dumps([key], protocol=2) + struct.pack("<q", 1) + struct.pack("<f", value)


def tensor_record(value: float, rebuild=("torch._utils", "_rebuild_tensor_v2")) -> bytes:
    """One item: ``_rebuild_tensor_v2(_load_from_bytes(b), 0, (), (), False, OrderedDict())``."""
    return (_global(*rebuild) + pickle.MARK + _global("torch.storage", "_load_from_bytes")
            + _bytes(storage_bytes(value)) + pickle.TUPLE1 + pickle.REDUCE + _int(0) + pickle.EMPTY_TUPLE
            + pickle.EMPTY_TUPLE + pickle.NEWFALSE + _global("collections", "OrderedDict") + pickle.EMPTY_TUPLE
            + pickle.REDUCE + pickle.TUPLE + pickle.REDUCE)  # fmt: skip


def save_tensor_array(path: Path, values: np.ndarray, items: list[bytes] | None = None) -> None:
    """``np.save`` of an object array of scalar tensors holding ``values`` (or of the given ``items``)."""
    values = np.asarray(values, dtype=float)
    items = items if items is not None else [tensor_record(v) for v in values.ravel()]
    shape = b"".join(_int(n) for n in values.shape)
    body = (pickle.PROTO + b"\x03" + _global("numpy.core.multiarray", "_reconstruct") + _global("numpy", "ndarray")
            + _int(0) + pickle.TUPLE1 + pickle.SHORT_BINBYTES + b"\x01b" + pickle.TUPLE3 + pickle.REDUCE
            + pickle.MARK + _int(1) + pickle.MARK + shape + pickle.TUPLE + _global("numpy", "dtype")
            + _unicode("O8") + _int(0) + _int(1) + pickle.TUPLE3 + pickle.REDUCE + pickle.MARK + _int(3)
            + _unicode("|") + pickle.NONE + pickle.NONE + pickle.NONE + _int(-1) + _int(-1) + _int(63)
            + pickle.TUPLE + pickle.BUILD + pickle.NEWFALSE + pickle.EMPTY_LIST + pickle.MARK + b"".join(items)
            + pickle.APPENDS + pickle.TUPLE + pickle.BUILD + pickle.STOP)  # fmt: skip
    header = {"descr": "|O", "fortran_order": False, "shape": values.shape}
    with path.open("wb") as f:
        np.lib.format.write_array_header_1_0(f, header)
        f.write(body)


def write_repo(root: Path, rng: np.random.Generator) -> dict:
    """The authors' folders with a few logs each; returns what was written (accuracy arrays, curvature values)."""
    written: dict = {"depth": {}, "curvature": {}}
    depth = root / "make-plots" / "logs" / "mnist-depth"
    for folder, steps, suffix in (("10_epochs", 2400, ""), ("100_epochs", 24000, "_epochs100")):
        (depth / folder).mkdir(parents=True)
        for opt, k, lr in (("SGD", 8, "0.1"), ("fromage", 15, "0.01"), ("adam", 21, "0.0001")):
            name = f"{opt}_layers_{k}_initlr_{lr}{suffix}.npy"
            accuracy = rng.integers(0, 251, steps) / 250  # a minibatch of 250: a multiple of 1/250
            np.save(depth / folder / name, accuracy)
            written["depth"][f"{folder}/{name}"] = accuracy
    for folder in CURVATURE_FOLDERS:
        (root / folder).mkdir(parents=True)
        for net, steps in CURVATURE_STEPS.items():
            change = rng.lognormal(0, 2, (len(steps), 100)).astype(np.float32)
            if net == "residualTrue_depth15" and folder != CURVATURE_FOLDERS[0]:  # the same run in both folders
                change = written["curvature"][(CURVATURE_FOLDERS[0], net)]
            save_tensor_array(root / folder / f"{net}_grad_changes.npy", change)
            np.save(root / folder / f"{net}_loss_slices.npy", rng.lognormal(0, 1, (len(steps), 100)))
            written["curvature"][(folder, net)] = change
    return written

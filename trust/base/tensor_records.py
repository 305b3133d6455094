"""A decoder for NumPy object arrays of pickled PyTorch tensors (``np.save`` of a list of CUDA scalar tensors, as
the Fromage authors' ``*_grad_changes.npy`` logs are), without PyTorch and without an unpickler.

The file is read as a stream of pickle opcodes (:func:`pickletools.genops` parses, it never builds an object) and
run on a small stack machine that knows exactly the records such a file holds:

* the object array: ``numpy.core.multiarray._reconstruct(numpy.ndarray, (0,), b"b")`` and its state
  ``(1, shape, dtype("O8"), False, [items])``;
* each item: ``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, OrderedDict())``;
* each storage: ``torch.storage._load_from_bytes(b)``, where ``b`` is PyTorch's legacy serialisation — five
  pickles (a magic number, the protocol version 1001, the machine's sizes, the storage as a persistent id
  ``("storage", torch.FloatStorage, key, location, size, None)``, the list of keys) followed, per key, by its
  element count (int64, little-endian) and its raw elements.

Any other global, opcode or layout is refused with a :class:`~trust.base.errors.TrustError` naming it: nothing
foreign is ever called or constructed.
"""

from __future__ import annotations

import io
import pickletools
from pathlib import Path

import numpy as np

from trust.base.errors import TrustError

MAGIC = 0x1950A86A20F9469CFC6C  # PyTorch's legacy-format magic number
PROTOCOL = 1001
# opcodes that push their argument: numbers, strings, bytes
LITERALS = {"BININT", "BININT1", "BININT2", "INT", "LONG", "LONG1", "LONG4", "BINFLOAT", "FLOAT", "BINUNICODE",
            "SHORT_BINUNICODE", "UNICODE", "BINBYTES", "SHORT_BINBYTES", "BINSTRING", "SHORT_BINSTRING"}  # fmt: skip
STORAGES = {"FloatStorage": np.dtype("<f4"), "DoubleStorage": np.dtype("<f8"), "HalfStorage": np.dtype("<f2")}


class _Call:
    """A global's call not yet made: the name and, once REDUCEd, the arguments (then BUILD's state)."""

    def __init__(self, name: str, args: tuple = ()):
        self.name, self.args, self.state = name, args, None


class _Mark:
    pass


def _globals(where: str, allowed: set[str]):
    def named(module: str, name: str) -> str:
        full = f"{module}.{name}".replace("numpy._core.", "numpy.core.")  # NumPy 2 writes numpy._core
        if full not in allowed:
            raise TrustError(f"{where}: refused a foreign object {module}.{name} (only PyTorch tensor records load)")
        return full

    return named


def _run(stream: io.BytesIO, where: str, allowed: set[str], persistent=None):
    """Interpret one pickle from ``stream`` (up to its STOP) over the allowed globals; returns its value, with
    ``_Call`` records for the calls it describes."""
    named = _globals(where, allowed)
    stack: list = []
    memo: dict = {}
    for op, arg, _ in pickletools.genops(stream):
        code = op.name
        if code in ("PROTO", "FRAME"):
            continue
        if code == "STOP":
            return stack.pop()
        if code in ("BINPUT", "LONG_BINPUT", "PUT"):
            memo[arg] = stack[-1]
        elif code == "MEMOIZE":
            memo[len(memo)] = stack[-1]
        elif code in ("BINGET", "LONG_BINGET", "GET"):
            stack.append(memo[arg])
        elif code == "MARK":
            stack.append(_Mark())
        elif code in ("GLOBAL", "STACK_GLOBAL"):
            module, name = str(arg).split(" ", 1) if code == "GLOBAL" else (stack.pop(-2), stack.pop())
            stack.append(_Call(named(module, name)))
        elif code in LITERALS:
            stack.append(arg)
        elif code in ("NONE", "NEWTRUE", "NEWFALSE"):
            stack.append({"NONE": None, "NEWTRUE": True, "NEWFALSE": False}[code])
        elif code == "EMPTY_TUPLE":
            stack.append(())
        elif code in ("TUPLE1", "TUPLE2", "TUPLE3"):
            n = int(code[-1])
            items = tuple(stack[-n:])
            del stack[-n:]
            stack.append(items)
        elif code == "TUPLE":
            stack.append(tuple(_pop_mark(stack)))
        elif code == "EMPTY_LIST":
            stack.append([])
        elif code == "EMPTY_DICT":
            stack.append({})
        elif code == "APPEND":
            item = stack.pop()
            stack[-1].append(item)
        elif code == "APPENDS":
            appended = _pop_mark(stack)  # before naming the list: the mark sits above it
            stack[-1].extend(appended)
        elif code in ("SETITEM", "SETITEMS"):
            pairs = [stack.pop(), stack.pop()][::-1] if code == "SETITEM" else _pop_mark(stack)
            target = stack[-1]
            if not isinstance(target, dict):
                raise TrustError(f"{where}: a malformed record (items set on a {type(target).__name__})")
            target.update(zip(pairs[::2], pairs[1::2]))
        elif code == "REDUCE":
            args, call = stack.pop(), stack.pop()
            if not isinstance(call, _Call) or call.args:
                raise TrustError(f"{where}: a malformed record (a call of something that is not a global)")
            stack.append(_Call(call.name, args))
        elif code == "BUILD":
            state = stack.pop()
            if not isinstance(stack[-1], _Call):
                raise TrustError(f"{where}: a malformed record (state set on a {type(stack[-1]).__name__})")
            stack[-1].state = state
        elif code == "BINPERSID" and persistent is not None:
            stack.append(persistent(stack.pop()))
        else:
            raise TrustError(f"{where}: refused pickle opcode {code} (only PyTorch tensor records load)")
    raise TrustError(f"{where}: the record ends before its STOP")


def _pop_mark(stack: list) -> list:
    k = max(i for i, v in enumerate(stack) if isinstance(v, _Mark))
    items = stack[k + 1 :]
    del stack[k:]
    return items


def _storage(blob: bytes, where: str) -> np.ndarray:
    """The elements of one storage serialised by ``torch.save`` in the legacy format (module docstring)."""
    stream = io.BytesIO(blob)
    header = [_run(stream, where, set()) for _ in range(3)]
    if header[0] != MAGIC or header[1] != PROTOCOL:
        raise TrustError(f"{where}: not a PyTorch legacy storage (magic {header[0]!r}, protocol {header[1]!r})")
    if not isinstance(header[2], dict) or header[2].get("little_endian") is not True:
        raise TrustError(f"{where}: a storage from a big-endian machine is not supported")
    storages = {f"torch.{name}" for name in STORAGES}

    def persistent(pid):
        if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage" and isinstance(pid[1], _Call)):
            raise TrustError(f"{where}: refused a persistent id {pid!r}")
        if pid[5] is not None:
            raise TrustError(f"{where}: storage views are not supported")
        return (STORAGES[pid[1].name.split(".")[1]], str(pid[2]), int(pid[4]))

    dtype, key, size = _run(stream, where, storages, persistent)
    keys = _run(stream, where, set())
    if keys != [key]:
        raise TrustError(f"{where}: expected one storage {key!r}, found keys {keys!r}")
    count = np.frombuffer(stream.read(8), "<i8")
    data = stream.read()
    if count.size != 1 or int(count[0]) != size or len(data) != size * dtype.itemsize:
        raise TrustError(f"{where}: a storage of {size} elements holds {len(data)} bytes")
    return np.frombuffer(data, dtype).astype(np.float64)


def _tensor(call: _Call, where: str) -> np.ndarray:
    """The values of a ``_rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks)`` record."""
    args = call.args
    if call.name != "torch._utils._rebuild_tensor_v2" or len(args) < 6:
        raise TrustError(f"{where}: expected a tensor record, found {call.name}")
    source, offset, size, stride = args[:4]
    if not (isinstance(source, _Call) and source.name == "torch.storage._load_from_bytes"):
        raise TrustError(f"{where}: a tensor whose storage is not serialised bytes")
    hooks = args[5]
    if not (isinstance(hooks, _Call) and hooks.name == "collections.OrderedDict" and hooks.args == ()):
        raise TrustError(f"{where}: a tensor with backward hooks is refused")
    values = _storage(bytes(source.args[0]), where)
    n = int(np.prod(size)) if size else 1
    contiguous = tuple(int(np.prod(size[i + 1 :])) for i in range(len(size)))
    if tuple(stride) != contiguous or offset + n > values.size:
        raise TrustError(f"{where}: a non-contiguous tensor (size {size}, stride {stride}) is not supported")
    return values[offset : offset + n].reshape(size)


def load_tensor_array(path: str | Path) -> np.ndarray:
    """The float64 values of a ``.npy`` object array whose items are PyTorch tensors (module docstring), with the
    array's shape (scalar tensors) or the shape followed by each tensor's."""
    path = Path(path)
    where = str(path)
    try:
        with path.open("rb") as f:
            version = np.lib.format.read_magic(f)
            read_header = (
                np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            )
            shape, fortran, dtype = read_header(f)
            body = io.BytesIO(f.read())
    except (OSError, ValueError) as err:
        raise TrustError(f"{where}: not a readable .npy file ({err})") from None
    if dtype != np.dtype(object):
        raise TrustError(f"{where}: a plain {dtype} array, not pickled tensors: read it with numpy.load")
    allowed = {"numpy.core.multiarray._reconstruct", "numpy.ndarray", "numpy.dtype", "torch._utils._rebuild_tensor_v2",
               "torch.storage._load_from_bytes", "collections.OrderedDict"}  # fmt: skip
    try:
        array = _run(body, where, allowed)
    except (ValueError, IndexError, KeyError, TypeError, EOFError) as err:
        raise TrustError(f"{where}: a malformed pickle ({err.__class__.__name__}: {err})") from None
    if not (isinstance(array, _Call) and array.name == "numpy.core.multiarray._reconstruct"):
        raise TrustError(f"{where}: the pickle is not a NumPy array")
    state = array.state
    if not (isinstance(state, tuple) and len(state) == 5 and tuple(state[1]) == tuple(shape)):
        raise TrustError(f"{where}: the array's state does not match its header shape {shape}")
    items = state[4]
    if not isinstance(items, list) or len(items) != int(np.prod(shape)):
        raise TrustError(f"{where}: {len(items) if isinstance(items, list) else 0} items for shape {shape}")
    values = np.array([_tensor(item, where) if isinstance(item, _Call) else _foreign(item, where) for item in items])
    out = values.reshape(tuple(shape) + values.shape[1:])
    return np.asfortranarray(out) if fortran else out


def _foreign(item, where: str):
    raise TrustError(f"{where}: refused an item of type {type(item).__name__} (only PyTorch tensors load)")

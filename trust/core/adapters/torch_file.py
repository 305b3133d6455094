"""A PyTorch network through its ``state_dict`` saved with safetensors (``pip install
'deep-relative-trust[safetensors]'``): the file is read with safetensors' NumPy API — no torch at run time — into
the matching trust network, a named architecture, with PyTorch's layouts turned into trust's (an OIHW kernel into
HWIO; a linear weight is ``(out, in)`` in both; BatchNorm's ``weight``/``bias`` into ``scale``/``shift`` and its
running statistics into the evaluation-mode statistics).

Architectures (the PyTorch module must be built as the docstring of each says; ``scripts/torch_fixture.py`` has
both):

* ``mlp`` — ``nn.Sequential`` of ``nn.Linear`` with ReLU between them: keys ``{i}.weight``, ``{i}.bias``.
* ``resnet`` — trust's pre-activation ResNet (:class:`trust.core.nets.ResNet`) with ``stem``, ``blocks.{i}``
  (``norm1``, ``conv1``, ``norm2``, ``conv2``, ``proj`` where a stage begins), ``norm`` and ``head``; a stride-2
  convolution padded as XLA's "SAME" (one row and column after the image). Its input image ``(H, W, C)`` is given.

Any tensor the architecture does not use, or a shape that does not fit it, is refused by name."""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file

from trust.base import spec as specs
from trust.base.errors import TrustError
from trust.base.tree import leaf_names, leaves
from trust.core import nets
from trust.core.adapters import Model, file_digest

ARCHITECTURES = ("mlp", "resnet")


def read(path) -> dict[str, np.ndarray]:
    """The tensors of a safetensors file, by name (NumPy arrays; never a pickle)."""
    path = Path(path)
    if not path.is_file():
        raise TrustError(f"no safetensors file at {path}")
    try:
        return dict(load_file(str(path)))
    except (SafetensorError, OSError, ValueError) as err:
        raise TrustError(f"{path} is not a readable safetensors file: {str(err).splitlines()[0]}") from None


class _Tensors:
    """The file's tensors, each taken once; :meth:`done` refuses any left over."""

    def __init__(self, tensors: dict[str, np.ndarray], architecture: str):
        self.left, self.architecture = dict(tensors), architecture

    def take(self, name: str, ndim: int) -> np.ndarray:
        if name not in self.left:
            raise TrustError(f"the {self.architecture!r} architecture needs tensor {name}, which the file lacks")
        t = self.left.pop(name)
        if t.ndim != ndim or not np.issubdtype(t.dtype, np.floating):
            raise TrustError(f"tensor {name} has shape {t.shape} and dtype {t.dtype}; the {self.architecture!r} "
                             f"architecture needs a {ndim}-dimensional floating-point tensor")  # fmt: skip
        return t

    def has(self, name: str) -> bool:
        return name in self.left

    def done(self) -> None:
        left = sorted(k for k in self.left if not k.endswith("num_batches_tracked"))
        if left:
            raise TrustError(f"tensor {left[0]} of the file is not part of the {self.architecture!r} architecture")


def _hwio(kernel: np.ndarray) -> np.ndarray:
    """A PyTorch OIHW kernel as trust's HWIO."""
    return np.ascontiguousarray(kernel.transpose(2, 3, 1, 0))


def _mlp(t: _Tensors):
    layers = sorted({int(k.split(".")[0]) for k in t.left if k.split(".")[0].isdigit()})
    params = [{"w": t.take(f"{i}.weight", 2), "b": t.take(f"{i}.bias", 1)} for i in layers]
    t.done()
    widths = (params[0]["w"].shape[1], *(p["w"].shape[0] for p in params)) if params else ()
    for i, (p, q) in enumerate(zip(params, params[1:])):
        if q["w"].shape[1] != p["w"].shape[0]:
            raise TrustError(f"layer {layers[i + 1]} takes {q['w'].shape[1]} inputs but layer {layers[i]} gives "
                             f"{p['w'].shape[0]}")  # fmt: skip
    net = nets.MLP(widths, "relu", bias=True, final_activation=False)
    return net.apply, params


def _norm(t: _Tensors, prefix: str, stats: list) -> dict:
    stats.append((t.take(f"{prefix}.running_mean", 1), t.take(f"{prefix}.running_var", 1)))
    return {"scale": t.take(f"{prefix}.weight", 1), "shift": t.take(f"{prefix}.bias", 1)}


def _resnet(t: _Tensors, image):
    if image is None or len(image) != 3:
        raise TrustError("the 'resnet' architecture needs the input image as (H, W, C)")
    batch = t.has("norm.weight")
    stats: list = []
    params: list[dict] = [{"w": _hwio(t.take("stem.weight", 4))}]
    widths, blocks = [params[0]["w"].shape[3]], [0]
    i = 0
    while t.has(f"blocks.{i}.conv1.weight"):
        b = f"blocks.{i}"
        block = {
            "conv1": {"w": _hwio(t.take(f"{b}.conv1.weight", 4))},
            "conv2": {"w": _hwio(t.take(f"{b}.conv2.weight", 4))},
        }
        if t.has(f"{b}.proj.weight"):
            block["proj"] = {"w": _hwio(t.take(f"{b}.proj.weight", 4))}
            if i > 0:  # a projection begins a stage (stride 2); the first stage's may only widen
                widths.append(block["conv1"]["w"].shape[3])
                blocks.append(0)
        if batch:
            block["norm1"], block["norm2"] = _norm(t, f"{b}.norm1", stats), _norm(t, f"{b}.norm2", stats)
        blocks[-1] += 1
        params.append(block)
        i += 1
    head: dict = {"w": t.take("head.weight", 2), "b": t.take("head.bias", 1)}
    if batch:
        head["norm"] = _norm(t, "norm", stats)
    params.append(head)
    t.done()
    net = nets.ResNet(tuple(image), head["w"].shape[0], tuple(widths), tuple(blocks), norm="batch" if batch else "none")
    expected = jax.eval_shape(net.init, jax.random.key(0))  # shapes only: nothing drawn or compiled
    if leaf_names(expected) != leaf_names(params):
        raise TrustError(f"the tensors describe no ResNet trust builds (its layers: {leaf_names(expected)[:6]}…)")
    for name, got, want in zip(leaf_names(params), leaves(params), leaves(expected)):
        if got.shape != want.shape:
            raise TrustError(
                f"tensor {name} has shape {got.shape}; the ResNet these tensors describe needs {want.shape}"
            )

    def apply(p, x):
        return net.apply(p, x, stats if batch else None)

    return apply, params


def from_torch_file(path, architecture: str, image=None) -> Model:
    """The network of a safetensors file as a :class:`~trust.core.adapters.Model` of the named ``architecture``
    (evaluation mode: BatchNorm with the file's running statistics); ``image``: ``(H, W, C)`` for ``resnet``."""
    if architecture not in ARCHITECTURES:
        raise TrustError(f"architecture must be one of {', '.join(ARCHITECTURES)}; got {architecture!r}")
    tensors = _Tensors(read(path), architecture)
    apply, params = _mlp(tensors) if architecture == "mlp" else _resnet(tensors, image)
    roles = dict(zip(leaf_names(params), specs.trust_naming(params)))
    return Model(apply, params, roles, f"safetensors {Path(path).name} as trust's {architecture} "
                                       f"(sha256 {file_digest(path)[:16]})")  # fmt: skip

"""A user's model for the command line (``--model-file``, README: Your own model): a Python file's function that
returns ``(model, x, y)`` — a :class:`trust.core.adapters.Model` and its measurement batch — or a safetensors file
read as a named architecture (``--architecture``) and measured on a built-in data set. The file's SHA-256 is part
of the run's config, so a changed file is never mistaken for a finished run."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import jax
import jax.numpy as jnp

from trust.base.errors import TrustError
from trust.base.schema import param
from trust.core import data
from trust.core.adapters import Model, file_digest

SAFETENSORS = ".safetensors"
ARCHITECTURES = ("mlp", "resnet")  # trust.core.adapters.torch_file's (imported only when such a file is read)


def model_file_param():
    return param("", "your own model: path.py:function returning (model, x, y), or a .safetensors file")


def architecture_param():
    return param("", "the trust net a .safetensors --model-file holds", choices=("", *ARCHITECTURES))


def image_param():
    return param((), "(H W C) of a safetensors resnet's input", minimum=1)


def sha256_param():
    return param("", "the model file's SHA-256 (filled in from --model-file)")


def validate(config) -> None:
    """A config's own-model fields: a safetensors file names its architecture."""
    if config.model_file.endswith(SAFETENSORS) and not config.architecture:
        raise TrustError(f"a {SAFETENSORS} --model-file needs --architecture ({' or '.join(ARCHITECTURES)})")


def path_of(model_file: str) -> Path:
    """The file part of ``path.py:function`` or ``file.safetensors``; refused if it does not exist."""
    path = Path(model_file.rsplit(":", 1)[0] if not model_file.endswith(SAFETENSORS) else model_file)
    if path.suffix not in (".py", SAFETENSORS):
        raise TrustError(f"--model-file takes path.py:function or a {SAFETENSORS} file, got {model_file!r}")
    if not path.is_file():
        raise TrustError(f"no model file at {path}")
    return path


def digest(model_file: str) -> str:
    """The SHA-256 of the model file (of the Python file itself, not of what it imports or reads)."""
    return file_digest(path_of(model_file))


def _function(model_file: str):
    """The function named by ``path.py:function``, its module executed (the user's error named, no traceback)."""
    path = path_of(model_file)
    if ":" not in model_file:
        raise TrustError(f"--model-file {model_file}: name the function too, as {path}:function")
    name = model_file.rsplit(":", 1)[1]
    spec = importlib.util.spec_from_file_location(f"trust_own_model_{path.stem}", path)
    assert spec is not None and spec.loader is not None  # a .py file that exists
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as err:  # the user's code failed: their error, named, without our traceback
        raise TrustError(f"{path} raised {err.__class__.__name__}: {err}") from None
    function = getattr(module, name, None)
    if not callable(function):
        raise TrustError(f"{path} has no function {name!r}")
    return function


def _from_python(model_file: str):
    function = _function(model_file)
    try:
        out = function()
    except TrustError:
        raise
    except Exception as err:
        raise TrustError(f"{model_file} raised {err.__class__.__name__}: {err}") from None
    if not (isinstance(out, tuple) and len(out) == 3 and isinstance(out[0], Model)):
        raise TrustError(f"{model_file} must return (model, x, y) with model a trust.core.adapters.Model")
    return out


def check(model_file: str, architecture: str, image: tuple[int, ...]) -> str:
    """What ``--dry-run`` says of a model file, having checked it without measuring anything: the function exists,
    or the safetensors file reads as its architecture."""
    if not model_file.endswith(SAFETENSORS):
        _function(model_file)
        return f"model {model_file}: the function exists (it is called when the run starts)"
    from trust.core.adapters.torch_file import from_torch_file

    model = from_torch_file(path_of(model_file), architecture, image=image or None)
    return f"model {model.source}: {len(model.spec)} tensors"


def load(model_file: str, architecture: str, image: tuple[int, ...], dataset: str, key, n_examples: int):
    """``(model, x, y)`` of a ``--model-file``: from its function, or its safetensors file on ``dataset``'s first
    ``n_examples`` training examples (0: all)."""
    if not model_file.endswith(SAFETENSORS):
        model, x, y = _from_python(model_file)
        x, y = jnp.asarray(x), jnp.asarray(y)
        return (model, x[:n_examples], y[:n_examples]) if n_examples else (model, x, y)
    from trust.core.adapters.torch_file import from_torch_file

    ds = data.load(dataset, key)
    x, y = (ds.x_train[:n_examples], ds.y_train[:n_examples]) if n_examples else (ds.x_train, ds.y_train)
    model = from_torch_file(path_of(model_file), architecture, image=image or None)
    model = Model(model.apply, jax.tree_util.tree_map(jnp.asarray, model.params), model.spec, model.source)
    return model, x, y

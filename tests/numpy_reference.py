"""An independent plain-NumPy implementation, written from docs/theory.md §1, to hold the JAX code against:
the MLP forward pass, the cross-entropy loss and its gradient by hand-written backpropagation, and
the relative distances. It shares no code with ``trust``."""

import numpy as np
from scipy.special import erf


def phi(name, z, slope):
    if name == "relu":
        return np.maximum(z, 0.0)
    if name == "leaky_relu":
        return np.where(z >= 0, z, slope * z)
    if name == "tanh":
        return np.tanh(z)
    if name == "gelu":  # z·Φ(z), Φ the standard normal distribution function
        return z * 0.5 * (1.0 + erf(z / np.sqrt(2.0)))
    if name == "softplus":
        return np.logaddexp(0.0, z)
    return z


def dphi(name, z, slope):
    """φ'(z); relu/leaky relu take the right derivative at 0, as ``where(z >= 0, …)`` does."""
    if name == "relu":
        return (z > 0).astype(z.dtype)  # jax.nn.relu's gradient at exactly 0 is 0
    if name == "leaky_relu":
        return np.where(z >= 0, 1.0, slope)
    if name == "tanh":
        return 1.0 - np.tanh(z) ** 2
    if name == "gelu":  # Φ(z) + z·φ(z)
        return 0.5 * (1.0 + erf(z / np.sqrt(2.0))) + z * np.exp(-0.5 * z**2) / np.sqrt(2.0 * np.pi)
    if name == "softplus":  # the logistic sigmoid
        return 1.0 / (1.0 + np.exp(-z))
    return np.ones_like(z)


def _skips(l: int, L: int, residual: bool, residual_first: bool) -> bool:
    """Whether layer l (0-based) adds its input: the hidden layers of a residual net, the first one too if asked."""
    return residual and (l > 0 or residual_first) and l < L - 1


def forward(ws, bs, x, act, slope=0.01, final_activation=False, residual=False, residual_first=False):
    """Returns the output and the per-layer (input h, pre-activation z) needed for backprop."""
    h, cache = x, []
    L = len(ws)
    for l in range(L):
        z = h @ ws[l].T + (bs[l] if bs is not None else 0.0)
        cache.append((h, z))
        if l == L - 1 and not final_activation:
            return z, cache
        h = h + phi(act, z, slope) if _skips(l, L, residual, residual_first) else phi(act, z, slope)
    return h, cache


def xent_and_grad(ws, bs, x, y, act, slope=0.01, final_activation=False, residual=False, residual_first=False):
    """Mean softmax cross-entropy and its gradient with respect to every W_l and b_l."""
    out, cache = forward(ws, bs, x, act, slope, final_activation, residual, residual_first)
    n = x.shape[0]
    shifted = out - out.max(axis=1, keepdims=True)
    logp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = -logp[np.arange(n), y].mean()
    d_out = np.exp(logp)
    d_out[np.arange(n), y] -= 1.0
    d_out /= n  # ∂ℒ/∂(final output)
    L = len(ws)
    gw, gb = [None] * L, [None] * L
    d_h = d_out
    for l in reversed(range(L)):
        h, z = cache[l]
        linear_output = l == L - 1 and not final_activation
        d_z = d_h if linear_output else d_h * dphi(act, z, slope)
        gw[l] = d_z.T @ h
        gb[l] = d_z.sum(axis=0)
        d_in = d_z @ ws[l]
        d_h = d_in + d_h if _skips(l, L, residual, residual_first) else d_in  # the skip path carries d_h through
    return loss, out, gw, gb


def relative_function_distance(out0, out1):
    """Per-example ‖f1 − f0‖/‖f0‖ and the batch Frobenius ratio."""
    per = np.linalg.norm(out1 - out0, axis=1) / np.linalg.norm(out0, axis=1)
    return per, np.linalg.norm(out1 - out0) / np.linalg.norm(out0)


def relative_gradient_distance(g0, g1):
    return [np.linalg.norm(b - a) / np.linalg.norm(a) for a, b in zip(g0, g1)]

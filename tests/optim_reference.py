"""Plain-NumPy optimisers written from docs/theory.md §4 (one tensor at a time, float64), for the tests."""

import numpy as np


class Fromage:
    def __init__(self, p, lr=0.01, p_bound=None, prefactor=True):
        self.lr, self.p_bound, self.prefactor = lr, p_bound, prefactor
        self.n0 = np.linalg.norm(p)

    def step(self, p, g):
        pn, gn = np.linalg.norm(p), np.linalg.norm(g)
        p = p - self.lr * (pn / gn) * g if (pn > 0 and gn > 0) else p - self.lr * g
        if self.prefactor:
            p = p / np.sqrt(1 + self.lr**2)
        if self.p_bound is not None and np.linalg.norm(p) > self.p_bound * self.n0:
            p = p * self.p_bound * self.n0 / np.linalg.norm(p)
        return p


class Madam:
    def __init__(self, p, lr=0.01, p_scale=3.0, g_bound=10.0, b2=0.999):
        self.lr, self.g_bound, self.b2 = lr, g_bound, b2
        self.sigma = p_scale * np.sqrt(np.mean(p**2)) if p_scale else np.inf  # p_scale 0: no clip
        self.v = np.zeros_like(p)
        self.t = 0

    def normalised(self, g):
        self.t += 1
        self.v = self.b2 * self.v + (1 - self.b2) * g**2
        with np.errstate(invalid="ignore", divide="ignore"):
            gs = g / np.sqrt(self.v / (1 - self.b2**self.t))
        return np.clip(np.where(np.isnan(gs), 0.0, gs), -self.g_bound, self.g_bound)

    def step(self, p, g):
        return np.clip(p * np.exp(-self.lr * self.normalised(g) * np.sign(p)), -self.sigma, self.sigma)


class MadamLNS(Madam):
    def __init__(self, p, levels=4096, base_lr=0.001, lr_factor=10.0, p_scale=3.0, g_bound=10.0, b2=0.999):
        super().__init__(p, 0.0, p_scale, g_bound, b2)
        self.levels, self.base_lr, self.lr_factor = levels, base_lr, lr_factor
        self.sign = np.sign(p)
        with np.errstate(divide="ignore"):
            n = np.round(-np.log(np.abs(p) / self.sigma) / base_lr)
        self.n = np.clip(np.where(np.isfinite(n), n, 0), 0, levels - 1)

    def step(self, p, g):
        self.n = np.clip(self.n + np.round(self.normalised(g) * self.lr_factor) * self.sign, 0, self.levels - 1)
        return self.sign * self.sigma * np.exp(-self.base_lr * self.n)


def lars_weight_decay_step(p, g, lr, wd):
    """LARS with decoupled weight decay λ: ``p − η‖p‖/‖g‖·g − η·λ·p`` (docs/theory.md §6.6)."""
    return p - lr * np.linalg.norm(p) / np.linalg.norm(g) * g - lr * wd * p


def clipped_sgd_step(params, grads, lr, clip):
    """SGD on the gradient clipped to global norm ``clip``: ``g·min(1, clip/‖g‖)`` over every tensor at once."""
    total = np.sqrt(sum(np.sum(g**2) for g in grads.values()))
    scale = min(1.0, clip / total)
    return {k: params[k] - lr * scale * grads[k] for k in params}

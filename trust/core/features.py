"""Feature learning, layer by layer (docs/theory.md §12; G. Yang, J. B. Simon, J. Bernstein, 2023, "A spectral
condition for feature learning", arXiv:2310.17813): how much each layer's features move when the weights move
from ``W`` to ``W'``, and how well each layer's weight change lines up with the features it reads."""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
import numpy as np

from trust.base import linalg
from trust.base.errors import TrustError
from trust.core.nets import MLP


class FeatureChange(NamedTuple):
    """Per layer ``l = 1 … L`` (``h_L`` the output), over the batch as matrices ``H_l`` (examples × features)."""

    relative: np.ndarray  # ‖H_l(W') − H_l(W)‖_F/‖H_l(W)‖_F
    alignment: np.ndarray  # ‖ΔW_l H_{l−1}ᵀ‖_F/(‖ΔW_l‖_op‖H_{l−1}‖_F) ∈ [0, 1], H_{l−1} read at W
    step: np.ndarray  # ‖ΔW_l‖_op/‖W_l‖_op: the spectral size of the change


def feature_change(net: MLP, params: list[dict], new: list[dict], x) -> FeatureChange:
    """The relative change of every layer's features and the alignment of every layer's weight change with the
    features it reads (§12): alignment 1 when the change's top singular directions carry the features, about
    ``1/√rank`` for a change blind to them. Raises for a layer whose weights do not change or features vanish."""
    if len(params) != len(new):
        raise TrustError(f"the two parameter lists have {len(params)} and {len(new)} layers")
    x = jnp.asarray(x)
    before = [np.asarray(h, dtype=float) for h in net.layer_inputs(params, x)]
    after = [np.asarray(h, dtype=float) for h in net.layer_inputs(new, x)]
    relative, alignment, step = [], [], []
    for l, (w, w_new) in enumerate(zip(params, new), start=1):
        h_in, h_out = before[l - 1], before[l]
        delta = np.asarray(w_new["w"], dtype=float) - np.asarray(w["w"], dtype=float)
        delta_op = linalg.operator_norm(delta)
        if not delta_op > 0 or not np.linalg.norm(h_out) > 0 or not np.linalg.norm(h_in) > 0:
            raise TrustError(f"layer {l}: its weights do not move or its features vanish; nothing to compare")
        relative.append(np.linalg.norm(after[l] - h_out) / np.linalg.norm(h_out))
        alignment.append(np.linalg.norm(h_in @ delta.T) / (delta_op * np.linalg.norm(h_in)))
        step.append(delta_op / linalg.operator_norm(np.asarray(w["w"], dtype=float)))
    return FeatureChange(np.array(relative), np.array(alignment), np.array(step))

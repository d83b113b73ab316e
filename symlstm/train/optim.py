"""Optimizers for ``symlstm.nn``: SGD and Adam, as PyTorch's, and global-norm gradient clipping.
They update a dict of parameter arrays in place; ``symlstm.nn`` re-exports them."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from symlstm.train.checks import check_arrays

__all__ = ["SGD", "Adam", "Optimizer", "clip_grad_norm"]


def clip_grad_norm(grads: Mapping[str, np.ndarray], max_norm: float | None):
    """Scale ``grads`` by ``max_norm / (norm + 1e-6)`` when that is below 1, as
    ``torch.nn.utils.clip_grad_norm_`` does (None: no clipping). Returns ``(grads, norm before
    clipping)``, ``norm`` being the global L2 norm; a non-finite norm passes through, as in PyTorch."""
    norm = math.sqrt(sum(float(np.sum(np.square(g, dtype=np.float64))) for g in grads.values()))
    if max_norm is not None:
        scale = max_norm / (norm + 1e-6)
        if scale < 1.0:
            grads = {n: g * g.dtype.type(scale) for n, g in grads.items()}
    return grads, norm


class Optimizer:
    """Updates ``params`` (a dict of arrays, e.g. ``model.params``) in place from gradients."""

    def __init__(self, params: Mapping[str, np.ndarray], lr: float, clip_norm: float | None = None):
        if not isinstance(params, Mapping) or not params:
            raise TypeError("params must be a non-empty dict of arrays, e.g. model.params")
        self.params = dict(check_arrays(params, {n: np.shape(p) for n, p in params.items()}, "params"))
        if not (isinstance(lr, (int, float)) and lr > 0):
            raise ValueError(f"lr must be a positive number, got {lr!r}")
        if clip_norm is not None and not (isinstance(clip_norm, (int, float)) and clip_norm > 0):
            raise ValueError(f"clip_norm must be None or a positive number, got {clip_norm!r}")
        self.lr, self.clip_norm, self.steps = float(lr), clip_norm, 0

    def step(self, grads: Mapping[str, np.ndarray]) -> float:
        """One update; returns the gradient norm before clipping."""
        grads = check_arrays(grads, {n: p.shape for n, p in self.params.items()}, "grads")
        grads, norm = clip_grad_norm(grads, self.clip_norm)
        self.steps += 1
        for name, p in self.params.items():
            p -= self._update(name, grads[name].astype(p.dtype, copy=False)).astype(p.dtype, copy=False)
        return norm

    def _update(self, name: str, grad: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class SGD(Optimizer):
    """Stochastic gradient descent, with optional (heavy-ball) momentum as in ``torch.optim.SGD``."""

    def __init__(self, params, lr: float = 0.01, momentum: float = 0.0, clip_norm: float | None = None):
        super().__init__(params, lr, clip_norm)
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum!r}")
        self.momentum = momentum
        self.velocity = {n: np.zeros_like(p) for n, p in self.params.items()}

    def _update(self, name, grad):
        if not self.momentum:
            return self.lr * grad
        v = self.velocity[name]
        v *= self.momentum
        v += grad
        return self.lr * v


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015) with bias correction, as ``torch.optim.Adam``."""

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        clip_norm: float | None = None,
    ):
        super().__init__(params, lr, clip_norm)
        if len(betas) != 2 or not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"betas must be two numbers in [0, 1), got {betas!r}")
        if not eps > 0:
            raise ValueError(f"eps must be positive, got {eps!r}")
        self.betas, self.eps = tuple(betas), eps
        self.m = {n: np.zeros_like(p) for n, p in self.params.items()}
        self.v = {n: np.zeros_like(p) for n, p in self.params.items()}

    def _update(self, name, grad):
        b1, b2 = self.betas
        m, v = self.m[name], self.v[name]
        m *= b1
        m += (1 - b1) * grad
        v *= b2
        v += (1 - b2) * grad * grad
        m_hat = m / (1 - b1**self.steps)
        v_hat = v / (1 - b2**self.steps)
        return self.lr * m_hat / (np.sqrt(v_hat) + self.eps)

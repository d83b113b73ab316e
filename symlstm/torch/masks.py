"""Per-step data inputs of a cell (a spec's ``[inputs]``, e.g. zoneout's masks ``zh``, ``zc``):
drawn by a sampler in training mode, its expectation in evaluation mode.

    >>> model = symlstm.torch.Recurrent("examples/zoneout.toml", 2, 16)
    >>> model.sample_inputs(zh=Bernoulli(0.15), zc=Bernoulli(0.05))
    >>> model.train(); output, state = model(x)   # fresh masks at every call, step, row and unit
    >>> model.eval(); output, state = model(x)    # zh = 0.15, zc = 0.05 everywhere

A sampler is any object with ``sample(shape, dtype=, device=)`` and ``expectation(shape, dtype=,
device=)``, each returning a tensor of ``shape`` = (T, B, size): write one for another kind of
mask. Masks can also be given per call: ``model(x, inputs={"zh": ..., "zc": ...})``.
"""

from __future__ import annotations

import torch


class Bernoulli:
    """Masks of ones (with probability ``p``) and zeros; ``expectation`` is ``p`` everywhere.

    ``per_step=True`` draws every step anew (zoneout, Krueger et al. 2017). ``per_step=False``
    draws one mask per sequence and unit, kept for all its steps: the variational dropout of Gal &
    Ghahramani 2016, where the same units are dropped at every step. ``scale`` multiplies the
    masks and their expectation: ``Bernoulli(q, scale=1 / q)`` keeps a unit with probability q
    and scales it up as inverted dropout does, so that its expectation is 1.
    """

    def __init__(self, p: float, *, per_step: bool = True, scale: float = 1.0):
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
            raise ValueError(f"p must be a probability in [0, 1], got {p!r}")
        self.p, self.per_step, self.scale = float(p), bool(per_step), float(scale)

    def __repr__(self) -> str:
        return f"Bernoulli({self.p}, per_step={self.per_step}, scale={self.scale})"

    def sample(self, shape, *, dtype, device):
        """A (T, B, size) mask of ``scale`` with probability ``p`` and 0 otherwise; one draw for all
        steps when ``per_step`` is False."""
        drawn = shape if self.per_step else (1, *shape[1:])
        mask = torch.rand(drawn, device=device) < self.p
        return (mask.to(dtype) * self.scale).expand(shape).contiguous()

    def expectation(self, shape, *, dtype, device):
        """The mask's expected value, ``p * scale``, everywhere (what evaluation mode uses)."""
        return torch.full(shape, self.p * self.scale, dtype=dtype, device=device)


def check_sampler(name: str, sampler) -> None:
    """A sampler must have ``sample`` and ``expectation``; raises ``TypeError`` naming ``name``."""
    if not (callable(getattr(sampler, "sample", None)) and callable(getattr(sampler, "expectation", None))):
        raise TypeError(
            f"the sampler for {name!r} must have sample(shape, dtype=, device=) and "
            f"expectation(shape, dtype=, device=), got {type(sampler).__name__}"
        )

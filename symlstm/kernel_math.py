"""Scalar math that the generated kernels call.

Each elementwise function has one implementation per float type, registered with Numba's
``overload``; every constant is created in the argument's own type, because a float64 literal
silently promotes float32 arithmetic to float64.

- float64 uses libm (``math.tanh``, ``math.exp``), so float64 results agree with PyTorch to ~1e-15.
- float32 uses Eigen's 13/6-degree rational approximation of tanh (a few float32 ulp on [-9, 9],
  exactly +-1 outside) and the sigmoid through it, sigma(z) = 1/2 + tanh(z/2)/2. Plain
  arithmetic lets LLVM vectorize the loops that call them; a libm call keeps a loop scalar.

The plain Python bodies below are the float64 definitions; Numba compiles the overloads.
"""
from __future__ import annotations

import math

import numpy as np
from numba import types
from numba.extending import overload

# Eigen's generic_fast_tanh_float: numerator (odd powers) and denominator (even powers).
_TANH_NUM = (4.89352455891786e-03, 6.37261928875436e-04, 1.48572235717979e-05, 5.12229709037114e-08,
             -8.60467152213735e-11, 2.00018790482477e-13, -2.76076847742355e-16)
_TANH_DEN = (4.89352518554385e-03, 2.26843463243900e-03, 1.18534705686654e-04, 1.19825839466702e-06)

def _typed(z, *values):
    """The constants ``values`` in the float type of the Numba type ``z``."""
    kind = np.float32 if z.bitwidth == 32 else np.float64
    return tuple(kind(v) for v in values)


def tanh(z):
    return math.tanh(z)


def sigmoid(z):
    return 1.0 / (1.0 + math.exp(-z))


def exp(z):
    return math.exp(z)


def relu(z):
    """max(z, 0); NaN stays NaN."""
    return 0.0 if z < 0.0 else z


def softsign(z):
    return z / (1.0 + abs(z))


def hard_sigmoid(z):
    """PyTorch's Hardsigmoid: clip(z/6 + 1/2, 0, 1)."""
    return min(max(z / 6.0 + 0.5, 0.0), 1.0)


def positive(y):
    """ReLU's derivative from its output: 1 where y > 0, else 0 (0 at the kink, as PyTorch)."""
    return 1.0 if y > 0.0 else 0.0


def hard_sigmoid_slope(y):
    """The hard sigmoid's derivative from its output: 1/6 inside (0, 1), else 0."""
    return 1.0 / 6.0 if 0.0 < y < 1.0 else 0.0


@overload(tanh, inline="always")
def _tanh(z):
    if not isinstance(z, types.Float):
        return None
    if z.bitwidth == 64:
        return lambda z: math.tanh(z)
    a1, a3, a5, a7, a9, a11, a13 = _typed(z, *_TANH_NUM)
    b0, b2, b4, b6 = _typed(z, *_TANH_DEN)
    (clamp,) = _typed(z, 9.0)

    def tanh_float32(z):
        x = min(max(z, -clamp), clamp)
        x2 = x * x
        p = ((((((a13 * x2 + a11) * x2 + a9) * x2 + a7) * x2 + a5) * x2 + a3) * x2 + a1) * x
        q = ((b6 * x2 + b4) * x2 + b2) * x2 + b0
        return p / q
    return tanh_float32


@overload(sigmoid, inline="always")
def _sigmoid(z):
    if not isinstance(z, types.Float):
        return None
    if z.bitwidth == 64:
        return lambda z: 1.0 / (1.0 + math.exp(-z))
    (half,) = _typed(z, 0.5)
    return lambda z: half + half * tanh(half * z)


@overload(exp, inline="always")
def _exp(z):
    if isinstance(z, types.Float):
        return lambda z: math.exp(z)


@overload(relu, inline="always")
def _relu(z):
    if isinstance(z, types.Float):
        (zero,) = _typed(z, 0.0)
        return lambda z: zero if z < zero else z


@overload(softsign, inline="always")
def _softsign(z):
    if isinstance(z, types.Float):
        (one,) = _typed(z, 1.0)
        return lambda z: z / (one + abs(z))


@overload(hard_sigmoid, inline="always")
def _hard_sigmoid(z):
    if isinstance(z, types.Float):
        zero, half, one, sixth = _typed(z, 0.0, 0.5, 1.0, 1.0 / 6.0)
        return lambda z: min(max(z * sixth + half, zero), one)


@overload(positive, inline="always")
def _positive(y):
    if isinstance(y, types.Float):
        zero, one = _typed(y, 0.0, 1.0)
        return lambda y: one if y > zero else zero


@overload(hard_sigmoid_slope, inline="always")
def _hard_sigmoid_slope(y):
    if isinstance(y, types.Float):
        zero, one, sixth = _typed(y, 0.0, 1.0, 1.0 / 6.0)
        return lambda y: sixth if zero < y < one else zero

"""The logarithm and the functions built on it (softplus, log-sigmoid), vectorizable in both dtypes.

- ``log``: Cephes' method. The exponent and mantissa come from the bits (subnormals scaled up
  first): x = 2^e (1 + f) with sqrt(1/2) <= 1 + f < sqrt(2), then log(1 + f) = f - f^2/2 +
  f^3 R(f) (a 5/5 rational function in float64, a degree-8 polynomial in float32) and e ln 2 added
  in two parts. Within about 1 ulp; log(0) = -inf, log(x < 0) = NaN, log(inf) = inf.
- ``softplus``: log(1 + e^z) = max(z, 0) + log1p(e^-|z|), a sum of two non-negative terms, so no
  cancellation; log1p(t) for t <= sqrt(2) - 1 is the same f - f^2/2 + f^3 R(f) on the exact t,
  which keeps softplus(z) ~ e^z accurate down to where it underflows.
- ``logsigmoid``: log(sigmoid(z)) = -softplus(-z).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from symlstm.backends.numba.kernel_math_core import (
    LN2_SPLIT,
    bits_as_float,
    body,
    exp,
    float_as_bits,
    float_type,
    horner,
    int_type,
    kernel,
    select,
    typed,
)

# Cephes' log.c: log(1 + f) = f - f^2/2 + f^3 P(f) / Q(f), Q monic (highest power first).
_LOG_P = (
    1.01875663804580931796e-4,
    4.97494994976747001425e-1,
    4.70579119878881725854,
    1.44989225341610930846e1,
    1.79368678507819816313e1,
    7.70838733755885391666,
)
_LOG_Q = (
    1.0,
    1.12873587189167450590e1,
    4.52279145837532221105e1,
    8.29875266912776603211e1,
    7.11544750618563894466e1,
    2.31251620126765340583e1,
)
# Cephes' logf.c: log(1 + f) = f - f^2/2 + f^3 P(f).
_LOGF_P = (
    7.0376836292e-2,
    -1.1514610310e-1,
    1.1676998740e-1,
    -1.2420140846e-1,
    1.4249322787e-1,
    -1.6668057665e-1,
    2.0000714765e-1,
    -2.4999993993e-1,
    3.3333331174e-1,
)
#: float64, float32: (mantissa bits, the exponent field of 1/2, log2 of the subnormal scale factor)
_LAYOUT = {64: (52, 1022, 54), 32: (23, 126, 25)}


def log(z):
    return math.log(z)


def softplus(z):
    return max(z, 0.0) + math.log1p(math.exp(-abs(z)))


def logsigmoid(z):
    return -softplus(-z)


def _log1p_tail(z):
    """The jitted f -> log(1 + f) - f, accurate for |f| <= sqrt(2) - 1, in the float type z."""
    half, one = typed(z, 0.5, 1.0)
    if z.bitwidth == 64:
        p, q = typed(z, *_LOG_P), typed(z, *_LOG_Q)
    else:  # a polynomial: the denominator 1 is folded away by LLVM
        p, q = typed(z, *_LOGF_P), (one,)
    return njit(inline="always")(lambda f: f * (f * f) * (horner(f, p) / horner(f, q)) - half * (f * f))


@kernel(log)
def _log(z):
    ints, kind = int_type(z), float_type(z)
    mantissa_bits, half_exponent, scale_bits = _LAYOUT[z.bitwidth]
    shift, exponent_of_half = ints(mantissa_bits), ints(half_exponent)
    mantissa_mask, half_bits = ints((1 << mantissa_bits) - 1), ints(half_exponent << mantissa_bits)
    tail = _log1p_tail(z)
    ln2_hi, ln2_lo = typed(z, *LN2_SPLIT[z.bitwidth])
    zero, one, sqrt_half, inf, nan = typed(z, 0.0, 1.0, math.sqrt(0.5), np.inf, np.nan)
    tiny, scale, scaled_exponent = typed(z, np.finfo(kind).tiny, 2.0**scale_bits, scale_bits)

    def log_vectorizable(z):
        subnormal = z < tiny  # scaled into the normal range first (also 0 and z < 0, set below)
        bits = float_as_bits(select(subnormal, z * scale, z))
        # z = 2^e m with m in [1/2, 1), as frexp gives it
        e = kind(bits >> shift) - kind(exponent_of_half) - select(subnormal, scaled_exponent, zero)
        m = bits_as_float(ints((bits & mantissa_mask) | half_bits))
        # 1 + f = m or 2 m, whichever lies in [sqrt(1/2), sqrt(2))
        low = m < sqrt_half
        e = select(low, e - one, e)
        f = select(low, m + m - one, m - one)
        y = (f + (tail(f) + e * ln2_lo)) + e * ln2_hi
        y = select(z < inf, y, z)  # inf and NaN are their own logarithm
        y = select(z == zero, -inf, y)
        return select(z < zero, nan, y)

    return log_vectorizable


@kernel(softplus)
def _softplus(z):
    exp_, log_, tail = body(exp, z), body(log, z), _log1p_tail(z)
    zero, one, split = typed(z, 0.0, 1.0, math.sqrt(2.0) - 1.0)

    def softplus_vectorizable(z):
        t = exp_(-abs(z))  # in [0, 1]; NaN stays NaN
        log1p = select(t <= split, t + tail(t), log_(one + t))
        return select(z > zero, z, zero) + log1p

    return softplus_vectorizable


@kernel(logsigmoid)
def _logsigmoid(z):
    softplus_ = body(softplus, z)
    return lambda z: -softplus_(-z)

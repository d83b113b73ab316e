"""Scalar math that the generated kernels call: one kernel per primitive of ``symlstm.lang.primitives``,
listed in ``PRIMITIVE_KERNELS`` under the primitive's name (the generated modules import them from
here by that name).

Each kernel is a plain Python function, the reference definition, and a Numba implementation per
float type (``kernel_math_core.kernel``), whose constants are all made in the argument's own type:
a float64 literal would silently promote float32 arithmetic to float64. Everything is plain
arithmetic, compares and selects, never a libm call, so LLVM vectorizes the loops that call it (a
call to ``exp`` or ``tanh`` in libm keeps a loop scalar). ``sqrt`` and ``abs`` are LLVM intrinsics,
which vectorize. The longer ones live in sibling modules:

- ``kernel_math_core``: ``exp`` (Cody-Waite reduction, a Taylor polynomial, 2^k from its bits;
  within about 1 ulp) and ``expm1`` (Cephes), and the building blocks;
- ``kernel_math_log``: ``log`` (exponent and mantissa from the bits, Cephes' polynomials; about
  1 ulp), ``softplus`` and ``logsigmoid`` (log1p-accurate, also where they are tiny);
- ``kernel_math_trig``: ``sin`` and ``cos`` (Cephes; about 1 ulp for |z| <= 2^30, see there).

Here: ``tanh`` (float64: Cephes' rational approximation for |z| < 0.625 and (1 - e)/(1 + e) with
e = exp(-2|z|) above, about 2 ulp; float32: Eigen's 13/6-degree rational approximation, a few ulp
on [-9, 9], exactly +-1 outside), ``sigmoid`` = 1/(1 + exp(-z)), accurate relative to its value
also where it is tiny, ``silu`` and ``gelu`` (as z times a sigmoid, never 1 + tanh, which cancels),
the piecewise functions and the derivative helpers. NaN propagates through all of them; +-inf give
the limits (or NaN where PyTorch gives NaN: silu(-inf), gelu(-inf)).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from symlstm.backends.numba.blas import gemm
from symlstm.backends.numba.kernel_math_core import body, exp, expm1, kernel, select, typed
from symlstm.backends.numba.kernel_math_log import log, logsigmoid, softplus
from symlstm.backends.numba.kernel_math_trig import cos, sin

# Eigen's generic_fast_tanh_float: numerator (odd powers) and denominator (even powers).
_TANH_NUM = (
    4.89352455891786e-03,
    6.37261928875436e-04,
    1.48572235717979e-05,
    5.12229709037114e-08,
    -8.60467152213735e-11,
    2.00018790482477e-13,
    -2.76076847742355e-16,
)
_TANH_DEN = (4.89352518554385e-03, 2.26843463243900e-03, 1.18534705686654e-04, 1.19825839466702e-06)
# Cephes tanh for |z| < 0.625: z + z^3 P(z^2) / Q(z^2), Q monic.
_TANH_P = (-9.64399179425052238628e-1, -9.92877231001918586564e1, -1.61468768441708447952e3)
_TANH_Q = (1.12811678491632931402e2, 2.23548839060100448583e3, 4.84406305325125486048e3)
#: PyTorch's gelu(approximate="tanh") is z sigmoid(v), v = 2 sqrt(2/pi) (z + 0.044715 z^3)
_GELU_LINEAR = 2.0 * math.sqrt(2.0 / math.pi)
_GELU_CUBIC = _GELU_LINEAR * 0.044715
#: leaky_relu's slope below 0 (PyTorch's default negative_slope)
LEAKY_SLOPE = 0.01


def tanh(z):
    return math.tanh(z)


def sigmoid(z):
    return 1.0 / (1.0 + math.exp(-z))


def relu(z):
    """max(z, 0); NaN stays NaN."""
    return 0.0 if z < 0.0 else z


def softsign(z):
    return z / (1.0 + abs(z))


def hard_sigmoid(z):
    """PyTorch's Hardsigmoid: clip(z + 3, 0, 6) / 6 = clip(z/6 + 1/2, 0, 1), exact near -3."""
    return min(max(z + 3.0, 0.0), 6.0) / 6.0


def sqrt(z):
    return math.sqrt(z)


def abs(z):  # the spec's name; it shadows the builtin in this module, meaning the same on floats
    return math.fabs(z)


def elu(z):
    """z above 0, e^z - 1 below (alpha 1)."""
    return z if z > 0.0 else math.expm1(z)


def leaky_relu(z):
    return z if z > 0.0 else LEAKY_SLOPE * z


def silu(z):
    return z / (1.0 + math.exp(-z))


def gelu(z):
    return z / (1.0 + math.exp(-z * (_GELU_LINEAR + _GELU_CUBIC * z * z)))


def maximum(a, b):
    """As torch.maximum: NaN if either is NaN."""
    return b if a < b or b != b else a


def minimum(a, b):
    """As torch.minimum: NaN if either is NaN."""
    return b if b < a or b != b else a


# -- derivative helpers (see symlstm.lang.primitives) ---------------------------------------------
def positive(z):
    """ReLU's derivative from its output: 1 where y > 0, else 0 (0 at the kink, as PyTorch)."""
    return 1.0 if z > 0.0 else 0.0


def hard_sigmoid_slope(z):
    """The hard sigmoid's derivative from its output: 1/6 inside (0, 1), else 0."""
    return 1.0 / 6.0 if 0.0 < z < 1.0 else 0.0


def sign(z):
    """abs' : 1, -1, or 0 at 0 (and for NaN), as torch.sgn."""
    return 1.0 if z > 0.0 else (-1.0 if z < 0.0 else 0.0)


def one_minus_exp(z):
    """1 - e^z, accurate near 0: softplus' = 1 - e^-y and logsigmoid' = 1 - e^y from the output y."""
    return -math.expm1(z)


def silu_slope(z):
    s = 1.0 / (1.0 + math.exp(-z))
    return s * (1.0 + z * (1.0 - s))


def gelu_slope(z):
    v = z * (_GELU_LINEAR + _GELU_CUBIC * z * z)
    s = 1.0 / (1.0 + math.exp(-v))
    return s + z * s * (1.0 - s) * (_GELU_LINEAR + 3.0 * _GELU_CUBIC * z * z)


def max_slope(a, b):
    """d maximum(a, b) / da: 1 where a > b, 1/2 at a tie, 0 where a < b (and 1 with a NaN), as PyTorch."""
    return 0.0 if a < b else (0.5 if a == b else 1.0)


@kernel(tanh)
def _tanh(z):
    exp_ = body(exp, z)
    if z.bitwidth == 64:
        p0, p1, p2 = _TANH_P
        q0, q1, q2 = _TANH_Q
        one, two, split = 1.0, 2.0, 0.625

        def tanh_float64(z):
            a = math.fabs(z)
            e = exp_(-two * a)  # in (0, 1]: no overflow
            large = (one - e) / (one + e)
            z2 = z * z
            small = z * (one + z2 * (((p0 * z2 + p1) * z2 + p2) / (((z2 + q0) * z2 + q1) * z2 + q2)))
            return select(a < split, small, math.copysign(large, z))

        return tanh_float64
    a1, a3, a5, a7, a9, a11, a13 = typed(z, *_TANH_NUM)
    b0, b2, b4, b6 = typed(z, *_TANH_DEN)
    (clamp,) = typed(z, 9.0)

    def tanh_float32(z):
        x = min(max(z, -clamp), clamp)
        x2 = x * x
        p = ((((((a13 * x2 + a11) * x2 + a9) * x2 + a7) * x2 + a5) * x2 + a3) * x2 + a1) * x
        q = ((b6 * x2 + b4) * x2 + b2) * x2 + b0
        return p / q

    return tanh_float32


@kernel(sigmoid)
def _sigmoid(z):
    exp_ = body(exp, z)
    (one,) = typed(z, 1.0)
    return lambda z: one / (one + exp_(-z))


@kernel(relu)
def _relu(z):
    (zero,) = typed(z, 0.0)
    return lambda z: select(z < zero, zero, z)


@kernel(softsign)
def _softsign(z):
    (one,) = typed(z, 1.0)
    return lambda z: z / (one + math.fabs(z))


@kernel(hard_sigmoid)
def _hard_sigmoid(z):
    zero, three, six = typed(z, 0.0, 3.0, 6.0)
    return lambda z: min(max(z + three, zero), six) / six


@kernel(sqrt)
def _sqrt(z):
    return lambda z: np.sqrt(z)  # NaN below 0 (the kernels use error_model="numpy")


@kernel(abs)
def _abs(z):
    return lambda z: math.fabs(z)


@kernel(elu)
def _elu(z):
    expm1_ = body(expm1, z)
    (zero,) = typed(z, 0.0)
    return lambda z: select(z > zero, z, expm1_(z))


@kernel(leaky_relu)
def _leaky_relu(z):
    zero, slope = typed(z, 0.0, LEAKY_SLOPE)
    return lambda z: select(z > zero, z, slope * z)


def _sigmoid_and_slope(z):
    """The jitted v -> (sigmoid(v), sigmoid'(v)) = (s, s (1 - s)), in the float type z, from one
    t = e^-|v| <= 1: no overflow, and s (1 - s) = t / (1 + t)^2 without cancellation."""
    exp_ = body(exp, z)
    zero, one = typed(z, 0.0, 1.0)

    def sigmoid_and_slope(v):
        t = exp_(-math.fabs(v))
        u = one / (one + t)
        return select(v < zero, t * u, u), t * (u * u)

    return njit(inline="always")(sigmoid_and_slope)


def _gelu_argument(z):
    """The jitted z -> (v, dv/dz) of gelu = z sigmoid(v), in the float type z."""
    linear, cubic, cubic3 = typed(z, _GELU_LINEAR, _GELU_CUBIC, 3.0 * _GELU_CUBIC)
    return njit(inline="always")(lambda z: (z * (linear + cubic * (z * z)), linear + cubic3 * (z * z)))


@kernel(silu)
def _silu(z):
    exp_ = body(exp, z)
    (one,) = typed(z, 1.0)
    return lambda z: z / (one + exp_(-z))


@kernel(gelu)
def _gelu(z):
    sigmoid_and_slope, argument = _sigmoid_and_slope(z), _gelu_argument(z)
    return lambda z: z * sigmoid_and_slope(argument(z)[0])[0]


@kernel(maximum)
def _maximum(a):
    return lambda a, b: select((a < b) | (b != b), b, a)


@kernel(minimum)
def _minimum(a):
    return lambda a, b: select((b < a) | (b != b), b, a)


@kernel(positive)
def _positive(z):
    zero, one = typed(z, 0.0, 1.0)
    return lambda z: select(z > zero, one, zero)


@kernel(hard_sigmoid_slope)
def _hard_sigmoid_slope(z):
    zero, one, sixth = typed(z, 0.0, 1.0, 1.0 / 6.0)
    return lambda z: select((z > zero) & (z < one), sixth, zero)


@kernel(sign)
def _sign(z):
    zero, one = typed(z, 0.0, 1.0)
    return lambda z: select(z > zero, one, select(z < zero, -one, zero))


@kernel(one_minus_exp)
def _one_minus_exp(z):
    expm1_ = body(expm1, z)
    return lambda z: -expm1_(z)


@kernel(silu_slope)
def _silu_slope(z):
    sigmoid_and_slope = _sigmoid_and_slope(z)
    (zero,) = typed(z, 0.0)

    def silu_slope_vectorizable(z):
        s, ds = sigmoid_and_slope(z)
        # z ds is 0 where ds underflows to 0, also for z = +-inf (the limits 1 and 0)
        return s + select(ds > zero, z * ds, ds)

    return silu_slope_vectorizable


@kernel(gelu_slope)
def _gelu_slope(z):
    sigmoid_and_slope, argument = _sigmoid_and_slope(z), _gelu_argument(z)
    (zero,) = typed(z, 0.0)

    def gelu_slope_vectorizable(z):
        v, dv = argument(z)
        s, ds = sigmoid_and_slope(v)
        # as in silu_slope; also keeps dv = inf (|z| > 1e154 in float64) out where ds is 0
        return s + select(ds > zero, z * ds * dv, ds)

    return gelu_slope_vectorizable


@kernel(max_slope)
def _max_slope(a):
    zero, half, one = typed(a, 0.0, 0.5, 1.0)
    return lambda a, b: select(a < b, zero, select(a == b, half, one))


#: OpenBLAS multiplies a GEMM with at most this many rows here and at most SMALL_GEMM_MACS
#: multiply-adds with its small-matrix kernel, which does not pack (copy) the operands first
SMALL_GEMM_ROWS = 8
SMALL_GEMM_MACS = 1_000_000
#: a product of one row by a matrix of at most this many entries runs as a loop here: a BLAS call
#: costs ~100 ns however small the product (measured, one row, float32 / float64 loop over BLAS:
#: 16 x 128 0.61 / 0.64, 32 x 16 0.29 / 0.35, 32 x 128 0.90 / 0.76, 64 x 128 0.96 / 0.87; with
#: two rows the loop already loses, 1.27 / 1.60 at 32 x 64)
TINY_GEMM_ENTRIES = 8192


@njit(inline="always")
def row_times_matrix(a, b, out):
    """``out = a @ b`` for a vector ``a`` (K,) and a matrix ``b`` (K, N), as a loop over ``b``'s
    rows four at a time (each pass over ``out`` adds four of them: a quarter of the loads and
    stores of one at a time), vectorized along N."""
    K, N = b.shape
    out[:] = 0
    whole = K - K % 4
    for k in range(0, whole, 4):
        a0, a1, a2, a3 = a[k], a[k + 1], a[k + 2], a[k + 3]
        b0, b1, b2, b3 = b[k], b[k + 1], b[k + 2], b[k + 3]
        for j in range(N):
            out[j] += a0 * b0[j] + a1 * b1[j] + a2 * b2[j] + a3 * b3[j]
    for k in range(whole, K):
        ak, bk = a[k], b[k]
        for j in range(N):
            out[j] += ak * bk[j]


@njit(inline="always")
def step_gemm(a, b, out):
    """``out = a @ b`` for the small GEMM of one time step, in blocks of SMALL_GEMM_ROWS rows of
    ``a`` where each block is small enough for OpenBLAS's small-matrix kernel: packing the
    weights ``b`` again at every step costs more than the product at these sizes (measured:
    16 x 128 @ 128 x 512 in float32 at 66 GFLOP/s whole, 101 GFLOP/s in blocks of 8 rows). One
    row by a small matrix (a batch of one) is a loop, which costs less than calling BLAS."""
    rows = a.shape[0]
    if rows == 1 and b.shape[0] * b.shape[1] <= TINY_GEMM_ENTRIES:
        row_times_matrix(a[0], b, out[0])
    elif rows <= SMALL_GEMM_ROWS or SMALL_GEMM_ROWS * b.shape[0] * b.shape[1] > SMALL_GEMM_MACS:
        gemm(a, b, out)
    else:
        for lo in range(0, rows, SMALL_GEMM_ROWS):
            hi = min(lo + SMALL_GEMM_ROWS, rows)
            gemm(a[lo:hi], b, out[lo:hi])


#: primitive name (``symlstm.lang.primitives``) -> its kernel, which the generated modules import
#: from this module by that name: a new primitive's kernel is defined here (or in a sibling module
#: and imported here) and listed here
PRIMITIVE_KERNELS = {
    "sigmoid": sigmoid,
    "tanh": tanh,
    "relu": relu,
    "exp": exp,
    "softsign": softsign,
    "hard_sigmoid": hard_sigmoid,
    "softplus": softplus,
    "sqrt": sqrt,
    "log": log,
    "abs": abs,
    "elu": elu,
    "leaky_relu": leaky_relu,
    "silu": silu,
    "gelu": gelu,
    "logsigmoid": logsigmoid,
    "sin": sin,
    "cos": cos,
    "maximum": maximum,
    "minimum": minimum,
    "positive": positive,
    "hard_sigmoid_slope": hard_sigmoid_slope,
    "sign": sign,
    "one_minus_exp": one_minus_exp,
    "silu_slope": silu_slope,
    "gelu_slope": gelu_slope,
    "max_slope": max_slope,
}

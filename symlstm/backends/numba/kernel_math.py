"""Scalar math that the generated kernels call.

Each elementwise function has one implementation per float type, registered with Numba's
``overload``; every constant is created in the argument's own type, because a float64 literal
silently promotes float32 arithmetic to float64.

Everything here is plain arithmetic, compares and selects, never a libm call, so LLVM vectorizes
the loops that call it (a call to ``exp`` or ``tanh`` in libm keeps a loop scalar):

- ``exp``: Cody-Waite range reduction x = k ln2 + r, |r| <= ln2/2, a Taylor polynomial for e^r
  (degree 13 in float64, 7 in float32) and 2^k built from its bits, in two factors so that the
  denormal range and overflow to inf come out right. Within about 1 ulp of libm.
- ``tanh``: float64 uses Cephes' rational approximation for |z| < 0.625 and (1 - e)/(1 + e) with
  e = exp(-2|z|) above (about 2 ulp); float32 uses Eigen's 13/6-degree rational approximation
  (a few float32 ulp on [-9, 9], exactly +-1 outside).
- ``sigmoid``: 1/(1 + exp(-z)), accurate relative to its value also where it is tiny.

NaN propagates through all of them; +-inf give the limits. The plain Python bodies below are
the reference definitions (libm); Numba compiles the overloads.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, types
from numba.extending import intrinsic, overload

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
# ln 2 = hi + lo, hi with enough trailing zero bits that k * hi is exact for every k the range
# reduction meets: float64 from fdlibm, float32 from Cephes' expf.
_LN2_SPLIT = {64: (6.93147180369123816490e-01, 1.90821492927058770002e-10), 32: (0.693359375, -2.12194440e-4)}


def _typed(z, *values):
    """The constants ``values`` in the float type of the Numba type ``z``."""
    kind = np.float32 if z.bitwidth == 32 else np.float64
    return tuple(kind(v) for v in values)


@intrinsic
def _bits_as_float(typingctx, bits):
    """The float64 (float32) whose bit pattern is the int64 (int32) ``bits``."""
    if not isinstance(bits, types.Integer) or bits.bitwidth not in (32, 64):
        return None
    result = types.float64 if bits.bitwidth == 64 else types.float32

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(result))

    return result(bits), codegen


@intrinsic
def _select(typingctx, condition, if_true, if_false):
    """``if_true if condition else if_false`` as one LLVM ``select``: no branch (so Numba's SSA
    pass has nothing to warn about in inlined code) and always vectorizable."""
    if not isinstance(condition, types.Boolean) or if_true != if_false:
        return None

    def codegen(context, builder, signature, args):
        return builder.select(*args)

    return if_true(condition, if_true, if_false), codegen


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


# Horner's rule written out (a loop would carry a variable that Numba's SSA pass warns about
# once inlined): c[0] r^n + ... + c[n], for the two degrees exp uses.
@njit(inline="always")
def _horner13(r, c):
    return (
        (
            (
                (
                    (
                        (((((((c[0] * r + c[1]) * r + c[2]) * r + c[3]) * r + c[4]) * r + c[5]) * r + c[6]) * r + c[7])
                        * r
                        + c[8]
                    )
                    * r
                    + c[9]
                )
                * r
                + c[10]
            )
            * r
            + c[11]
        )
        * r
        + c[12]
    ) * r + c[13]


@njit(inline="always")
def _horner7(r, c):
    return ((((((c[0] * r + c[1]) * r + c[2]) * r + c[3]) * r + c[4]) * r + c[5]) * r + c[6]) * r + c[7]


@overload(exp, inline="always")
def _exp(z):
    if not isinstance(z, types.Float):
        return None
    if z.bitwidth == 64:
        ints, mantissa_bits, bias, k_limit, underflow = np.int64, 52, 1023, 1100.0, -746.0
        coefficients = tuple(1.0 / math.factorial(n) for n in range(13, -1, -1))
    else:
        ints, mantissa_bits, bias, k_limit, underflow = np.int32, 23, 127, 200.0, -104.0
        coefficients = tuple(1.0 / math.factorial(n) for n in range(7, -1, -1))
    log2e, ln2_hi, ln2_lo, half, lim, below, zero = _typed(
        z, 1.4426950408889634, *_LN2_SPLIT[z.bitwidth], 0.5, k_limit, underflow, 0.0
    )
    c = _typed(z, *coefficients)
    horner = _horner13 if z.bitwidth == 64 else _horner7
    shift, offset = ints(mantissa_bits), ints(bias)
    one_int = ints(1)

    def exp_vectorizable(z):
        # k = round(z / ln 2), clamped so that 2^k below never has an invalid exponent field;
        # z itself is not clamped, so NaN and inf still reach the result.
        k_float = np.floor(min(max(z * log2e, -lim), lim) + half)
        r = (z - k_float * ln2_hi) - k_float * ln2_lo
        k = ints(k_float)
        k_half = k >> one_int
        p = horner(r, c)
        # times 2^k as two factors, one at a time: 2^k alone may be out of range when e^z is not
        y = p * _bits_as_float(ints((k_half + offset) << shift))
        y = y * _bits_as_float(ints((k - k_half + offset) << shift))
        return _select(z < below, zero, y)  # also exp(-inf) = 0, where r is -inf

    return exp_vectorizable


@overload(tanh, inline="always")
def _tanh(z):
    if not isinstance(z, types.Float):
        return None
    if z.bitwidth == 64:
        p0, p1, p2 = _TANH_P
        q0, q1, q2 = _TANH_Q
        one, two, split = 1.0, 2.0, 0.625

        def tanh_float64(z):
            a = abs(z)
            e = exp(-two * a)  # in (0, 1]: no overflow
            large = (one - e) / (one + e)
            z2 = z * z
            small = z * (one + z2 * (((p0 * z2 + p1) * z2 + p2) / (((z2 + q0) * z2 + q1) * z2 + q2)))
            return _select(a < split, small, math.copysign(large, z))

        return tanh_float64
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
    (one,) = _typed(z, 1.0)
    return lambda z: one / (one + exp(-z))


@overload(relu, inline="always")
def _relu(z):
    if isinstance(z, types.Float):
        (zero,) = _typed(z, 0.0)
        return lambda z: _select(z < zero, zero, z)


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
        return lambda y: _select(y > zero, one, zero)


@overload(hard_sigmoid_slope, inline="always")
def _hard_sigmoid_slope(y):
    if isinstance(y, types.Float):
        zero, one, sixth = _typed(y, 0.0, 1.0, 1.0 / 6.0)
        return lambda y: _select((y > zero) & (y < one), sixth, zero)


#: OpenBLAS multiplies a GEMM with at most this many rows here and at most SMALL_GEMM_MACS
#: multiply-adds with its small-matrix kernel, which does not pack (copy) the operands first
SMALL_GEMM_ROWS = 8
SMALL_GEMM_MACS = 1_000_000


@njit(inline="always")
def step_gemm(a, b, out):
    """``out = a @ b`` for the small GEMM of one time step, in blocks of SMALL_GEMM_ROWS rows of
    ``a`` where each block is small enough for OpenBLAS's small-matrix kernel: packing the
    weights ``b`` again at every step costs more than the product at these sizes (measured:
    16 x 128 @ 128 x 512 in float32 at 66 GFLOP/s whole, 101 GFLOP/s in blocks of 8 rows)."""
    rows = a.shape[0]
    if rows <= SMALL_GEMM_ROWS or SMALL_GEMM_ROWS * b.shape[0] * b.shape[1] > SMALL_GEMM_MACS:
        np.dot(a, b, out)
    else:
        for lo in range(0, rows, SMALL_GEMM_ROWS):
            hi = min(lo + SMALL_GEMM_ROWS, rows)
            np.dot(a[lo:hi], b, out[lo:hi])


#: primitive name (``symlstm.lang.primitives``) -> its kernel above, which the generated modules
#: import by that name: a new primitive's kernel is defined here and listed here
PRIMITIVE_KERNELS = {
    "sigmoid": sigmoid,
    "tanh": tanh,
    "relu": relu,
    "exp": exp,
    "softsign": softsign,
    "hard_sigmoid": hard_sigmoid,
    "positive": positive,
    "hard_sigmoid_slope": hard_sigmoid_slope,
}

"""The building blocks of the kernels' scalar math (``kernel_math`` and its sibling modules), and the
exponential they all lean on.

Everything is plain arithmetic, compares and selects, so a loop that calls it vectorizes, and every
constant is made in the argument's own float type (``typed``): a float64 literal would silently
promote float32 arithmetic to float64.

- ``exp``: Cody-Waite range reduction x = k ln2 + r, |r| <= ln2/2, a Taylor polynomial for e^r
  (degree 13 in float64, 7 in float32) and 2^k built from its bits, in two factors so that the
  denormal range and overflow to inf come out right. Within about 1 ulp of libm.
- ``expm1``: e^x - 1 accurate also near 0 (Cephes' rational approximation on |x| <= 1/2,
  exp(x) - 1 outside, where the subtraction loses at most a bit or two).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, types
from numba.extending import intrinsic, overload

# ln 2 = hi + lo, hi with enough trailing zero bits that k * hi is exact for every k the range
# reduction meets: float64 from fdlibm, float32 from Cephes' expf.
LN2_SPLIT = {64: (6.93147180369123816490e-01, 1.90821492927058770002e-10), 32: (0.693359375, -2.12194440e-4)}
# Cephes' expm1: e^x - 1 = 2 x P(x^2) / (Q(x^2) - x P(x^2)) on |x| <= 1/2 (highest power first).
_EXPM1_P = (1.2617719307481059087798e-4, 3.0299440770744196129956e-2, 9.9999999999999999991025e-1)
_EXPM1_Q = (3.0019850513866445504159e-6, 2.5244834034968410419224e-3, 2.2726554820815502876593e-1, 2.0)


def typed(z, *values):
    """The constants ``values`` in the float type of the Numba type ``z``."""
    kind = float_type(z)
    return tuple(kind(v) for v in values)


@intrinsic
def bits_as_float(typingctx, bits):
    """The float64 (float32) whose bit pattern is the int64 (int32) ``bits``."""
    if not isinstance(bits, types.Integer) or bits.bitwidth not in (32, 64):
        return None
    result = types.float64 if bits.bitwidth == 64 else types.float32

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(result))

    return result(bits), codegen


@intrinsic
def float_as_bits(typingctx, value):
    """The bit pattern of the float64 (float32) ``value``, as an int64 (int32)."""
    if not isinstance(value, types.Float):
        return None
    result = types.int64 if value.bitwidth == 64 else types.int32

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(result))

    return result(value), codegen


@intrinsic
def select(typingctx, condition, if_true, if_false):
    """``if_true if condition else if_false`` as one LLVM ``select``: no branch (so Numba's SSA
    pass has nothing to warn about in inlined code) and always vectorizable."""
    if not isinstance(condition, types.Boolean) or if_true != if_false:
        return None

    def codegen(context, builder, signature, args):
        return builder.select(*args)

    return if_true(condition, if_true, if_false), codegen


def float_type(z):
    """The NumPy float type of the Numba float type ``z``."""
    return np.float32 if z.bitwidth == 32 else np.float64


def int_type(z):
    """The NumPy integer type as wide as the Numba float type ``z``."""
    return np.int32 if z.bitwidth == 32 else np.int64


@intrinsic
def horner(typingctx, r, coefficients):
    """``c[0] r^n + ... + c[n]`` by Horner's rule for a tuple ``c`` of r's float type, emitted as
    straight-line LLVM: nothing for Numba to inline (nested inlined functions multiply compile
    time), and the kernel's fast-math flags still apply to every operation."""
    if not (isinstance(r, types.Float) and isinstance(coefficients, types.UniTuple) and coefficients.dtype == r):
        return None

    def codegen(context, builder, signature, args):
        x, c = args
        value = builder.extract_value(c, 0)
        for k in range(1, coefficients.count):
            value = builder.fadd(builder.fmul(value, x), builder.extract_value(c, k))
        return value

    return r(r, coefficients), codegen


#: (stub, float bit width) -> its jitted body; stub -> the factory that makes a body for a float type
_BODIES: dict = {}
_FACTORIES: dict = {}


def body(stub, z):
    """The jitted body of the kernel ``stub`` for the Numba float type ``z``, for other kernels'
    bodies to call: Numba inlines it into them before typing, which is cheap, whereas an overload
    calling an overload is typed once per level and more than doubles the compile time of each."""
    key = (stub, z.bitwidth)
    if key not in _BODIES:
        _BODIES[key] = njit(inline="always")(_FACTORIES[stub](z))
    return _BODIES[key]


def kernel(stub):
    """Register the decorated factory (a Numba float type -> the scalar body for that type) as the
    implementation of ``stub``, a plain Python function of one argument ``z`` or two, ``a`` and
    ``b``, all of one float type; the bodies take the same parameter names. Calls of ``stub`` in
    jitted code are inlined."""

    def register(factory):
        _FACTORIES[stub] = factory
        if stub.__code__.co_argcount == 1:

            def unary(z):
                if isinstance(z, types.Float):
                    return body(stub, z).py_func

            overload(stub, inline="always")(unary)
        else:

            def binary(a, b):
                if isinstance(a, types.Float) and a == b:
                    return body(stub, a).py_func

            overload(stub, inline="always")(binary)
        return factory

    return register


def exp(z):
    return math.exp(z)


def expm1(z):
    return math.expm1(z)


@kernel(exp)
def _exp(z):
    if z.bitwidth == 64:
        mantissa_bits, bias, k_limit, underflow, degree = 52, 1023, 1100.0, -746.0, 13
    else:
        mantissa_bits, bias, k_limit, underflow, degree = 23, 127, 200.0, -104.0, 7
    ints = int_type(z)
    log2e, ln2_hi, ln2_lo, half, lim, below, zero = typed(
        z, 1.4426950408889634, *LN2_SPLIT[z.bitwidth], 0.5, k_limit, underflow, 0.0
    )
    taylor = typed(z, *(1.0 / math.factorial(n) for n in range(degree, -1, -1)))
    shift, offset = ints(mantissa_bits), ints(bias)
    one_int = ints(1)

    def exp_vectorizable(z):
        # k = round(z / ln 2), clamped so that 2^k below never has an invalid exponent field;
        # z itself is not clamped, so NaN and inf still reach the result.
        k_float = np.floor(min(max(z * log2e, -lim), lim) + half)
        r = (z - k_float * ln2_hi) - k_float * ln2_lo
        k = ints(k_float)
        k_half = k >> one_int
        p = horner(r, taylor)
        # times 2^k as two factors, one at a time: 2^k alone may be out of range when e^z is not
        y = p * bits_as_float(ints((k_half + offset) << shift))
        y = y * bits_as_float(ints((k - k_half + offset) << shift))
        return select(z < below, zero, y)  # also exp(-inf) = 0, where r is -inf

    return exp_vectorizable


@kernel(expm1)
def _expm1(z):
    exp_ = body(exp, z)
    p, q = typed(z, *_EXPM1_P), typed(z, *_EXPM1_Q)
    one, half = typed(z, 1.0, 0.5)

    def expm1_vectorizable(z):
        zz = z * z
        r = z * horner(zz, p)
        r = r / (horner(zz, q) - r)
        # NaN fails the compare and takes exp(z) - 1, which is NaN; -inf gives -1, inf gives inf
        return select(abs(z) <= half, r + r, exp_(z) - one)

    return expm1_vectorizable

"""sin and cos, vectorizable in both dtypes (Cephes' method).

|z| is reduced by multiples q of pi/4, rounded to an even q so that r = |z| - q pi/4 lies in
[-pi/4, pi/4]; pi/4 is split into four parts, three with trailing zero bits so that q times each
is exact while q < 2^30, and the reduction keeps 122 bits of pi/4 (Cephes' three parts round
q DP3, which costs relative accuracy next to the zeros, e.g. cos(fl(29 pi/2)) ~ 6e-19). A
polynomial for sin(r) or cos(r), whichever the octant q mod 8 needs, and the octant's sign give
the result; cos(z) is sin's octant logic shifted by two octants (cos z = sin(z + pi/2)).

The reduction runs in float64 for both types (in float32 it would stay exact only up to 8192);
the polynomials run in the argument's type.

Accuracy (measured, ``tests/backends/numba/test_kernel_math.py``): within about 1 ulp in both types
for |z| up to 2^30 = 1.07e9, Cephes' bound, beyond which q DP1 is no longer exact: the absolute
error then jumps to about 1e-4 (unless fused multiply-adds make the products exact) and grows
with |z|, and the result means nothing past about 1e13. It
stays in [-1, 1] for every finite z (r is clamped to [-1, 1]); inf and NaN give NaN.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from symlstm.backends.numba.kernel_math_core import float_type, horner, kernel, select, typed

# Cephes sin.c (float64) and sinf.c (float32): sin r = r + r^3 S(r^2), cos r = 1 - r^2/2 + r^4 C(r^2)
_SIN = {
    64: (
        1.58962301576546568060e-10,
        -2.50507477628578072866e-8,
        2.75573136213857245213e-6,
        -1.98412698295895385996e-4,
        8.33333333332211858878e-3,
        -1.66666666666666307295e-1,
    ),
    32: (-1.9515295891e-4, 8.3321608736e-3, -1.6666654611e-1),
}
_COS = {
    64: (
        -1.13585365213876817300e-11,
        2.08757008419747316778e-9,
        -2.75573141792967388112e-7,
        2.48015872888517045348e-5,
        -1.38888888888730564116e-3,
        4.16666666666665929218e-2,
    ),
    32: (2.443315711809948e-5, -1.388731625493765e-3, 4.166664568298827e-2),
}
# pi/4 in four parts, the first three of 23 significant bits (so that q times each is exact for
# q < 2^30; the first two are Cephes' DP1 and DP2), the last the rest to double precision: 122 bits
_PIO4_SPLIT = (7.853981256484985e-01, 3.774894707930798e-08, 2.6951512649788824e-15, 1.6410017714367502e-22)


def sin(z):
    return math.sin(z)


def cos(z):
    return math.cos(z)


def _octant_sine(z):
    """The jitted (a, shift) -> sin(a + shift pi/4) for a >= 0 and shift 0 or 2, in the float type z.
    The reduction runs in float64 for both types: in float32 it would be exact only up to 8192."""
    kind = float_type(z)
    s, c = typed(z, *_SIN[z.bitwidth]), typed(z, *_COS[z.bitwidth])
    half, one = typed(z, 0.5, 1.0)
    dp1, dp2, dp3, dp4 = _PIO4_SPLIT
    four_over_pi = 4.0 / math.pi

    def octant_sine(a, shift):
        # all in floats (q is an exact integer in floating point), so no conversion can overflow
        x = np.float64(a)
        q = np.floor(x * four_over_pi)
        q = q + (q - 2.0 * np.floor(q * 0.5))  # the even neighbour above an odd q
        r = kind((((x - q * dp1) - q * dp2) - q * dp3) - q * dp4)
        # |r| <= pi/4 (a little more where x 4/pi rounds down past an integer); clamped to 1 where
        # the reduction has lost all precision, so that the result stays in [-1, 1]
        r = select(r > one, one, select(r < -one, -one, r))
        rr = r * r
        octant = q + shift
        octant = octant - 8.0 * np.floor(octant * 0.125)  # 0, 2, 4 or 6
        value = select(
            (octant == 2.0) | (octant == 6.0), one - half * rr + rr * rr * horner(rr, c), r + r * rr * horner(rr, s)
        )
        return select(octant >= 4.0, -value, value)

    return njit(inline="always")(octant_sine)


@kernel(sin)
def _sin(z):
    octant_sine = _octant_sine(z)
    (one,) = typed(z, 1.0)
    # odd: the sign of z (also of -0) times sin |z|
    return lambda z: math.copysign(one, z) * octant_sine(abs(z), 0.0)


@kernel(cos)
def _cos(z):
    octant_sine = _octant_sine(z)
    return lambda z: octant_sine(abs(z), 2.0)  # cos |z| = sin(|z| + pi/2)

"""Every kernel of kernel_math: accurate to a few ulp, IEEE at the edges, vectorized, in both dtypes.

The reference is NumPy in long double (x86's 80-bit format, 11 more bits than float64), so the
float64 kernels are measured against something more exact than themselves.
"""

import re

import numba
import numpy as np
import pytest

from symlstm.backends.numba.kernel_math import PRIMITIVE_KERNELS

L = np.longdouble
EXTENDED = np.finfo(L).eps < np.finfo(np.float64).eps / 1000
GELU_LINEAR = 2 * np.sqrt(L(2) / L(np.pi))
GELU_CUBIC = GELU_LINEAR * L("0.044715")


def sigmoid(v):
    return 1 / (1 + np.exp(-v))


def gelu_v(z):
    return z * (GELU_LINEAR + GELU_CUBIC * z * z)


def limits(values, z, below, above):
    """``values`` with the limits at z = -inf and +inf (where the formula gives inf * 0)."""
    return np.where(z == -np.inf, below, np.where(z == np.inf, above, values))


def silu_slope_terms(z):
    """silu' = s + z s (1 - s), s = sigmoid(z), as its two terms."""
    return sigmoid(z), z * sigmoid(z) * sigmoid(-z)


def gelu_slope_terms(z):
    """gelu' = s + z s (1 - s) v'(z), s = sigmoid(v(z)), as its two terms."""
    s = sigmoid(gelu_v(z))
    return s, z * s * sigmoid(-gelu_v(z)) * (GELU_LINEAR + 3 * GELU_CUBIC * z * z)


def silu_slope(z):
    return limits(sum(silu_slope_terms(z)), z, 0, 1)


def gelu_slope(z):
    return limits(sum(gelu_slope_terms(z)), z, 0, 1)


def term_sizes(terms):
    return sum(np.abs(t) for t in terms)


def softplus(z):
    return np.logaddexp(L(0), z)


rng = np.random.default_rng(0)
WIDE = np.concatenate(
    [np.linspace(-760, 720, 100001), rng.standard_normal(50000) * 5, rng.standard_normal(5000) * 1e-3]
)
POSITIVE = np.concatenate([np.logspace(-323, 308, 100001), np.linspace(0.5, 2, 50001), np.abs(WIDE[-55000:])])
ANGLES = np.concatenate(
    [np.linspace(-20, 20, 100001), rng.uniform(-(2.0**30), 2.0**30, 50000), np.arange(-400, 400) * np.pi / 4]
)

#: name -> (reference on long doubles, argument grid, worst error allowed in units of the dtype's
#: epsilon, with some room over the worst measured, float64 / float32, the larger of plain and
#: {"contract"}: exp 0.77 / 0.78, tanh 1.2 / 2.8, sigmoid 1.0 / 1.0, softplus 1.7 / 1.6,
#: logsigmoid 1.5 / 1.7, log 0.68 / 0.66, sqrt 0.5 / 0.5, elu 1.8 / 1.8, leaky_relu 0.56 / 0.68,
#: silu 1.2 / 1.2, gelu 1.4 / 1.4, sin 1.3 / 1.1 and cos 1.3 / 1.1 (for |z| <= 2^30), softsign
#: 0.99 / 0.98, hard_sigmoid 0.75 / 0.75, one_minus_exp 1.8 / 1.9, silu_slope 2.4 / 2.1,
#: gelu_slope 1.3 / 1.3, hard_sigmoid_slope 0.25 / 0.25 (1/6 rounded); abs, relu, positive, sign 0)
CASES = {
    "exp": (np.exp, WIDE, 1),
    "tanh": (np.tanh, WIDE, 4),
    "sigmoid": (sigmoid, WIDE, 1.5),
    "relu": (lambda z: np.maximum(z, 0), WIDE, 0),
    "softsign": (lambda z: z / (1 + np.abs(z)), WIDE, 1.5),
    "hard_sigmoid": (lambda z: np.clip(z + 3, 0, 6) / 6, WIDE, 1),
    "softplus": (softplus, WIDE, 2),
    "logsigmoid": (lambda z: -softplus(-z), WIDE, 2.5),
    "log": (np.log, POSITIVE, 1),
    "sqrt": (np.sqrt, POSITIVE, 0.5),
    "abs": (np.abs, WIDE, 0),
    "elu": (lambda z: np.where(z > 0, z, np.expm1(np.minimum(z, 0))), WIDE, 2.5),
    "leaky_relu": (lambda z: np.where(z > 0, z, L("0.01") * z), WIDE, 1),
    "silu": (lambda z: z * sigmoid(z), WIDE, 1.5),
    "gelu": (lambda z: z * sigmoid(gelu_v(z)), WIDE, 2),
    "sin": (np.sin, ANGLES, 2),
    "cos": (np.cos, ANGLES, 2),
    "positive": (lambda z: (z > 0).astype(L), WIDE, 0),
    "hard_sigmoid_slope": (lambda z: np.where((z > 0) & (z < 1), 1 / L(6), 0), np.linspace(-1, 2, 3001), 0.5),
    "sign": (lambda z: np.where(z > 0, 1, np.where(z < 0, -1, 0)).astype(L), WIDE, 0),  # sgn(NaN) = 0
    "one_minus_exp": (lambda z: -np.expm1(z), WIDE, 2.5),
    "silu_slope": (silu_slope, WIDE, 3),
    "gelu_slope": (gelu_slope, WIDE, 2),
}
#: error scales other than |exact|, with the measured worst errors (float64 / float32) in them:
#: gelu(z) = z sigmoid(v) rounds v = z (c1 + c3 z^2) first, which any evaluation in the working
#: precision does (PyTorch's too): e^-|v| then carries |v| times v's relative error, up to ~745
#: (measured: 528 / 87 eps relative to |gelu|, 1.4 / 1.4 relative to |gelu| (1 + |v|)). silu' and
#: gelu' are sums s + z s (1 - s) dv/dz of terms of both signs that cancel at their zeros (z = -1.28
#: and -0.75): their error is measured against the sum of the terms' sizes (times gelu's 1 + |v|).
SCALES = {
    "gelu": lambda z, exact: np.abs(exact) * (1 + np.abs(gelu_v(z))),
    "silu_slope": lambda z, exact: term_sizes(silu_slope_terms(z)),
    "gelu_slope": lambda z, exact: (1 + np.abs(gelu_v(z))) * term_sizes(gelu_slope_terms(z)),
}
#: where the accuracy above is claimed, if not everywhere (kernel_math_trig documents the rest)
ACCURATE = {"sin": lambda z: np.abs(z) <= 2**30, "cos": lambda z: np.abs(z) <= 2**30}
SPECIALS = [np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0, 1e-30, -1e-30, 1e-8, -1e-8, 0.6249, 0.6251, 20.0, -20.0]
SPECIALS += [88.7, -87.0, 709.7, 709.8, -745.0, -744.0, 1e300, -1e300, 5e-324, 1e-310, 3.0, -3.0, np.pi / 2]
#: functions of two arguments, with their NumPy reference (PyTorch's semantics)
BINARY = {
    "maximum": np.maximum,
    "minimum": np.minimum,
    "max_slope": lambda a, b: np.where(a < b, 0.0, np.where(a == b, 0.5, 1.0)),
}
#: a libm function named in the machine code (a call keeps a loop scalar)
LIBM = re.compile(r"\$(exp|expm1|log|log1p|tanh|sin|cos|sincos|pow)f?\b")
#: a packed operation other than a move, on AVX registers
PACKED = re.compile(r"^\s+v(?!mov|broadcast|extract|insert|perm)\w*p[sd]\s.*%[yz]mm", re.M)


def test_every_kernel_is_tested_here():
    assert set(CASES) | set(BINARY) == set(PRIMITIVE_KERNELS)


def _elementwise(f, fastmath, arity=1):
    if arity == 1:

        @numba.njit(error_model="numpy", fastmath=fastmath)
        def apply(a, out):
            for j in range(a.shape[0]):
                out[j] = f(a[j])

    else:

        @numba.njit(error_model="numpy", fastmath=fastmath)
        def apply(a, b, out):
            for j in range(a.shape[0]):
                out[j] = f(a[j], b[j])

    return apply


def assert_vectorized(apply):
    asm = apply.inspect_asm(apply.signatures[0])
    assert PACKED.search(asm), asm[-3000:]
    assert not LIBM.search(asm), LIBM.search(asm).group()


def worst_error(name, x, out, dtype):
    """The kernel's largest error on the arguments x, in units of the dtype's epsilon (where the
    reference is a normal number of the dtype)."""
    finfo = np.finfo(dtype)
    scale = SCALES.get(name, lambda z, exact: np.abs(exact))
    with np.errstate(all="ignore"):
        z = x.astype(L)
        exact = CASES[name][0](z)
        normal = np.isfinite(exact) & (np.abs(exact) > finfo.tiny * 2**30) & (np.abs(exact) < finfo.max)
        normal &= ACCURATE.get(name, np.isfinite)(z)
        err = np.abs(out[normal] - exact[normal]) / scale(z[normal], exact[normal])
    return float(err.max() / finfo.eps) if err.size else 0.0


# the kernels compile with fastmath={"contract"} (fused multiply-adds); check both ways
@pytest.mark.parametrize("fastmath", [set(), {"contract"}], ids=["plain", "contract"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", sorted(CASES))
def test_accuracy_edges_and_vectorization(name, dtype, fastmath):
    if dtype == np.float64 and not EXTENDED:
        pytest.skip("needs NumPy's long double to be wider than float64 (x86)")
    reference, grid, max_eps = CASES[name]
    apply = _elementwise(PRIMITIVE_KERNELS[name], fastmath)
    with np.errstate(over="ignore"):
        x = grid.astype(dtype)  # the largest float64 arguments are inf in float32
    out = np.empty_like(x)
    apply(x, out)
    assert worst_error(name, x, out, dtype) <= max_eps, (name, worst_error(name, x, out, dtype))

    with np.errstate(over="ignore"):
        edges = np.array(SPECIALS + [np.nan], dtype)  # 1e300 is inf in float32
    got = np.empty_like(edges)
    apply(edges, got)
    assert worst_error(name, edges, got, dtype) <= max_eps
    # the limits and the domain's edges exactly: 0, +-1, +-inf, NaN (log(0) = -inf, sqrt(-1) = NaN...)
    with np.errstate(all="ignore"):
        expected = reference(edges.astype(L)).astype(dtype)
    exact_edges = ~np.isfinite(expected) | (np.abs(expected) == 1) | (expected == 0)
    np.testing.assert_array_equal(got[exact_edges], expected[exact_edges])
    assert np.isnan(got[-1]) or name in ("positive", "hard_sigmoid_slope", "sign"), "NaN propagates"

    # no libm call: the loop runs on packed vectors
    assert_vectorized(apply)


def test_domain_edges_of_log_and_sqrt():
    """The IEEE answers outside and at the edge of the domains, in both dtypes."""
    for dtype in (np.float64, np.float32):
        x = np.array([0.0, -0.0, -1.0, -np.inf, np.inf, np.nan, np.finfo(dtype).smallest_subnormal], dtype)
        for name, expected in (
            ("log", [-np.inf, -np.inf, np.nan, np.nan, np.inf, np.nan, np.log(L(x[-1]))]),
            ("sqrt", [0.0, -0.0, np.nan, np.nan, np.inf, np.nan, np.sqrt(L(x[-1]))]),
        ):
            got = np.empty_like(x)
            _elementwise(PRIMITIVE_KERNELS[name], {"contract"})(x, got)
            np.testing.assert_array_equal(got, np.array(expected, dtype), err_msg=f"{name} {dtype.__name__}")
            assert name != "sqrt" or np.signbit(got[1])  # sqrt(-0) = -0


@pytest.mark.parametrize("fastmath", [set(), {"contract"}], ids=["plain", "contract"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", sorted(BINARY))
def test_functions_of_two_arguments(name, dtype, fastmath):
    """maximum, minimum and max_slope exactly as PyTorch: NaN wins, a tie's slope is 1/2."""
    values = np.array([-np.inf, -2.5, -1.0, -0.0, 0.0, 1e-300, 1.0, 3.0, np.inf, np.nan], dtype)
    a, b = (v.ravel() for v in np.meshgrid(values, values))
    apply = _elementwise(PRIMITIVE_KERNELS[name], fastmath, arity=2)
    got = np.empty_like(a)
    apply(a, b, got)
    with np.errstate(invalid="ignore"):
        np.testing.assert_array_equal(got, BINARY[name](a, b).astype(dtype))
    assert_vectorized(apply)


def test_sin_and_cos_beyond_their_accurate_range_stay_bounded():
    """Past 2^30 the reduction loses precision (documented in kernel_math_trig): the error is about
    1e-4 up to 1e12, and the values stay within [-1, 1] up to the largest floats."""
    x = np.concatenate([np.logspace(9.5, 308, 2000), -np.logspace(9.5, 308, 2000)])
    for name, reference in (("sin", np.sin), ("cos", np.cos)):
        got = np.empty_like(x)
        _elementwise(PRIMITIVE_KERNELS[name], {"contract"})(x, got)
        assert np.all(np.abs(got) <= 1), name
        near = np.abs(x) < 1e12
        assert np.abs(got[near] - reference(x[near])).max() < 1e-3, name

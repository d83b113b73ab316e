"""The kernels' own exp, tanh and sigmoid: accurate to a few ulp, IEEE at the edges, vectorized."""

import re

import numba
import numpy as np
import pytest

from symlstm.backends.numba.kernel_math import exp, sigmoid, tanh

FUNCTIONS = {"exp": (exp, np.exp), "tanh": (tanh, np.tanh), "sigmoid": (sigmoid, lambda v: 1 / (1 + np.exp(-v)))}
#: worst error measured in units of the dtype's epsilon, with some room (measured: 1.0 / 1.8 / 1.6
#: in float64 and 0.8 / 2.7 / 1.1 in float32)
MAX_EPS = {"exp": 2, "tanh": 4, "sigmoid": 3}
SPECIALS = [
    np.inf,
    -np.inf,
    0.0,
    -0.0,
    1e-30,
    -1e-30,
    1e-8,
    -1e-8,
    0.6249,
    0.6251,
    20.0,
    -20.0,
    88.7,
    -87.0,
    709.7,
    709.8,
    -745.0,
    -744.0,
    1e300,
    -1e300,
]


def _elementwise(f, fastmath):
    @numba.njit(error_model="numpy", fastmath=fastmath)
    def apply(a, out):
        for j in range(a.shape[0]):
            out[j] = f(a[j])

    return apply


# the kernels compile with fastmath={"contract"} (fused multiply-adds); check both ways
@pytest.mark.parametrize("fastmath", [set(), {"contract"}], ids=["plain", "contract"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_accuracy_edges_and_vectorization(name, dtype, fastmath):
    f, reference = FUNCTIONS[name]
    rng = np.random.default_rng(0)
    x = np.concatenate(
        [np.linspace(-760, 720, 100001), rng.standard_normal(50000) * 5, rng.standard_normal(5000) * 1e-3]
    ).astype(dtype)
    apply = _elementwise(f, fastmath)
    out = np.empty_like(x)
    apply(x, out)
    with np.errstate(all="ignore"):
        exact = reference(x.astype(np.float64))
        finfo = np.finfo(dtype)
        normal = np.isfinite(exact) & (np.abs(exact) > finfo.tiny * 2**30) & (np.abs(exact) < finfo.max)
        err = np.abs(out[normal] - exact[normal]) / np.abs(exact[normal])
        assert err.max() <= MAX_EPS[name] * finfo.eps, (name, err.max() / finfo.eps)

        edges = np.array(SPECIALS + [np.nan], dtype)
        got = np.empty_like(edges)
        apply(edges, got)
        expected = reference(edges.astype(np.float64)).astype(dtype)
    # the limits exactly (0, +-1, inf, NaN), the rest to the same few ulp
    np.testing.assert_allclose(got, expected, rtol=MAX_EPS[name] * finfo.eps, atol=finfo.tiny * 2**30)
    assert np.isnan(got[-1])
    exact_edges = ~np.isfinite(expected) | (np.abs(expected) == 1) | (expected == 0)
    np.testing.assert_array_equal(got[exact_edges], expected[exact_edges])

    # no libm call: the loop runs on packed vectors
    suffix = "pd" if dtype == np.float64 else "ps"
    asm = apply.inspect_asm(apply.signatures[0])
    assert len(re.findall(rf"\bv(?:mul|fmadd\w*){suffix}\s", asm)) > 0, asm[-3000:]
    assert not re.search(r"call\w*\s+.*\b(exp|tanh)f?\b", asm)

"""The step GEMM of the kernels (``kernel_math.step_gemm``): the product, whichever way it is
computed: the loop for one row by a small matrix, OpenBLAS whole or in blocks of rows."""

import numba
import numpy as np
import pytest

from symlstm.backends.numba.kernel_math import SMALL_GEMM_ROWS, TINY_GEMM_ENTRIES, row_times_matrix, step_gemm


@numba.njit(fastmath={"contract"})
def _step_gemm(a, b, out):
    step_gemm(a, b, out)


@numba.njit(fastmath={"contract"})
def _row_times_matrix(a, b, out):
    row_times_matrix(a, b, out)


def _check(product, a, b):
    """``product`` equals ``a @ b`` to a few ulp of the sum of the terms' magnitudes (the order of
    the sum is the one thing the ways may differ in)."""
    exact = a.astype(np.longdouble) @ b.astype(np.longdouble)
    scale = np.abs(a).astype(np.longdouble) @ np.abs(b).astype(np.longdouble)
    eps = np.finfo(a.dtype).eps
    assert np.all(np.abs(product - exact) <= 4 * a.shape[-1] * eps * scale + np.finfo(a.dtype).tiny)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    ("rows", "K", "N"),
    [
        (1, 1, 1),  # fewer rows of b than one group of four
        (1, 3, 5),
        (1, 7, 16),  # a group of four and three left over
        (1, 16, 128),
        (1, 32, 16),
        (1, 64, TINY_GEMM_ENTRIES // 64),  # the largest the loop takes
        (1, 65, TINY_GEMM_ENTRIES // 64),  # one row too many: BLAS
        (3, 16, 32),  # a few rows: BLAS whole
        (2 * SMALL_GEMM_ROWS + 3, 32, 64),  # many: BLAS in blocks of rows, the last one short
    ],
)
def test_step_gemm_is_the_product(rows, K, N, dtype, rng):
    a = rng.standard_normal((rows, K)).astype(dtype)
    b = rng.standard_normal((K, N)).astype(dtype)
    out = np.full((rows, N), np.nan, dtype)  # every entry must be written
    _step_gemm(a, b, out)
    _check(out, a, b)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_row_times_matrix_overwrites_and_reads_views(dtype, rng):
    """Into a row of a bigger array (what the kernels pass), from a row view, leaving the rest."""
    a = rng.standard_normal((3, 10)).astype(dtype)
    b = rng.standard_normal((10, 6)).astype(dtype)
    out = np.full((2, 6), 7, dtype)
    _row_times_matrix(a[1], b, out[1])
    _check(out[1], a[1], b)
    assert np.all(out[0] == 7)

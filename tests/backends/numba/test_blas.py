"""The kernels' BLAS (``symlstm.backends.numba.blas``): ``gemm`` computes ``a @ b`` for every layout
the kernels pass (C-ordered, row or column slices, transposes) and refuses the rest; the
library is scipy-openblas32's, in the version the project requires; a cached kernel that calls it
is linked again, by name, in a new process."""

import os
import subprocess
import sys
import textwrap

import numba
import numpy as np
import pytest
from threadpoolctl import threadpool_info

from symlstm.backends.numba import blas
from symlstm.backends.numba.blas import gemm


@numba.njit
def _gemm(a, b, out):
    gemm(a, b, out)


def _close(product, a, b):
    """``product`` is ``a @ b`` to a few ulp of the sum of the terms' magnitudes."""
    exact = a.astype(np.longdouble) @ b.astype(np.longdouble)
    scale = np.abs(a).astype(np.longdouble) @ np.abs(b).astype(np.longdouble)
    eps = np.finfo(a.dtype).eps
    return np.all(np.abs(product - exact) <= 4 * max(a.shape[1], 1) * eps * scale)


def _matrix(rng, shape, dtype, layout):
    """A matrix of ``shape`` in ``layout``: "C", "F" (the transpose of a C-ordered one), "rows" (a
    slice of a taller C-ordered one's rows), "cols" (of a wider one's columns), "strided"."""
    rows, cols = shape
    if layout == "C":
        return rng.standard_normal(shape).astype(dtype)
    if layout == "F":
        return rng.standard_normal((cols, rows)).astype(dtype).T
    if layout == "rows":
        return rng.standard_normal((rows + 5, cols)).astype(dtype)[2 : 2 + rows]
    if layout == "cols":
        return rng.standard_normal((rows, cols + 3)).astype(dtype)[:, 1 : 1 + cols]
    assert layout == "strided"
    return rng.standard_normal((2 * rows, 2 * cols)).astype(dtype)[::2, ::2]


LAYOUTS = ["C", "F", "rows", "cols"]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("a_layout", LAYOUTS)
@pytest.mark.parametrize("b_layout", LAYOUTS)
def test_every_layout(dtype, a_layout, b_layout):
    rng = np.random.default_rng(LAYOUTS.index(a_layout) * 7 + LAYOUTS.index(b_layout))
    for m, k, n in [(5, 7, 3), (1, 9, 4), (6, 1, 2), (8, 16, 1), (33, 64, 130)]:
        a = _matrix(rng, (m, k), dtype, a_layout)
        b = _matrix(rng, (k, n), dtype, b_layout)
        out = np.full((m, n), np.nan, dtype)
        _gemm(a, b, out)
        assert _close(out, a, b), (m, k, n)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_into_a_slice_of_rows_and_a_transposed_result(dtype):
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((4, 6)).astype(dtype), rng.standard_normal((6, 5)).astype(dtype)
    whole = np.zeros((9, 5), dtype)
    _gemm(a, b, whole[3:7])
    assert _close(whole[3:7], a, b) and not whole[:3].any() and not whole[7:].any()
    transposed = np.full((5, 4), np.nan, dtype).T  # not row-major: np.dot's way
    _gemm(a, b, transposed)
    assert _close(transposed, a, b)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_empty_products(dtype):
    """k = 0 gives zeros (not what was in ``out``); m = 0 or n = 0 writes nothing."""
    out = np.full((3, 4), 7.0, dtype)
    _gemm(np.empty((3, 0), dtype), np.empty((0, 4), dtype), out)
    assert not out.any()
    _gemm(np.empty((0, 5), dtype), np.ones((5, 4), dtype), np.empty((0, 4), dtype))
    _gemm(np.ones((3, 5), dtype), np.empty((5, 0), dtype), np.empty((3, 0), dtype))


@pytest.mark.parametrize("which", ["a", "b", "out"])
def test_a_matrix_with_neither_rows_nor_columns_contiguous_is_refused(which):
    rng = np.random.default_rng(3)
    arrays = {"a": rng.standard_normal((4, 6)), "b": rng.standard_normal((6, 5)), "out": np.empty((4, 5))}
    arrays[which] = _matrix(rng, arrays[which].shape, np.float64, "strided")
    with pytest.raises(ValueError, match="contiguous rows or columns"):
        _gemm(arrays["a"], arrays["b"], arrays["out"])


def test_shapes_that_do_not_multiply_are_refused():
    with pytest.raises(ValueError, match="do not make out = a @ b"):
        _gemm(np.ones((3, 4)), np.ones((5, 2)), np.empty((3, 2)))
    with pytest.raises(ValueError, match="do not make out = a @ b"):
        _gemm(np.ones((3, 4)), np.ones((4, 2)), np.empty((3, 3)))


def test_other_types_go_to_numpy():
    rng = np.random.default_rng(2)
    a = rng.standard_normal((3, 4)) + 1j * rng.standard_normal((3, 4))
    b = rng.standard_normal((4, 2)) + 1j * rng.standard_normal((4, 2))
    out = np.empty((3, 2), complex)
    _gemm(a, b, out)
    np.testing.assert_allclose(out, a @ b, rtol=1e-14)


def test_the_library_is_the_required_openblas():
    blas.load()
    ours = [i for i in threadpool_info() if i["filepath"] == blas.library_path()]
    assert len(ours) == 1, "threadpoolctl must see the kernels' BLAS to hold its threads"
    version = tuple(int(part) for part in ours[0]["version"].split(".")[:3])
    assert version >= (0, 3, 31), ours[0]


def test_a_cached_kernel_links_again_in_a_new_process(tmp_path):
    """The kernel's cache holds the routine's name; each process registers its own address."""
    (tmp_path / "product.py").write_text(
        textwrap.dedent(
            """
            import numba
            from symlstm.backends.numba.blas import gemm

            @numba.njit(cache=True)
            def product(a, b, out):
                gemm(a, b, out)
            """
        )
    )
    script = textwrap.dedent(
        """
        import numpy as np
        from product import product
        a, b = np.arange(6.0).reshape(2, 3), np.arange(12.0).reshape(3, 4)
        out = np.empty((2, 4))
        product(a, b, out)
        assert (out == a @ b).all(), out
        print(sum(product.stats.cache_hits.values()))
        """
    )
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache"), "PYTHONPATH": str(tmp_path)}
    runs = [
        subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
        ).stdout.split()
        for _ in range(2)
    ]
    assert runs == [["0"], ["1"]]

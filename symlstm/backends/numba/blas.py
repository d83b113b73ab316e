"""The BLAS the kernels' matrix products call: OpenBLAS from the ``scipy-openblas32`` wheel.

Numba's ``np.dot`` calls SciPy's BLAS, whatever OpenBLAS SciPy's wheel was built with (0.3.30 for
SciPy 1.17). OpenBLAS 0.3.31 made SGEMM with few rows faster on AVX-512 machines, which is what a
step of a recurrence multiplies: one thread, float32, (rows, H) @ (H, 4H), 0.3.34 / 0.3.30 GFLOP/s:
H = 256: 53 / 34 at 8 rows, 102 / 77 at 32, 124 / 105 at 64; H = 512: 93 / 69 at 32 rows; H = 128:
101 / 87 at 32 rows; H = 64 and float64 unchanged (Intel Xeon, AVX-512, 2026-12-02). So the
kernels call the library of the wheel SciPy and NumPy are built from (the ``scipy-openblas32``
package), in the version the project's dependencies require.

Its ``cblas_sgemm``/``cblas_dgemm`` are registered with LLVM under names of our own
(``symlstm_sgemm``, ``symlstm_dgemm``) when this module is imported, and the kernels call them by
those names, as Numba's own ``np.dot`` calls its helper library: a cached kernel holds the name,
not an address, and is linked again in every process. The library is loaded privately
(``RTLD_LOCAL``), so SciPy's calls still reach SciPy's copy. threadpoolctl sees it like any loaded
OpenBLAS (``parallel`` holds it to one thread in a split call).

``gemm(a, b, out)`` is ``out[...] = a @ b`` for float32 or float64 matrices whose rows or columns
are contiguous (a C-ordered matrix, a slice of its rows or columns, or the transpose of either),
the layouts the kernels multiply; another layout raises ValueError (copying it instead, or falling
back to ``np.dot``, made every kernel's cold compile 1.5-2.5x longer for a case that never occurs),
as do shapes that do not multiply and dimensions beyond CBLAS's C ints (CBLAS would read out of
bounds). Other types (complex) go to ``np.dot``.
"""

from __future__ import annotations

import ctypes
import functools
import os

import llvmlite.binding as llvm
import numpy as np
from numba import njit, types
from numba.extending import overload

#: our name for a routine -> its name in scipy-openblas32's library
ROUTINES = {"symlstm_sgemm": "scipy_cblas_sgemm", "symlstm_dgemm": "scipy_cblas_dgemm"}
# CBLAS's enums
_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112
#: CBLAS's sizes are C ints
_INT_MAX = 2**31 - 1
#: the endings of a shared library (Linux, macOS, Windows)
_SHARED = (".so", ".dylib", ".dll")


def _gemm_type(real):
    """CBLAS's ?gemm: order, transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc."""
    i = types.intc
    return types.void(i, i, i, i, i, i, real, types.voidptr, i, types.voidptr, i, real, types.voidptr, i)


_sgemm = types.ExternalFunction("symlstm_sgemm", _gemm_type(types.float32))
_dgemm = types.ExternalFunction("symlstm_dgemm", _gemm_type(types.float64))


@functools.cache
def library_path() -> str:
    """The shared library of the installed scipy-openblas32 wheel."""
    try:
        import scipy_openblas32
    except ImportError:
        raise ImportError(
            "symlstm's kernels call OpenBLAS from the scipy-openblas32 package, which is missing: "
            "pip install 'scipy-openblas32>=0.3.31' (or reinstall symlstm, which requires it)"
        ) from None
    lib_dir = scipy_openblas32.get_lib_dir()
    names = [n for n in os.listdir(lib_dir) if n.startswith("libscipy_openblas") and n.endswith(_SHARED)]
    return os.path.join(lib_dir, sorted(names)[0])


@functools.cache
def load() -> ctypes.CDLL:
    """Load the library and register its routines with LLVM under our names (once per process;
    before any kernel that calls them is compiled or loaded from the cache)."""
    library = ctypes.CDLL(library_path())
    for ours, theirs in ROUTINES.items():
        llvm.add_symbol(ours, ctypes.cast(getattr(library, theirs), ctypes.c_void_p).value)
    return library


load()


def gemm(a, b, out):
    """``out[...] = a @ b``."""
    np.matmul(a, b, out=out)


@njit(cache=True)
def _operand(m):
    """(transposed, leading dimension) of a matrix for row-major CBLAS; (False, 0) if neither its
    rows nor its columns are contiguous."""
    item = m.itemsize
    rows, cols = m.shape
    if rows == 0 or cols == 0:  # NumPy gives an empty array strides of 0
        return False, max(cols, 1)
    if m.strides[1] == item or cols == 1:
        return False, max(m.strides[0] // item, cols, 1)
    if m.strides[0] == item or rows == 1:
        return True, max(m.strides[1] // item, rows, 1)
    return False, 0


def _cblas_gemm(a, a_t, lda, b, b_t, ldb, out, ldc):
    """CBLAS's row-major ?gemm for the type of the arrays: ``out = a @ b``, each operand read
    through its transpose where its flag says so (``_operand``)."""


@overload(_cblas_gemm)
def _cblas_gemm_of_type(a, a_t, lda, b, b_t, ldb, out, ldc):
    routine = {types.float32: _sgemm, types.float64: _dgemm}[a.dtype]

    def cblas_gemm(a, a_t, lda, b, b_t, ldb, out, ldc):
        (m, k), n = a.shape, out.shape[1]
        transa, transb = _TRANS if a_t else _NO_TRANS, _TRANS if b_t else _NO_TRANS
        routine(_ROW_MAJOR, transa, transb, m, n, k, 1.0, a.ctypes, lda, b.ctypes, ldb, 0.0, out.ctypes, ldc)

    return cblas_gemm


@overload(gemm)
def _gemm(a, b, out):
    if not (a.dtype == b.dtype == out.dtype and a.ndim == b.ndim == out.ndim == 2):
        return None
    if a.dtype not in (types.float32, types.float64):
        return lambda a, b, out: np.dot(a, b, out)

    def gemm_impl(a, b, out):
        if a.shape[1] != b.shape[0] or out.shape[0] != a.shape[0] or out.shape[1] != b.shape[1]:
            raise ValueError("gemm: the shapes of a, b and out do not make out = a @ b")
        (a_t, lda), (b_t, ldb), (out_t, ldc) = _operand(a), _operand(b), _operand(out)
        if lda == 0 or ldb == 0 or ldc == 0:
            raise ValueError("gemm: each matrix needs contiguous rows or columns")
        if max(a.shape[0], a.shape[1], b.shape[1], lda, ldb, ldc) > _INT_MAX:
            raise ValueError("gemm: a dimension of 2**31 or more is beyond CBLAS's int sizes")
        if out.shape[0] == 0 or out.shape[1] == 0:
            return
        if out_t:  # out's columns are contiguous: out.T = b.T @ a.T, row-major
            _cblas_gemm(b.T, not b_t, ldb, a.T, not a_t, lda, out.T, ldc)
        else:
            _cblas_gemm(a, a_t, lda, b, b_t, ldb, out, ldc)

    return gemm_impl

"""Row views without reference counts (``borrowed_row``) and calls shared between the passes of a
loop nest: what the emitted kernels do, checked on their text and by running them."""

import ast
import re

import numba
import numpy as np
import pytest

from symlstm.backends.numba.emit import emit_module
from symlstm.backends.numba.rows import borrowed_row
from symlstm.cells import builtin_spec
from symlstm.ir.derive import derive


@numba.njit
def _fill_and_read(array, t, b, value):
    row = borrowed_row(array, (t, b))
    for j in range(row.shape[0]):
        row[j] += value
    return borrowed_row(array, (t,))[b, 0]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_borrowed_row_is_the_same_view(dtype):
    array = np.arange(2 * 3 * 4, dtype=dtype).reshape(2, 3, 4)
    expected = array.copy()
    expected[1, 2] += 10
    first = _fill_and_read(array, 1, 2, dtype(10))
    np.testing.assert_array_equal(array, expected)
    assert first == expected[1, 2, 0]


def test_a_borrowed_row_needs_fewer_indices_than_axes():
    @numba.njit
    def whole(array):
        return borrowed_row(array, (0, 0))

    with pytest.raises(numba.TypingError):
        whole(np.zeros((2, 2)))


def _kernel_source(cell: str, kernel: str) -> str:
    source = emit_module(derive(builtin_spec(cell)))
    tree = ast.parse(source)
    node = next(f for f in tree.body if isinstance(f, ast.FunctionDef) and f.name == kernel)
    return ast.get_source_segment(source, node) or ""


@pytest.mark.parametrize("cell", ["lstm", "gru", "lnlstm", "slstm"])
@pytest.mark.parametrize("kernel", ["forward_steps", "backward_steps", "infer_steps"])
def test_loop_nests_bind_their_rows_borrowed(cell, kernel):
    """No ``x_row = array[t, b]`` left in a nest: every plain row is borrowed."""
    source = _kernel_source(cell, kernel)
    plain = re.findall(r"^\s+(\w+_row) = (\w+\[[^\[\]:]+\])$", source, re.M)
    assert plain == []
    assert "borrowed_row(" in source


def test_lnlstm_backward_evaluates_its_output_tanh_once():
    """The tanh of the normalised cell state feeds three passes of the backward; it is computed in
    the first and read from a scratch row by the others."""
    source = _kernel_source("lnlstm", "backward_steps")
    assert source.count("tanh(") == 1
    assert re.search(r"tanh_value_scratch\[j\] = tanh_value", source)

"""``borrowed_row``: a row of an array as a view that holds no reference to it.

A view Numba makes with ``seq_c[t, b]`` counts a reference on the array's memory, an atomic
increment when it is made and a decrement when it dies. Numba's pruning removes most of those
pairs, but not where a view outlives a reduction's pass (layer-normalised cells bind ~30 rows per
step and batch row): measured on lnlstm's backward (T, B, H = 100, 16, 64, one thread), 14 % of
the kernel's time was spent in these atomics, and with two threads on one array its counter's
cache line moves between the cores at every step. The generated kernels bind every row view once
per (step, batch row), before the passes over the units, and only read and write through it
within that iteration of the batch-row loop; the array it views is an argument of the kernel (its
caller holds it) or a kernel-local buffer the loop uses at every iteration (alive until the loop
ends). So the view need not own anything.
"""

from __future__ import annotations

from llvmlite import ir
from numba.core import cgutils, types
from numba.core.extending import intrinsic
from numba.np.arrayobj import make_array, populate_array


@intrinsic
def borrowed_row(typingctx, array, index):
    """``array[index]`` for a tuple of integer ``index`` shorter than ``array.ndim``, on a
    C-contiguous array: the same view, without a reference (a null meminfo)."""
    if not isinstance(array, types.Array) or array.layout != "C":
        return None
    if not isinstance(index, types.BaseTuple) or not all(isinstance(i, types.Integer) for i in index):
        return None
    depth = len(index)
    if not 0 < depth < array.ndim:
        return None
    row_type = types.Array(array.dtype, array.ndim - depth, "C")

    def codegen(context, builder, signature, args):
        array_type, index_type = signature.args
        parent = make_array(array_type)(context, builder, args[0])
        shape = cgutils.unpack_tuple(builder, parent.shape, array_type.ndim)
        strides = cgutils.unpack_tuple(builder, parent.strides, array_type.ndim)
        given = cgutils.unpack_tuple(builder, args[1])
        index = [context.cast(builder, i, t, types.intp) for i, t in zip(given, index_type)]
        zeros = [context.get_constant(types.intp, 0)] * (array_type.ndim - depth)
        # the row's first element, computed as Numba computes it for ``array[index]``
        start = cgutils.get_item_pointer2(context, builder, parent.data, shape, strides, "C", index + zeros)
        start = _opaque(builder, start)
        row = make_array(signature.return_type)(context, builder)
        populate_array(
            row,
            data=start,
            shape=shape[depth:],
            strides=strides[depth:],
            itemsize=parent.itemsize,
            meminfo=None,
        )
        return row._getvalue()

    return row_type(array, index), codegen


def _opaque(builder, pointer):
    """``pointer``, through an empty inline-assembly statement: LLVM cannot tell which array it
    points into. Rows of one array that one loop writes (``delta[t, b, 0]``, ``delta[t, b, 1]``)
    are then separate objects to it, each checked for overlap once before the loop, as Numba's own
    views are; seen as offsets into one array at distances only known at run time, the loop fell
    back to its scalar form (slstm's backward: 2.3x slower)."""
    same = ir.InlineAsm(ir.FunctionType(pointer.type, [pointer.type]), "", "=r,0")
    return builder.call(same, [pointer])

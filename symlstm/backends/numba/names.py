"""Every identifier of a generated kernel module, from one ``Namer``.

The namer starts with what the module's code refers to globally (``np``, ``numba``, the
kernel_math functions, Python's keywords and builtins), then gives each IR symbol its own name
where it can (the spec's ``b_i`` stays ``b_i``; a spec vector called ``np`` becomes ``np_2``), and
only then the kernels' own variables: loop indices, row bounds, sizes, buffers, row views,
constants, temporaries. So a spec name can take any role without colliding with any of them.
"""

from __future__ import annotations

from symlstm.backends.numba.kernel_math import PRIMITIVE_KERNELS
from symlstm.ir.names import PYTHON_WORDS, Namer
from symlstm.ir.plan import StoragePlan
from symlstm.lang.sizes import Size

#: what the generated code refers to at module level
MODULE_GLOBALS = frozenset({"np", "numba", "step_gemm", *PRIMITIVE_KERNELS})


class KernelNames:
    def __init__(self, plan: StoragePlan):
        d = plan.d
        self.plan = plan
        self.namer = Namer(PYTHON_WORDS | MODULE_GLOBALS)
        fresh = self.namer.fresh
        #: IR symbol name -> its identifier in the kernels
        self.ident = {name: fresh(name) for name in d.quantities}
        # the kernels' own variables: time step, batch row, unit; the row range; sizes; the dtype
        self.t, self.b, self.j = fresh("t"), fresh("b"), fresh("j")
        self.lo, self.hi, self.rows = fresh("lo"), fresh("hi"), fresh("rows")
        self.T, self.B = fresh("T"), fresh("B")
        self.sizes: dict[Size, str] = {"D": fresh("D"), "H": fresh("H")}
        self.dtype, self.empty = fresh("dtype"), fresh("empty")
        # arrays: the input and its adjoint, dL/dys
        self.x = self.ident[d.input.name]
        self.dx, self.dys = fresh("dx"), fresh("dys")
        self.seq = {s: fresh(f"seq_{s}") for s in d.spec.states}
        self.keep = {name: fresh(f"keep_{name}") for name in plan.stored + plan.kept_products}
        self.proj = {op: fresh(f"proj_{op}") for op in plan.groups}
        self.matrix = {op: fresh(f"M_{op}") for op in plan.groups}
        self.matrix_T = {op: fresh(f"M_{op}_T") for op in plan.groups}
        self.grad_matrix = {op: fresh(f"grad_M_{op}") for op in plan.groups}
        self.grad = {v: fresh(f"grad_{v}") for v in d.spec.vectors}
        self.adjoint_buffer = {b.operands: fresh("delta_" + "_".join(b.operands)) for b in plan.buffers}
        self.crossing = {name: fresh(f"buf_{name}") for name in plan.forward_crossing + plan.backward_crossing}
        self._rows: dict[str, str] = {}

    def size(self, size: Size) -> str:
        return self.sizes[size] if isinstance(size, str) else str(size)

    def buffer_of(self, operand: str) -> str:
        return self.adjoint_buffer[self.plan.buffer_of(operand).operands]

    def row(self, key: str) -> str:
        """The 1-d row view that a loop over units reads or writes for ``key`` (made once)."""
        if key not in self._rows:
            self._rows[key] = self.namer.fresh(f"{self.ident.get(key, key)}_row")
        return self._rows[key]

    def temporaries(self):
        """Fresh names ``tmp0, tmp1, ...`` for one block's CSE temporaries (locals of that block)."""
        return self.namer.child().numbered("tmp")

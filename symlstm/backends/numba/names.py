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
MODULE_GLOBALS = frozenset({"np", "numba", "gemm", "step_gemm", "unit_sum", "borrowed_row", *PRIMITIVE_KERNELS})


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
        #: (B,) the number of steps of each batch row: a row's later steps leave it as it is
        self.lengths = fresh("lengths")
        self.sizes: dict[Size, str] = {size: fresh(size) for size in d.spec.size_names}
        self.dtype, self.empty = fresh("dtype"), fresh("empty")
        # arrays: the input and its adjoint, dL/dys
        self.x = self.ident[d.input.name]
        self.dx, self.dys = fresh("dx"), fresh("dys")
        #: backward_gradients fills dx only when this is true (no one may want it: a first layer's input)
        self.with_dx = fresh("with_dx")
        self.seq = {s: fresh(f"seq_{s}") for s in d.spec.states}
        #: the per-step arrays the step kernels read elementwise: x (where it is used so) and the
        #: extra inputs, name -> identifier
        self.step_inputs = {name: self.ident[name] for name in step_input_names(d)}
        self.dx_direct = fresh("dx_direct")
        self.keep = {name: fresh(f"keep_{name}") for name in plan.stored + plan.kept_products}
        self.proj = {op: fresh(f"proj_{op}") for op in plan.groups}
        self.matrix = {op: fresh(f"M_{op}") for op in plan.groups}
        self.matrix_T = {op: fresh(f"M_{op}_T") for op in plan.groups}
        self.grad_matrix = {op: fresh(f"grad_M_{op}") for op in plan.groups}
        self.grad = {v: fresh(f"grad_{v}") for v in d.spec.vectors}
        self.adjoint_buffer = {b.operands: fresh("delta_" + "_".join(b.operands)) for b in plan.buffers}
        crossing = dict.fromkeys(plan.forward_crossing + plan.backward_crossing + plan.inference_crossing)
        self.crossing = {name: fresh(f"buf_{name}") for name in crossing}
        # the inference kernel's: per state last step's and this step's rows; the outputs
        self.pair = {s: fresh(f"state_{s}") for s in d.spec.states}
        self.ys = fresh("ys")
        self._rows: dict[str, str] = {}
        self._values: dict[str, str] = {}

    @property
    def size_args(self) -> list[str]:
        """The sizes every kernel takes, as integers: D, H, then the spec's other size names."""
        return [self.sizes[s] for s in self.plan.d.spec.size_names]

    def size_sum(self, sizes: list[Size]) -> str:
        """The columns of blocks of these sizes side by side: ``H``, ``4 * H``, ``H + 1``."""
        counts: dict[Size, int] = {}
        for size in sizes:
            counts[size] = counts.get(size, 0) + 1
        terms = [self.size(size) if k == 1 else f"{k} * {self.size(size)}" for size, k in counts.items()]
        return " + ".join(terms) or "0"

    def block_layout(self, sizes: list[Size]) -> tuple[str, list[str]]:
        """How the results (or adjoints) of a group's products sit in one buffer: the shape of its
        last axes and the index of each block. Blocks of one size are an axis of their own
        (``n, H``; block k is ``[..., k]``, a row with a unit stride the compiler knows); blocks of
        different sizes lie side by side (``H + 1``; block k is a slice ``[..., H:H + 1]``)."""
        if len(set(sizes)) == 1:
            return f"{len(sizes)}, {self.size(sizes[0])}", [str(k) for k in range(len(sizes))]
        offsets = [self.size_sum(sizes[:k]) for k in range(len(sizes) + 1)]
        return self.size_sum(sizes), [f"{offsets[k]}:{offsets[k + 1]}" for k in range(len(sizes))]

    def product_layout(self, products) -> tuple[str, list[str]]:
        return self.block_layout([self.plan.d.size(p.name) for p in products])

    def size(self, size: Size) -> str:
        return self.sizes[size] if isinstance(size, str) else str(size)

    def buffer_of(self, operand: str) -> str:
        return self.adjoint_buffer[self.plan.buffer_of(operand).operands]

    def row(self, key: str) -> str:
        """The 1-d row view that a loop over units reads or writes for ``key`` (made once)."""
        if key not in self._rows:
            self._rows[key] = self.namer.fresh(f"{self.ident.get(key, key)}_row")
        return self._rows[key]

    def value(self, key: str) -> str:
        """The local holding a size-1 quantity's one number at this step and batch row, read from
        its row once (``dt_t = dt[t, b, 0]``); made once."""
        if key not in self._values:
            self._values[key] = self.namer.fresh(f"{self.ident.get(key, key)}_t")
        return self._values[key]

    def temporaries(self):
        """Fresh names ``tmp0, tmp1, ...`` for one block's CSE temporaries (locals of that block)."""
        return self.namer.child().numbered("tmp")


def step_input_names(d) -> list[str]:
    """x, where the spec uses it elementwise, and the extra per-step inputs."""
    x = d.input.name
    elementwise_x = any(d.input in a.expr.free_symbols for a in d.forward)
    return ([x] if elementwise_x else []) + list(d.spec.inputs)

"""Emitted modules are valid Python for specs at the edges of what the emitter handles (checked on
the source text: no compile), found by reviewing the alias handling of the loop nests."""

import ast

import pytest

from symlstm.backends.numba.emit import emit_module
from symlstm.ir.derive import derive
from symlstm.lang.spec import parse_spec


def module_of(equations: str, states: str = '["h"]') -> ast.Module:
    spec = parse_spec(f'name = "edge"\nstate = {states}\n[equations]\n{equations}\n')
    return ast.parse(emit_module(derive(spec)))


@pytest.mark.parametrize(
    "equations",
    [
        'a = "b1"\nh = "tanh(W @ x + R @ h_prev + a)"',  # an intermediate that is a parameter vector
        'h = "tanh(W @ x + R @ h_prev)"\nq = "U @ h"',  # a value nobody reads, only a product
    ],
)
def test_aliases_emit_valid_python(equations):
    tree = module_of(equations)
    kernels = {f.name for f in tree.body if isinstance(f, ast.FunctionDef)}
    assert {"forward_steps", "backward_steps"} <= kernels


def test_a_state_that_is_a_parameter_vector():
    module_of('c = "u"\nh = "tanh(W @ x + R @ h_prev) * c"', states='["h", "c"]')


def test_the_edge_cells_compute_the_right_gradients():
    import symlstm
    from symlstm.backends import kernel_backend
    from symlstm.runtime import Cell

    spec = parse_spec(
        'name = "edges"\nstate = ["h", "c"]\n[equations]\na = "b1"\nc = "u"\n'
        'h = "tanh(W @ x + R @ h_prev + a) * c"\nq = "U @ h"\n'
    )
    report = symlstm.gradcheck(Cell(spec, kernel_backend().load(spec)), T=3, B=2, D=3, H=4)
    assert report.passed, report.table()


def test_gradient_accumulations_leave_the_wide_passes():
    """lnlstm's parameter gradients read only rows once its passes are done (the adjoints of the
    gates cross passes in scratch rows): each is added in a loop of its own, so the passes write
    fewer rows and need fewer runtime overlap checks before their vector loops."""
    from symlstm.cells import cell

    tree = ast.parse(emit_module(derive(cell("lnlstm").spec)))
    backward = next(f for f in tree.body if isinstance(f, ast.FunctionDef) and f.name == "backward_steps")
    unit_loops = [node for node in ast.walk(backward) if isinstance(node, ast.For) and ast.unparse(node.target) == "j"]

    def added_to(loop: ast.For) -> set[str]:
        return {
            ast.unparse(s.target.value)
            for s in loop.body
            if isinstance(s, ast.AugAssign) and isinstance(s.target, ast.Subscript)
        }

    alone = [loop for loop in unit_loops if len(loop.body) == 1 and added_to(loop)]
    assert {name for loop in alone for name in added_to(loop)} == {f"grad_{v}" for v in cell("lnlstm").spec.vectors}
    assert not any(added_to(loop) for loop in unit_loops if len(loop.body) > 1)


def test_a_size_1_gradient_beside_deferred_accumulations():
    """A learnable scalar's gradient (b_k, size 1) in a nest whose reductions split it into passes:
    it reads a size-1 adjoint as a number, never as a row indexed by the unit (found by the
    property tests when the deferred additions were first merged into the accumulations)."""
    import symlstm
    from symlstm.backends import kernel_backend
    from symlstm.runtime import Cell

    spec = parse_spec(
        'name = "sized"\nstate = ["h"]\n[sizes]\nk = 1\n[equations]\na = "W @ x + R @ h_prev"\n'
        'n = "(a - mean(a)) / (sum((a - mean(a)) ** 2) + 1)"\nk = "sigmoid(w_k @ h_prev + b_k)"\n'
        'h = "(k * sigmoid(g * n + b) + (1 - k) * h_prev)"\n'
    )
    report = symlstm.gradcheck(Cell(spec, kernel_backend().load(spec)), T=3, B=2, D=3, H=4)
    assert report.passed, report.table()


def test_lstmps_projection_gemm_writes_h():
    """The step GEMM writes h's rows itself: no scratch block, no pass that copies it."""
    from symlstm.cells import cell

    source = emit_module(derive(cell("lstmp").spec))
    assert "proj_m" not in source
    assert "step_gemm(keep_m[t, lo:hi], M_m_T, seq_h[t + 1, lo:hi])" in source
    assert "step_gemm(buf_m, M_m_T, state_h[(t + 1) % 2, lo:hi])" in source


def _rows_alone_and_infer_agree(cell, sizes):
    """forward and infer with variable lengths against each row run alone to its length."""
    import numpy as np

    rng = np.random.default_rng(0)
    params = cell.init_params(3, 4, seed=1, **sizes)
    x = rng.standard_normal((4, 3, 3))
    lengths = np.array([4, 1, 3])
    ys, state, _ = cell.forward(x, params, lengths=lengths)
    ys_i, state_i = cell.infer(x, params, lengths=lengths)
    np.testing.assert_array_equal(ys_i, ys)
    for b, L in enumerate(lengths):
        ys_b, state_b, _ = cell.forward(x[:L, b : b + 1], params)
        np.testing.assert_allclose(ys[:L, b : b + 1], ys_b, rtol=0, atol=1e-12)
        for s in state:
            np.testing.assert_array_equal(state_i[s][b], state[s][b])
            np.testing.assert_allclose(state[s][b : b + 1], state_b[s], rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    ("states", "equations", "sizes"),
    [
        # the product is also read by another state, whose derivative keeps it: found in h's row
        (
            '["h", "c", "k"]\n[sizes]\nh = "P"\nk = "P"',
            'c = "tanh(W @ x + R @ h_prev + b) + c_prev"\nh = "U @ c"\nk = "k_prev * sigmoid(U @ c)"',
            {"P": 2},
        ),
        # the GEMM runs before the first pass, which puts the rows past their length back
        ('["h", "c"]', 'c = "tanh(W @ x + R @ h_prev + b)"\nh = "U @ c_prev"', {}),
    ],
)
def test_a_state_that_is_a_step_gemms_whole_result(states, equations, sizes):
    """A state that is one step GEMM's product, as LSTMP's h = W_hr @ m: right gradients, and
    rows past their length get their old state back after the GEMM wrote all rows."""
    import symlstm
    from symlstm.backends import kernel_backend
    from symlstm.runtime import Cell

    spec = parse_spec(f'name = "projected"\nstate = {states}\n[equations]\n{equations}\n')
    projected = Cell(spec, kernel_backend().load(spec))
    report = symlstm.gradcheck(projected, T=3, B=2, D=3, H=4, sizes=sizes)
    assert report.passed, report.table()
    _rows_alone_and_infer_agree(projected, sizes)

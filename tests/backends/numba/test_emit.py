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

"""Sizes in the IR: every quantity carries one, the derivation checks and propagates them."""

import dataclasses

import pytest

import symlstm
from symlstm.cells import builtin_names, builtin_spec
from symlstm.ir.derive import derive
from symlstm.ir.nodes import Kind
from symlstm.lang.spec import parse_spec


@pytest.mark.parametrize("name", builtin_names())
def test_every_quantity_has_the_size_its_meaning_gives(name):
    spec = builtin_spec(name)
    d = derive(spec)
    for symbol_name, q in d.quantities.items():
        if q.kind == Kind.INPUT:
            assert q.size == "D"
        elif q.kind == Kind.PRODUCT:
            assert q.size == spec.matrices[q.base][0]  # the rows of its matrix
        elif q.kind == Kind.OPERAND:
            assert q.size == spec.matrices[q.base][1]  # the columns of the matrix it feeds
        elif q.kind == Kind.DELTA:
            assert q.size == d.size(d.adjoint_of(symbol_name))  # an adjoint has its primal's size
        elif q.kind in (Kind.VALUE, Kind.PREACT, Kind.PREV, Kind.PARAM, Kind.CARRY, Kind.OUTPUT_GRAD):
            assert q.size == spec.sizes[q.base]
        elif q.kind == Kind.DATA:
            assert q.size == spec.inputs[q.base]
        elif q.kind in (Kind.REDUCTION, Kind.SIZE):
            assert q.size == 1  # a sum over units, or a number of units: one number per batch row
        else:
            assert q.kind == Kind.GEMM_T and q.size == d.size(d.operand_of(symbol_name))


def test_param_shapes_come_from_the_sizes():
    spec = builtin_spec("peephole")
    shapes = spec.param_shapes(D=3, H=5)
    assert shapes["W_i"] == (5, 3) and shapes["R_i"] == (5, 5) and shapes["p_i"] == (5,) and shapes["b_o"] == (5,)


def test_a_size_mismatch_names_the_equation_and_both_sizes():
    spec = parse_spec('name = "m"\nstate = ["h"]\n[equations]\nh = "tanh(W @ x + R @ h_prev + b)"\n')
    # a parameter vector of size D added to vectors of size H (the literature issue's [sizes] table
    # will let a spec say this; the derivation already checks it)
    wrong = dataclasses.replace(spec, sizes={**spec.sizes, "b": "D"})
    with pytest.raises(symlstm.SpecError, match=r"equation h = .*size H with one of size D"):
        derive(wrong)

"""Exported models run by onnxruntime give the runtime's outputs and final states: every built-in,
the examples and a user's spec, as a Scan in float32 and float64, and as ONNX's own operators."""

from __future__ import annotations

import numpy as np
import pytest
from onnx_cases import EXAMPLES, B, T, make_case, relative_error, run, session, write_user_spec
from onnxruntime.capi.onnxruntime_pybind11_state import NotImplemented as OrtNotImplemented
from onnxruntime.capi.onnxruntime_pybind11_state import RuntimeException

from symlstm.backends.onnx.native import native_op
from symlstm.cells import builtin_names

CELLS = [*builtin_names(), "zoneout", "decay_rnn", "mixer"]
TOLERANCE = {"float32": 1e-5, "float64": 1e-12}


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    """cell -> its Case, made on first use (one kernel compile each)."""
    user = write_user_spec(tmp_path_factory.mktemp("user"))
    sources = {"zoneout": EXAMPLES / "zoneout.toml", "decay_rnn": EXAMPLES / "decay_rnn.toml", "mixer": user}
    made: dict = {}

    def get(name: str):
        if name not in made:
            made[name] = make_case(sources.get(name, name))
        return made[name]

    return get


@pytest.fixture(scope="module")
def sessions(cases):
    """(cell, dtype, options) -> an onnxruntime session of its export, exported once."""
    made: dict = {}

    def get(name: str, dtype: str, **options):
        key = (name, dtype, tuple(sorted(options.items())))
        if key not in made:
            made[key] = session(cases(name), dtype, **options)
        return made[key]

    return get


def check(outputs, reference, dtype):
    assert len(outputs) == len(reference)
    for got, want in zip(outputs, reference):
        assert got.shape == want.shape and got.dtype == np.dtype(dtype)
        assert relative_error(got, want) < TOLERANCE[dtype]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", CELLS)
def test_scan_matches_the_runtime(name, dtype, cases, sessions):
    case = cases(name)
    feeds = case.problem(T, B)
    check(run(sessions(name, dtype), feeds, dtype), case.reference(feeds), dtype)


@pytest.mark.parametrize("name", ["lstm", "lstmp", "zoneout", "decay_rnn"])
def test_one_model_runs_at_any_length_and_batch(name, cases, sessions):
    case, sess = cases(name), sessions(name, "float64")
    for steps, batch in ((T, B), (2, 7), (1, 1)):
        feeds = case.problem(steps, batch, seed=steps)
        check(run(sess, feeds, "float64"), case.reference(feeds), "float64")


def _native_session(cases, sessions, name, dtype, **options):
    """onnxruntime 1.32 has no float64 kernel for LSTM, GRU or RNN: skip, naming the operator."""
    try:
        return sessions(name, dtype, native=True, **options)
    except OrtNotImplemented as err:
        pytest.skip(
            f"onnxruntime has no {dtype} kernel for {native_op(cases(name).cell.spec).op_type}: {str(err)[:120]}"
        )


def _run_native(cases, sess, feeds, dtype, name):
    try:
        return run(sess, feeds, dtype)
    except RuntimeException as err:
        if "does not support double" not in str(err):
            raise
        pytest.skip(f"onnxruntime's {native_op(cases(name).cell.spec).op_type} does not support {dtype}")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", ["lstm", "np", "peephole", "gru", "rnn", "rnn_relu"])
def test_native_operator_matches_the_runtime(name, dtype, cases, sessions):
    case = cases(name)
    sess = _native_session(cases, sessions, name, dtype)
    feeds = case.problem(T, B)
    check(_run_native(cases, sess, feeds, dtype, name), case.reference(feeds), dtype)


@pytest.mark.parametrize(
    ("name", "native"),
    [("lstm", False), ("gru", False), ("zoneout", False), ("lstmp", False), ("lstm", True), ("gru", True)],
)
def test_lengths(name, native, cases, sessions):
    case = cases(name)
    sess = sessions(name, "float32", native=native, lengths=True)
    for steps, batch in ((T, B), (3, 5)):
        feeds = case.problem(steps, batch, seed=batch, lengths=True)
        assert feeds["lengths"].min() < steps
        check(run(sess, feeds, "float32"), case.reference(feeds), "float32")


def test_native_needs_a_cell_onnx_has(cases):
    from symlstm.onnx import to_model

    case = cases("mgu")
    with pytest.raises(ValueError, match="'mgu' has no ONNX operator"):
        to_model(case.cell, case.params, native=True)

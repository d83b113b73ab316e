"""Writing models: bad parameters are errors naming the array and leave no file; the command line
exports a round trip that onnxruntime runs."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx_cases import B, T, make_case, quiet_options, relative_error, run

from symlstm.onnx import export
from symlstm.tools.cli import main


@pytest.fixture(scope="module")
def lstm():
    return make_case("lstm")


@pytest.fixture(scope="module")
def lstmp():
    return make_case("lstmp")


def _bad(params, **changes):
    out = dict(params)
    for name, value in changes.items():
        if value is None:
            del out[name]
        else:
            out[name] = value
    return out


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"R_f": None}, r"missing \['R_f'\]"),
        ({"W_z": np.zeros((6, 4))}, r"unknown \['W_z'\]"),
        ({"R_g": np.zeros((6, 5))}, r"params\['R_g'\] has shape \(6, 5\); expected \(6, 6\) = \(H, H\)"),
        ({"b_o": np.zeros((6, 1))}, r"params\['b_o'\] has shape \(6, 1\); expected 1 dimensions \(H\)"),
        ({"b_i": np.zeros(7)}, r"params\['b_i'\] has shape \(7,\); expected \(6,\)"),
        ({"W_o": np.array([["a"] * 4] * 6)}, r"params\['W_o'\] has dtype <U1"),
    ],
)
def test_bad_params_name_the_array_and_write_nothing(lstm, tmp_path, change, message):
    path = tmp_path / "model.onnx"
    with pytest.raises(ValueError, match=message):
        export(lstm.cell, _bad(lstm.params, **change), path)
    assert list(tmp_path.iterdir()) == []  # no model, no temporary file


def test_a_failed_export_leaves_an_existing_model_alone(lstm, tmp_path):
    path = export(lstm.cell, lstm.params, tmp_path / "model.onnx")
    before = path.read_bytes()
    with pytest.raises(ValueError, match="R_i"):
        export(lstm.cell, _bad(lstm.params, R_i=np.zeros((2, 2))), path)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["model.onnx"]


def test_sizes_are_read_off_the_params_and_must_agree(lstmp, tmp_path):
    with pytest.raises(ValueError, match=r"params\['R_i'\] has shape \(6, 2\); expected \(6, 3\) = \(H, P\).*P=3"):
        export(lstmp.cell, _bad(lstmp.params, R_i=np.zeros((6, 2))), tmp_path / "m.onnx")
    with pytest.raises(ValueError, match="dtype"):
        export(lstmp.cell, lstmp.params, tmp_path / "m.onnx", dtype="float16")
    assert list(tmp_path.iterdir()) == []


def test_the_command_line_round_trip(lstm, tmp_path, capsys):
    params = tmp_path / "params.npz"
    np.savez(params, **lstm.params)
    out = tmp_path / "lstm.onnx"
    for native in ([], ["--native"]):
        assert main(["export", "lstm", "--params", str(params), "-o", str(out), *native]) == 0
        onnx.checker.check_model(str(out), full_check=True)
        sess = ort.InferenceSession(str(out), quiet_options(), providers=["CPUExecutionProvider"])
        feeds = lstm.problem(T, B)
        for got, want in zip(run(sess, feeds, "float32"), lstm.reference(feeds)):
            assert relative_error(got, want) < 1e-5
    assert main(["export", "lstm", "--params", str(params), "-o", str(out), "--dtype", "float64"]) == 0
    assert onnx.load(str(out)).graph.initializer[0].data_type == onnx.TensorProto.DOUBLE


def test_the_command_line_reports_bad_params(lstm, tmp_path, capsys):
    params = tmp_path / "params.npz"
    np.savez(params, **_bad(lstm.params, W_g=None))
    out = tmp_path / "lstm.onnx"
    assert main(["export", "lstm", "--params", str(params), "-o", str(out)]) == 2
    assert "missing ['W_g']" in capsys.readouterr().err and not out.exists()
    (tmp_path / "junk.npz").write_text("not a zip")
    assert main(["export", "lstm", "--params", str(tmp_path / "junk.npz"), "-o", str(out)]) == 2
    assert "cannot read the parameters" in capsys.readouterr().err and not out.exists()
    assert main(["export", "mgu", "--params", str(params), "-o", str(out), "--native"]) == 2
    assert not out.exists()


def test_a_size_no_parameter_has_is_given_as_sizes(tmp_path):
    spec = tmp_path / "counter.toml"
    spec.write_text(
        'name = "counter"\nstate = ["h", "s"]\n[sizes]\ns = "Q"\n[equations]\n'
        'h = "tanh(W @ x + R @ h_prev + b)"\ns = "0.5 * s_prev + sum(h)"\n'
    )
    params = {"W": np.zeros((4, 3)), "R": np.zeros((4, 4)), "b": np.zeros(4)}
    with pytest.raises(ValueError, match=r"no parameter has the sizes \['Q'\]; give them as sizes="):
        export(spec, params, tmp_path / "counter.onnx")
    model = onnx.load(str(export(spec, params, tmp_path / "counter.onnx", sizes={"Q": 2})))
    assert [d.dim_value for d in model.graph.input[2].type.tensor_type.shape.dim][1:] == [2]

"""The benchmark's worker processes start and time what they are told (the timings themselves
are measured by ``symlstm bench``, never asserted here), for each suite: training on the kernels,
inference, and training inside PyTorch; and each suite's report formats what it measured."""

import pytest

from symlstm.tools import bench, bench_inference, bench_torch
from symlstm.tools.bench import Impl, _run_worker


@pytest.mark.parametrize(
    ("suite", "kind", "cell"),
    [
        (bench, "symlstm", "rnn"),
        (bench, "gemm", "rnn"),
        (bench_inference, "infer", "gru"),
        (bench_inference, "infer-prepared", "gru"),
        (bench_inference, "stream", "gru"),
        (bench_inference, "ort", "gru"),
        (bench_torch, "module", "mut1"),
        (bench_torch, "torch-loop", "mut1"),
        (bench_torch, "loss", "lstm"),
        (bench_torch, "raw-loss", "lstm"),
        (bench_torch, "module-fused", "lstm"),
        (bench_torch, "torch-nn-fused", "lstm"),
    ],
)
def test_a_worker_process_times_a_cell(suite, kind, cell):
    result = _run_worker(Impl(kind, cell, "float64"), [(3, 2, 2, 2)], repeats=2, budget=0.1, module=suite.__name__)
    (timed,) = result.values()
    assert len(timed["times"]) >= 2 and all(t > 0 for t in timed["times"])
    assert timed["first_seconds"] > 0


@pytest.mark.parametrize("suite", [bench, bench_inference, bench_torch])
def test_reports_format_the_sides_they_ran(suite):
    cells, grid = ["lstm", "gru"], [[4, 1, 2, 2], [4, 2, 2, 2]]
    impls = suite.implementations(cells, ["float32"], with_torch=True)
    report = {
        "machine": {"cpu": "test"},
        "unset_env": list(bench.UNSET_ENV),
        "grid": grid,
        "median_seconds": {
            f"{i.label}@{','.join(map(str, s))}": 1e-3 * (k + 1) for k, i in enumerate(impls) for s in grid
        },
        "stored_bytes": {},
        "first_seconds": {f"{i.label}@4,1,2,2": 2.0 for i in impls},
    }
    text = suite.format_report(report, cells, ["float32"])
    for impl in impls:
        assert impl.label in text
    assert "Ratios" in text and "nan" not in text


def test_the_gemm_only_run_takes_the_first_cell_it_can_mimic():
    """mgu's second product multiplies f * h_prev, which the GEMM-only run does not mimic: a bench
    of mgu first times lnlstm's GEMMs; one of mgu alone has no GEMM-only side (it failed before)."""

    def gemm_cells(cells):
        return [i.cell for i in bench.implementations(cells, ["float32"], with_torch=False) if i.kind == "gemm"]

    assert gemm_cells(["mgu", "lnlstm"]) == ["lnlstm"]
    assert gemm_cells(["mgu"]) == []
    assert gemm_cells(["lstm", "gru"]) == ["lstm"]

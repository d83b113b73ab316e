"""The benchmark's worker processes start and time what they are told (the timings themselves
are measured by ``symlstm bench``, never asserted here)."""

import pytest

from symlstm.tools.bench import Impl, _run_worker


@pytest.mark.parametrize("kind", ["symlstm", "gemm"])
def test_a_worker_process_times_a_cell(kind):
    result = _run_worker(Impl(kind, "rnn", "float64"), [(3, 2, 2, 2)], repeats=2, budget=0.1)
    (timed,) = result.values()
    assert len(timed["times"]) >= 2 and all(t > 0 for t in timed["times"])

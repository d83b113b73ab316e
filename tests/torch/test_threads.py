"""symlstm.torch.set_threads: the kernels' row ranges on PyTorch's OpenMP team or on their own
threads. Behaviour only (which threads, which results, which errors), no timing."""

import threading

import pytest
import torch

import symlstm.torch as st
from symlstm.backends.numba import parallel
from symlstm.torch import threads as policy

TEAM = policy._torch_team()
needs_team = pytest.mark.skipif(TEAM is None, reason="this torch build has no OpenMP runtime with GOMP_parallel")


@pytest.fixture(autouse=True)
def _restore_policy_and_torch_threads():
    before, count = st.get_threads(), torch.get_num_threads()
    yield
    st.set_threads(before)
    torch.set_num_threads(count)


def test_the_default_policy_is_torchs_threads_and_bad_names_are_refused():
    assert st.get_threads() == "torch"
    with pytest.raises(ValueError, match=r"threads policy must be one of \['torch', 'symlstm'\], got 'openmp'"):
        st.set_threads("openmp")
    with pytest.raises(ValueError, match="threads policy"), st.using_threads(None):
        pass
    assert st.get_threads() == "torch"  # a refused policy changes nothing


def test_the_context_manager_restores_the_previous_policy_even_on_error():
    with pytest.raises(RuntimeError, match="inside"), st.using_threads("symlstm"):
        assert st.get_threads() == "symlstm"
        raise RuntimeError("inside")
    assert st.get_threads() == "torch"


def _where(lo, hi, scale):
    return lo * scale, hi, threading.get_native_id()


@needs_team
def test_the_team_runs_every_range_in_order_on_torchs_threads():
    torch.set_num_threads(2)
    torch.ones(1 << 20).mul_(2)  # torch's team exists (its workers are what the kernels reuse)
    ranges = [(0, 3), (3, 6)]
    first, again = (TEAM.run(_where, ranges, (10,), [(), ()]) for _ in range(2))
    assert [r[:2] for r in first] == [r[:2] for r in again] == [(0, 3), (30, 6)]  # all, in range order
    caller = threading.get_native_id()
    python_threads = {t.native_id for t in threading.enumerate()}
    assert first[0][2] == caller  # the calling thread is the team's thread 0
    worker = first[1][2]
    assert worker != caller and worker not in python_threads  # an OpenMP worker, not a Python thread
    assert again[1][2] == worker  # the pool's worker again, not a new thread per call


@needs_team
def test_the_team_has_a_thread_per_range_whatever_torchs_thread_count():
    torch.set_num_threads(1)  # how many threads stays the kernels' choice (SYMLSTM_NUM_THREADS)
    results = TEAM.run(_where, [(0, 1), (1, 2), (2, 3)], (1,), [(), (), ()])
    assert len({tid for _, _, tid in results}) == 3


def _fails_on_second(lo, hi):
    if lo:
        raise ArithmeticError(f"range {lo}:{hi}")
    return lo


@needs_team
def test_an_error_in_a_range_reaches_the_caller():
    torch.set_num_threads(2)
    with pytest.raises(ArithmeticError, match="range 4:8"):
        TEAM.run(_fails_on_second, [(0, 4), (4, 8)], (), [(), ()])


def test_the_kernels_run_where_the_policy_says(monkeypatch):
    """The op hands its splits to the team under "torch" and to the kernels' own threads under
    "symlstm"; both give the same numbers (float64, every gradient, bit for bit)."""
    used = []
    run = parallel.RowSplit._run

    def spy(kernel, ranges, args, per_range=None):
        used.append(parallel._RANGE_RUNNER.get())
        return run(kernel, ranges, args, per_range)

    monkeypatch.setattr(parallel.RowSplit, "_run", staticmethod(spy))
    torch.manual_seed(0)
    model = st.Recurrent("lstm", 5, 7, num_layers=2).double()
    x = torch.randn(6, 2 * parallel.MIN_ROWS_PER_THREAD, 5, dtype=torch.float64, requires_grad=True)
    torch.set_num_threads(2)
    grads = {}
    for name in ("symlstm", "torch"):
        used.clear()
        with st.using_threads(name):
            model.zero_grad()
            x.grad = None
            output, (h, c) = model(x)
            (output.sum() + c.sum()).backward()
        grads[name] = [output.detach(), x.grad, *(p.grad for p in model.parameters())]
        expected = TEAM.run if name == "torch" and TEAM is not None else None
        if parallel.num_threads() > 1:
            assert used and all(runner == expected for runner in used)
    for a, b in zip(grads["symlstm"], grads["torch"]):
        torch.testing.assert_close(a, b, rtol=0, atol=0)

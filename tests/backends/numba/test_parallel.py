"""Row ranges on threads and reused buffers: the numbers do not depend on either."""

import numpy as np
import pytest

import symlstm
from symlstm.backends.numba import parallel, workspace

T, D, H = 7, 5, 6


def run(cell, B, seed=0):
    rng = np.random.default_rng(seed)
    params = cell.init_params(D, H, seed=seed)
    x = rng.standard_normal((T, B, D))
    state0 = {s: rng.standard_normal((B, H)) for s in cell.state_names}
    dys = rng.standard_normal((T, B, H))
    dstate = {s: rng.standard_normal((B, H)) for s in cell.state_names}
    ys, state, cache = cell.forward(x, params, state0)
    dx, dparams, dstate0 = cell.backward(dys, cache, dstate)
    return {
        "ys": ys,
        "dx": dx,
        **{f"state {k}": v for k, v in state.items()},
        **{f"d{k}": v for k, v in dparams.items()},
        **{f"d{k}0": v for k, v in dstate0.items()},
    }


def test_row_ranges_cover_the_batch_evenly():
    assert parallel.row_ranges(13, 2) == [(0, 6), (6, 13)]
    assert parallel.row_ranges(13, 3) == [(0, 4), (4, 8), (8, 13)]
    assert parallel.row_ranges(7, 2) == [(0, 7)]  # under 2 * MIN_ROWS_PER_THREAD rows: one range
    assert parallel.row_ranges(1, 8) == [(0, 1)]
    big = parallel.RowSplit(100, 64, step_bytes=parallel.MAX_SPLIT_STEP_BYTES, threads=2)
    assert big.batch_ranges == [(0, 64)] and not big.threaded  # big step matrices: BLAS threads
    small = parallel.RowSplit(100, 64, step_bytes=1000, threads=2)
    assert small.batch_ranges == [(0, 32), (32, 64)] and small.flat_ranges == [(0, 3200), (3200, 6400)]


@pytest.mark.parametrize("name", ["lstm", "gru", "peephole"])
def test_results_do_not_depend_on_the_number_of_threads(name, monkeypatch):
    cell = symlstm.cell(name)
    results = {}
    for threads in ("1", "2", "3"):
        monkeypatch.setenv(parallel.THREADS_ENV, threads)
        results[threads] = run(cell, B=13)
    for threads in ("2", "3"):
        for key, value in results["1"].items():
            np.testing.assert_allclose(results[threads][key], value, rtol=1e-13, atol=1e-13, err_msg=key)


def test_bad_thread_count_is_a_clear_error(monkeypatch):
    cell = symlstm.cell("lstm")
    for value in ("two", "0"):
        monkeypatch.setenv(parallel.THREADS_ENV, value)
        with pytest.raises(ValueError, match=parallel.THREADS_ENV):
            run(cell, B=13)


def test_reused_buffers_never_overwrite_a_live_cache():
    cell = symlstm.cell("lstm")
    rng = np.random.default_rng(1)
    params = cell.init_params(D, H)
    x1, x2 = rng.standard_normal((2, T, 9, D))
    dys = rng.standard_normal((T, 9, H))
    ys1, _, cache1 = cell.forward(x1, params)
    expected = cell.backward(dys, cache1)
    for _ in range(3):  # more calls of the same shape while cache1 lives
        ys2, _, cache2 = cell.forward(x2, params)
        cell.backward(dys, cache2)
    got = cell.backward(dys, cache1)
    np.testing.assert_array_equal(got[0], expected[0])
    for name in expected[1]:
        np.testing.assert_array_equal(got[1][name], expected[1][name])
    assert not np.shares_memory(ys1, ys2)


def test_pool_reuses_only_free_arrays_and_stays_bounded():
    nbytes = 10 * 100 * 8
    pool = workspace.ArrayPool(max_bytes=3 * nbytes, min_bytes=0)
    a = pool.empty((10, 100), np.float64)
    address = a.ctypes.data
    b = pool.empty((10, 100), np.float64)
    assert b.ctypes.data != address  # a is still referred to
    del a
    c = pool.empty((10, 100), np.float64)
    assert c.ctypes.data == address  # a was free: reused
    view = c[1:]
    d = pool.empty((10, 100), np.float64)
    assert d.ctypes.data not in (address, b.ctypes.data)  # a view keeps c in use
    del view, b, c, d
    for _ in range(5):
        pool.empty((20, 100), np.float64)
    assert pool.nbytes <= 3 * nbytes
    assert workspace.ArrayPool().empty((3, 4), np.float32).shape == (3, 4)  # small: plain NumPy


def test_calls_from_several_threads_agree_and_give_blas_its_threads_back(monkeypatch):
    from concurrent.futures import ThreadPoolExecutor

    from threadpoolctl import threadpool_info

    monkeypatch.setenv(parallel.THREADS_ENV, "2")
    cell = symlstm.cell("lstm")
    expected = run(cell, B=16)
    before = sorted((i["filepath"], i["num_threads"]) for i in threadpool_info())
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: run(cell, B=16), range(8)))
    for got in results:
        for key, value in expected.items():
            np.testing.assert_array_equal(got[key], value, err_msg=key)
    assert sorted((i["filepath"], i["num_threads"]) for i in threadpool_info()) == before


def test_a_split_runs_every_range_and_raises_what_a_range_raised():
    """Each range once, on the calling thread and the workers, results in range order; a range
    that fails is raised on the caller after every range has ended, and the workers go on."""
    import threading
    import time

    ranges = [(0, 4), (4, 8), (8, 12)]
    seen = []

    def kernel(lo, hi, scale, extra):
        seen.append((lo, threading.current_thread() is threading.main_thread()))
        return (lo + hi) * scale + extra

    results = parallel.RowSplit._run(kernel, ranges, (10,), per_range=[(1,), (2,), (3,)])
    assert results == [41, 122, 203]
    assert sorted(seen) == [(0, True), (4, False), (8, False)]

    ended = []

    def failing(lo, hi):
        if lo == 4:
            raise ValueError(f"range {lo}:{hi} failed")
        time.sleep(0.05)  # the others take longer than the failure
        ended.append(lo)

    with pytest.raises(ValueError, match="range 4:8 failed"):
        parallel.RowSplit._run(failing, ranges, ())
    assert sorted(ended) == [0, 8]
    assert parallel.RowSplit._run(kernel, ranges, (1,), per_range=[(0,)] * 3) == [4, 12, 20]


def _split_sum(_):
    return parallel.RowSplit._run(lambda lo, hi: hi - lo, [(0, 4), (4, 9)], ())


def test_a_forked_child_starts_workers_of_its_own():
    """The parent's worker threads do not exist in a forked child: it starts its own (with the
    parent's, a split would wait for them forever)."""
    import multiprocessing

    assert _split_sum(None) == [4, 5]  # the parent has its workers now
    with multiprocessing.get_context("fork").Pool(1) as pool:
        assert pool.apply_async(_split_sum, (None,)).get(timeout=60) == [4, 5]

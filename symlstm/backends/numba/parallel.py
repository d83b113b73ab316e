"""How the runtime spreads one call of a cell over the machine's cores.

The rows of a batch are independent through time, so the recurrence of rows ``lo:hi`` can run on
one core from the first step to the last with no barrier between steps (a barrier per step, as a
threaded BLAS needs for each small step GEMM, costs more than the GEMM at the sizes of most
recurrent nets). The big GEMMs before and after the recurrence are split the same way, over the
T*B (step, batch row) pairs. Each range runs on a thread of its own (the kernels release the GIL)
and BLAS is held to one thread for the whole call: BLAS worker threads spin for a while after
each job, and on a two-core machine a spinning worker steals a core from the recurrence.

That wins while the step matrices are small; once they outgrow a core's cache, every thread
re-reads and re-packs all of them at every step, and BLAS's own split of each step GEMM (each
thread packs half) wins instead. Measured on these machines (2 cores, 2 MiB L2 each; lstm,
forward + backward, row threads / BLAS threads): 0.83, 0.95, 1.02, 1.34 at H = 64, 128, 256,
512 in float32 and 0.77, 0.86, 1.12 at H = 64, 128, 256 in float64. At H = 256 in float32 (step
matrices of 1 MiB for lstm) splitting is even for lstm (1.01-1.02) and wins for cells with
heavier elementwise passes, which BLAS's threads leave on one core: lnlstm 0.88-0.91, slstm
0.80-0.86, lstm inside PyTorch 0.95 (T, B = 100, 64; Intel Xeon, 2026-12-02); at H = 512 lstm
loses (1.12) and lnlstm is even. With the kernels' own OpenBLAS 0.3.34 (``blas``), whose float32
GEMMs of few rows are faster, splitting wins further (same machine, later that day, medians of
7): lstm float32 at H = 512 0.98-0.99, gru 0.94-1.00, lnlstm 0.90-0.94; lstm float64 at H = 256
(2 MiB) 0.88-0.89; it loses from 8 MiB on: lstm float64 at H = 512 1.01-1.02, float32 at
H = 1024 (16 MiB) 1.08-1.15. So a call splits its rows when its step matrices take less than
MAX_SPLIT_STEP_BYTES; a batch too small to split (fewer than 2 * MIN_ROWS_PER_THREAD rows) or
with larger matrices runs on the calling thread, with BLAS free to use its own threads.

``SYMLSTM_NUM_THREADS`` sets the number of threads (default: the cores this process may use).
Results depend on it only through the order in which the parts of the parameter gradients are
summed, at the level of rounding.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import os
import threading
from typing import Any

THREADS_ENV = "SYMLSTM_NUM_THREADS"
#: fewer rows than this per thread and the per-step GEMMs get too thin to be worth a thread
MIN_ROWS_PER_THREAD = 4
#: step matrices (all of a cell's recurrent weights) at least this big: leave threads to BLAS
MAX_SPLIT_STEP_BYTES = 8 << 20


def num_threads() -> int:
    return _num_threads(os.environ.get(THREADS_ENV, ""))


@functools.lru_cache(maxsize=4)
def _num_threads(value: str) -> int:
    """The threads ``SYMLSTM_NUM_THREADS=value`` asks for (the process's cores when empty): asked
    once per value, not on every call."""
    value = value.strip()
    if value:
        try:
            threads = int(value)
        except ValueError:
            raise ValueError(f"{THREADS_ENV}={value!r} is not a whole number of threads") from None
        if threads < 1:
            raise ValueError(f"{THREADS_ENV}={value!r}: use 1 or more threads")
        return threads
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def row_ranges(batch: int, threads: int | None = None) -> list[tuple[int, int]]:
    """Split ``range(batch)`` into contiguous ``(lo, hi)`` ranges, one per thread, as even as
    possible and each at least MIN_ROWS_PER_THREAD rows long (so a small batch gets one)."""
    threads = num_threads() if threads is None else threads
    parts = max(1, min(threads, batch // MIN_ROWS_PER_THREAD))
    bounds = [batch * k // parts for k in range(parts + 1)]
    return list(zip(bounds[:-1], bounds[1:]))


#: who runs the ranges of a split instead of this module's threads (``ranges_run_by``)
_RANGE_RUNNER: contextvars.ContextVar = contextvars.ContextVar("symlstm_range_runner", default=None)


@contextlib.contextmanager
def ranges_run_by(runner):
    """Within the block, a split's ranges run as ``runner(kernel, ranges, args, per_range)``, which
    calls ``kernel(lo, hi, *args, *per_range[k])`` for every range k, at once or in turn, and
    returns the results in range order (raising what a range raised). For a host with a thread
    pool of its own (PyTorch's OpenMP threads, symlstm.torch.threads): two pools would fight
    for the cores. None: this module's threads."""
    token = _RANGE_RUNNER.set(runner)
    try:
        yield
    finally:
        _RANGE_RUNNER.reset(token)


class _Worker:
    """A thread of its own that runs one call at a time for a split's caller, handed over with
    two locks: a ThreadPoolExecutor's Future (a Condition, a waiter, a queue) cost ~60 us to
    submit and ~100 us from the call's end to the caller's wake-up, per split (measured at
    (100, 32, 128, 128), mgu: four splits a forward + backward, ~0.6 ms of 8.5)."""

    def __init__(self):
        self._start, self._finish = threading.Lock(), threading.Lock()
        self._start.acquire()
        self._finish.acquire()
        self._call: tuple | None = None
        self._outcome: tuple[bool, Any] = (False, None)
        threading.Thread(target=self._serve, name="symlstm", daemon=True).start()

    def _serve(self) -> None:
        while True:
            self._start.acquire()
            assert self._call is not None
            function, args = self._call
            self._call = None
            try:
                self._outcome = (False, function(*args))
            except BaseException as err:  # noqa: BLE001 - handed to the caller, which raises it
                self._outcome = (True, err)
            self._finish.release()

    def start(self, function, args: tuple) -> None:
        self._call = (function, args)
        self._start.release()

    def outcome(self) -> tuple[bool, Any]:
        """``(failed, result or exception)`` (see ``values``), once the call has ended."""
        self._finish.acquire()
        outcome, self._outcome = self._outcome, (False, None)
        return outcome


def values(outcomes: list[tuple[bool, Any]]) -> list:
    """The results of a split's ranges from their ``(failed, result or exception)`` outcomes, in
    range order; the first failure is raised instead. For every runner of ranges (``_run``,
    ``symlstm.torch.threads``), each range having ended."""
    for failed, value in outcomes:
        if failed:
            raise value
    return [value for _, value in outcomes]


_WORKERS: list[_Worker] = []
#: one split at a time hands out the workers (a threaded split also holds single_threaded_blas)
_WORKERS_LOCK = threading.Lock()


def _workers(count: int) -> list[_Worker]:
    while len(_WORKERS) < count:
        _WORKERS.append(_Worker())
    return _WORKERS[:count]


def _forget_workers() -> None:
    """In a forked child the workers' threads are gone: start new ones when needed."""
    global _WORKERS_LOCK
    _WORKERS.clear()
    _WORKERS_LOCK = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_workers)


@functools.lru_cache(maxsize=1)
def _blas_controller():
    """threadpoolctl's handle on the loaded BLAS libraries, the kernels' (``blas``) and SciPy's
    (Numba's np.dot) among them: made after loading both, since threadpoolctl sees only loaded
    libraries."""
    import scipy.linalg.cython_blas  # noqa: F401
    from threadpoolctl import ThreadpoolController

    from symlstm.backends.numba import blas

    blas.load()
    return ThreadpoolController()


class _SingleThreadedBlas:
    """BLAS held to one thread, for one caller at a time: a call that splits its rows already
    uses every core, so calls from several threads of the program take turns. (Observed with
    OpenBLAS 0.3.30: when one thread lowered the thread count and another, after BLAS had run,
    raised it again, the raise did not take effect, and BLAS stayed on one thread.)"""

    def __init__(self):
        self._lock = threading.Lock()
        self._limit = None

    def __enter__(self):
        self._lock.acquire()
        try:
            self._limit = _blas_controller().limit(limits=1, user_api="blas")
        except ImportError:  # threadpoolctl missing: run as is
            self._limit = contextlib.nullcontext()
        except BaseException:
            self._lock.release()
            raise
        return self

    def __exit__(self, *exc):
        try:
            self._limit.__exit__(*exc)
        finally:
            self._limit = None
            self._lock.release()


_SINGLE_THREADED_BLAS = _SingleThreadedBlas()


def single_threaded_blas():
    """A context in which BLAS runs on the calling thread only."""
    return _SINGLE_THREADED_BLAS


class RowSplit:
    """One call's division of work, used as a context: ``batch`` runs a kernel over ranges of
    batch rows, ``flat`` over ranges of the T*B (step, row) pairs, each range on its own thread
    (the first on the calling thread).

    >>> with RowSplit(T, B) as split:                  # doctest: +SKIP
    ...     split.flat(kernel, *args)                   # kernel(lo, hi, *args) per range
    """

    def __init__(self, steps: int, batch: int, step_bytes: int = 0, threads: int | None = None):
        if step_bytes >= MAX_SPLIT_STEP_BYTES or batch < 2 * MIN_ROWS_PER_THREAD:
            threads = 1
        self.batch_ranges = row_ranges(batch, threads)
        self.threaded = len(self.batch_ranges) > 1
        if self.threaded:
            self.flat_ranges = row_ranges(steps * batch, len(self.batch_ranges))
            self._blas = single_threaded_blas()
        else:
            self.flat_ranges = [(0, steps * batch)]
            self._blas = contextlib.nullcontext()

    def __enter__(self) -> RowSplit:
        self._blas.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._blas.__exit__(*exc)

    def batch(self, kernel, *args) -> list:
        return self._run(kernel, self.batch_ranges, args)

    def flat(self, kernel, *args, per_range=None) -> list:
        """Like ``batch``; ``per_range[k]`` (a tuple) ends the arguments of the k-th range."""
        return self._run(kernel, self.flat_ranges, args, per_range)

    @staticmethod
    def _run(kernel, ranges, args, per_range=None) -> list:
        extra = per_range if per_range is not None else [()] * len(ranges)
        if len(ranges) == 1:
            return [kernel(*ranges[0], *args, *extra[0])]
        runner = _RANGE_RUNNER.get()
        if runner is not None:
            return runner(kernel, ranges, args, extra)
        # the first range on the calling thread, the others on worker threads: waking one thread
        # per other range costs ~10 us, waking one for every range ~80 us (three threads for two
        # cores). Paired runs, 2026-12-02 (Intel Xeon, after the rows were borrowed): 0.88-1.0 of
        # the time at (100, 16, 64, 64) and (100, 32, 128, 128) for lstm, peephole, gru, sru and
        # indrnn, even at H = 256. (An earlier session measured the opposite, 3-18 % slower at
        # B = 16 and 32, while the kernels' row views still counted references on shared arrays.)
        with _WORKERS_LOCK:
            workers = _workers(len(ranges) - 1)
            for worker, (lo, hi), more in zip(workers, ranges[1:], extra[1:]):
                worker.start(kernel, (lo, hi, *args, *more))
            try:
                first = kernel(*ranges[0], *args, *extra[0])
            finally:
                outcomes = [worker.outcome() for worker in workers]  # all of them, even when one fails
        return [first, *values(outcomes)]

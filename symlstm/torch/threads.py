"""Whose threads run the kernels inside PyTorch: by default PyTorch's own OpenMP threads.

Why. PyTorch runs a CPU operation on a team of OpenMP threads (GNU libgomp in the Linux wheels),
and after each parallel operation (the loss, Adam, a gradient accumulation) the team's idle
workers busy-wait for milliseconds before they sleep. symlstm's kernels split a batch's rows over
threads of their own; started in that window, one of them shares a core with a spinning worker
and the whole split waits for it: a training step at (T, B, D, H) = (100, 16, 64, 64) took 18-20
ms instead of 7. ``OMP_WAIT_POLICY=PASSIVE`` cures it, but libgomp reads it once, when torch is
imported. Measured here (issue 13), the other ways out fail: ``torch.set_num_threads`` does not
stop workers that are already spinning; ``omp_pause_resource_all`` ends them, but torch then
starts new ones, ~20 ms of CPU each time; Numba's ``omp`` threading layer links the system's
libgomp, a second OpenMP runtime beside torch's, with a pool of its own.

So each call of the op hands its ranges of rows to torch's own team: a parallel region entered
through the runtime's ``GOMP_parallel`` (what ``#pragma omp parallel`` compiles to), whose threads
each call the kernel (which releases the GIL) on their ranges. A spinning worker takes its range
at once, no core is fought over, and torch's threads and settings stay as they are. The number
of threads is still the kernels' own (``SYMLSTM_NUM_THREADS``, default the cores), whatever
``torch.set_num_threads`` says: the policy chooses whose threads, not how many.

``set_threads("torch")`` is the default; ``set_threads("symlstm")`` gives the kernels their own
threads (``SYMLSTM_NUM_THREADS``), as outside PyTorch; ``using_threads(policy)`` sets it for a block.
Where torch's OpenMP runtime cannot be found (another parallel backend, no ``GOMP_parallel``),
"torch" runs the kernels as "symlstm" does.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import itertools
import os

import torch

from symlstm.backends.numba import parallel

POLICIES = ("torch", "symlstm")
_policy = "torch"


def set_threads(policy: str) -> None:
    """Whose threads run the kernels of every symlstm.torch module from now on: ``"torch"``
    (PyTorch's OpenMP threads, the default) or ``"symlstm"`` (the kernels' own)."""
    global _policy
    _policy = _checked(policy)


def get_threads() -> str:
    """The policy in force: ``"torch"`` or ``"symlstm"``."""
    return _policy


@contextlib.contextmanager
def using_threads(policy: str):
    """``set_threads(policy)`` for the block, the previous policy after it."""
    global _policy
    previous, _policy = _policy, _checked(policy)
    try:
        yield
    finally:
        _policy = previous


def _checked(policy) -> str:
    if policy not in POLICIES:
        raise ValueError(f"threads policy must be one of {list(POLICIES)}, got {policy!r}")
    return policy


def kernel_threads():
    """The context a kernel call of the op runs in, after the policy in force."""
    team = _torch_team() if _policy == "torch" else None
    return parallel.ranges_run_by(team.run) if team is not None else contextlib.nullcontext()


class _Team:
    """Runs a split's ranges on the calling thread's OpenMP team of ``runtime`` (a ctypes CDLL)."""

    def __init__(self, runtime: ctypes.CDLL):
        self._thread_num = runtime.omp_get_thread_num
        self._team_size = runtime.omp_get_num_threads
        self._thread_num.restype = self._team_size.restype = ctypes.c_int
        body = ctypes.CFUNCTYPE(None, ctypes.c_void_p)
        self._parallel = runtime.GOMP_parallel
        self._parallel.argtypes = [body, ctypes.c_void_p, ctypes.c_uint, ctypes.c_uint]
        self._parallel.restype = None
        self._body = body(self._run_share)  # kept: the runtime holds only its address
        self._jobs: dict[int, tuple] = {}  # key (the region's data pointer) -> its work
        self._keys = itertools.count(1)

    def run(self, kernel, ranges, args, per_range) -> list:
        results: list = [None] * len(ranges)
        key = next(self._keys)
        self._jobs[key] = (kernel, ranges, args, per_range, results)
        try:
            self._parallel(self._body, key, len(ranges), 0)
        finally:
            del self._jobs[key]
        return parallel.values(results)

    def _run_share(self, key) -> None:
        """One team thread's part: every n-th range from its number on (a team smaller than
        asked for, e.g. inside another parallel region, still runs them all). Called by the
        runtime: nothing may propagate, so a failure is kept for ``run`` to raise."""
        kernel, ranges, args, per_range, results = self._jobs[key]
        for k in range(self._thread_num(), len(ranges), self._team_size()):
            try:
                results[k] = (False, kernel(*ranges[k], *args, *per_range[k]))
            except BaseException as err:  # noqa: BLE001 - re-raised by run, on the calling thread
                results[k] = (True, err)


@functools.cache
def _torch_team() -> _Team | None:
    """A team over the OpenMP runtime torch's operations use, or None if there is none to use."""
    if "parallel backend: OpenMP" not in torch.__config__.parallel_info():
        return None
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    paths = [lib["filepath"] for lib in threadpool_info() if lib.get("user_api") == "openmp"]
    torch_dir = os.path.dirname(torch.__file__)
    paths.sort(key=lambda path: not path.startswith(torch_dir))  # torch's own first
    for path in paths:
        runtime = ctypes.CDLL(path)
        if all(hasattr(runtime, name) for name in ("GOMP_parallel", "omp_get_thread_num", "omp_get_num_threads")):
            return _Team(runtime)
    return None

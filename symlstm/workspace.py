"""Reusable arrays for the kernels' big buffers.

Memory fresh from the operating system costs a page fault per 4 KiB page on first touch, and
glibc hands large blocks back to the system when they are freed, so a training loop that
allocates its activations on every call pays those faults on every call: at T=100, B=16,
D=H=64 in float64 they were about half the time of a forward pass on these machines. The pool
keeps the arrays it handed out and gives one back out again once nothing else refers to it (a
``ForwardCache`` that is still alive keeps its arrays, and any view of an array keeps it too).

Only the runtime's own buffers come from here; arrays returned to the caller are always new.
"""
from __future__ import annotations

import sys
import threading

import numpy as np

#: the pool forgets its oldest arrays once it holds more than this
MAX_BYTES = 1 << 30


class ArrayPool:
    def __init__(self, max_bytes: int = MAX_BYTES):
        self.max_bytes = max_bytes
        self._arrays: list[np.ndarray] = []  # oldest first
        self._lock = threading.Lock()

    def empty(self, shape, dtype) -> np.ndarray:
        """An uninitialised C-contiguous array, reused when one of this shape and dtype is free."""
        shape, dtype = tuple(int(n) for n in shape), np.dtype(dtype)
        with self._lock:
            for k in range(len(self._arrays)):
                array = self._arrays[k]
                # referred to only by the pool's list, ``array`` and getrefcount's argument
                if array.shape == shape and array.dtype == dtype and sys.getrefcount(array) == 3:
                    self._arrays.append(self._arrays.pop(k))  # most recently used last
                    return array
            array = np.empty(shape, dtype)
            self._arrays.append(array)
            total = sum(a.nbytes for a in self._arrays)
            while total > self.max_bytes and len(self._arrays) > 1:
                total -= self._arrays.pop(0).nbytes  # still in use or not: just forget it
            return array

    def clear(self) -> None:
        with self._lock:
            self._arrays.clear()

    @property
    def nbytes(self) -> int:
        with self._lock:
            return sum(a.nbytes for a in self._arrays)


POOL = ArrayPool()
empty = POOL.empty

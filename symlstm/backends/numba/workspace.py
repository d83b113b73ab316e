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

import math
import sys
import threading

import numpy as np

#: the pool forgets its least recently used arrays once it holds more than this
MAX_BYTES = 1 << 30
#: smaller arrays come from malloc's heap, which reuses them without faults: not pooled
MIN_BYTES = 1 << 17


class ArrayPool:
    def __init__(self, max_bytes: int = MAX_BYTES, min_bytes: int = MIN_BYTES):
        self.max_bytes, self.min_bytes = max_bytes, min_bytes
        self._arrays: dict[tuple, list[np.ndarray]] = {}  # (shape, dtype) -> arrays; oldest key first
        self._bytes = 0
        self._lock = threading.Lock()

    def empty(self, shape, dtype) -> np.ndarray:
        """An uninitialised C-contiguous array, reused when one of this shape and dtype is free."""
        dtype = np.dtype(dtype)
        if dtype.itemsize * math.prod(shape) < self.min_bytes:
            return np.empty(shape, dtype)
        shape = tuple(int(n) for n in shape)
        key = (shape, dtype.str)
        with self._lock:
            arrays = self._arrays.pop(key, [])
            self._arrays[key] = arrays  # most recently used last
            for k in range(len(arrays)):
                array = arrays[k]
                # referred to only by the pool's list, ``array`` and getrefcount's argument
                if sys.getrefcount(array) == 3:
                    return array
            array = np.empty(shape, dtype)
            arrays.append(array)
            self._bytes += array.nbytes
            while self._bytes > self.max_bytes and len(self._arrays) > 1:
                oldest = next(iter(self._arrays))  # still in use or not: just forget them
                self._bytes -= sum(a.nbytes for a in self._arrays.pop(oldest))
            return array

    def clear(self) -> None:
        with self._lock:
            self._arrays.clear()
            self._bytes = 0

    @property
    def nbytes(self) -> int:
        return self._bytes


POOL = ArrayPool()
empty = POOL.empty

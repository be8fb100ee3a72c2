"""Fixed-size ring buffer of feature frames addressed by absolute frame index."""
from __future__ import annotations

import numpy as np


class RingBuffer:
    """Keeps the last ``capacity`` rows of a stream of (n, dim) arrays; memory never grows."""

    def __init__(self, capacity: int, dim: int, dtype=np.float32):
        if capacity <= 0 or dim <= 0:
            raise ValueError("capacity and dim must be positive")
        self.capacity = capacity
        self.dim = dim
        self._data = np.zeros((capacity, dim), dtype=dtype)
        self.total = 0              # rows pushed since creation (absolute index of the next row)

    def push(self, rows: np.ndarray) -> None:
        rows = np.asarray(rows, dtype=self._data.dtype).reshape(-1, self.dim)
        if rows.shape[0] > self.capacity:
            self.total += rows.shape[0] - self.capacity
            rows = rows[-self.capacity:]
        n = rows.shape[0]
        start = self.total % self.capacity
        first = min(n, self.capacity - start)
        self._data[start:start + first] = rows[:first]
        self._data[: n - first] = rows[first:]
        self.total += n

    def get(self, start: int, stop: int) -> np.ndarray:
        """Rows with absolute indices [start, stop); they must still be held."""
        if start < max(0, self.total - self.capacity) or stop > self.total or start > stop:
            raise IndexError(f"rows [{start}, {stop}) not held (have [{max(0, self.total - self.capacity)}, {self.total}))")
        idx = np.arange(start, stop) % self.capacity
        return self._data[idx]

    def last(self, n: int) -> np.ndarray:
        return self.get(self.total - n, self.total)

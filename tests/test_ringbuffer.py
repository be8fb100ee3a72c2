import numpy as np
import pytest

from kws.audio.ringbuffer import RingBuffer


def test_wraps_and_keeps_last_rows(rng):
    rb = RingBuffer(10, 3)
    data = rng.normal(size=(37, 3)).astype(np.float32)
    pos = 0
    for n in (4, 7, 1, 0, 9, 16):
        rb.push(data[pos:pos + n])
        pos += n
        np.testing.assert_array_equal(rb.last(min(pos, 10)), data[max(0, pos - 10):pos])
    assert rb.total == 37
    np.testing.assert_array_equal(rb.get(30, 35), data[30:35])
    with pytest.raises(IndexError):
        rb.get(20, 30)               # overwritten
    with pytest.raises(IndexError):
        rb.get(30, 40)               # not yet pushed


def test_memory_is_flat():
    rb = RingBuffer(100, 128)
    before = rb._data.nbytes
    for _ in range(1000):
        rb.push(np.ones((15, 128)))
    assert rb._data.nbytes == before and rb.total == 15000

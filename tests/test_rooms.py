"""The simulated rooms the head is trained with (kws.corpus.rooms)."""
import numpy as np
import pytest


def test_room_bank():
    pytest.importorskip("pyroomacoustics")
    from kws.corpus.rooms import simulate

    rirs, rt60 = simulate(4, seed=1, quiet=True)
    assert rirs.shape == (4, 12800) and np.all((rt60 >= 0.15) & (rt60 <= 0.9))
    assert np.allclose(np.linalg.norm(rirs, axis=1), 1, atol=1e-3)
    assert np.all(np.argmax(np.abs(rirs), axis=1) == 0)      # starts at the direct path

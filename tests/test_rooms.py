"""The simulated rooms the head is trained with (kws.corpus.rooms)."""
import numpy as np
import pytest


def test_room_bank():
    pytest.importorskip("pyroomacoustics")
    from kws.corpus.rooms import simulate

    rirs, rt60 = simulate(4, seed=1, quiet=True)
    assert rirs.shape == (4, 16000) and np.all((rt60 >= 0.2) & (rt60 <= 1.5))
    assert np.allclose(np.linalg.norm(rirs, axis=1), 1, atol=1e-3)
    assert np.all(np.argmax(np.abs(rirs), axis=1) == 0)      # starts at the direct path


def test_devices_stand_free_by_a_wall_or_in_a_corner_and_talkers_are_in_reach():
    from kws.corpus.rooms import place_microphone, place_talker

    rng = np.random.default_rng(0)
    dims = np.array([6.0, 4.0, 2.8])
    for walls in (0, 1, 2):
        for _ in range(50):
            mic = place_microphone(dims, walls, rng)
            gap = np.minimum(mic[:2], dims[:2] - mic[:2])        # to the nearer wall on each axis
            assert np.sum(gap <= 0.5) == walls and np.all(gap >= 0.05)
            src = place_talker(dims, mic, rng)
            assert src is not None and 0.5 <= np.linalg.norm((src - mic)[:2]) <= 5.0
            assert np.all(src[:2] >= 0.3) and np.all(src[:2] <= dims[:2] - 0.3) and 1.0 <= src[2] <= 1.9


def test_rooms_ring_as_long_as_asked():
    pytest.importorskip("pyroomacoustics")
    import pyroomacoustics as pra

    from kws.corpus.rooms import simulate

    rirs, rt60 = simulate(6, seed=3, quiet=True)
    for h, want in zip(rirs, rt60):
        got = pra.experimental.measure_rt60(h, fs=16000, decay_db=20)
        assert 0.6 * want <= got <= 1.4 * want, (want, got)

"""Enrollment: keywords from typed text or recordings, each with a threshold of its own, and the
store they are kept in. ``python -m kws.enroll`` is ``python -m kws enroll``.

- ``build``: a keyword from its text, recordings or both (``kws.enroll_keyword``).
- ``phonemes``, ``lexicon``, ``g2p``: text to phonemes (CMUdict, an offline G2P for other words).
- ``kokoro``: Kokoro-82M, which speaks a typed keyword in its 28 voices (ten with ``--quick``).
- ``kokoro_graph``: its integer convolutions as integer matrix products (the same audio, sooner).
- ``render_cache``: renderings and typed keywords kept on disk; ``cachefiles``: the user cache
  folder they, the joined Kokoro model and the parsed dictionary are kept in.
- ``confusions``: the words and prefixes a phrase must not fire on.
- ``background``, ``thresholds``: the model's background bank, and thresholds set on it for a
  false-alarm rate.
- ``store``: :class:`~kws.enroll.store.Keyword`, :class:`~kws.enroll.store.KeywordSet` and the
  keyword store on disk.
- ``migrate``: a store moved to another model (``enroll migrate``).
- ``demo``: the demo keywords and the sample recording.
"""

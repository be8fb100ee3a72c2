"""Spotting: a keyword's templates matched against the stream, events where its score peaks.

- ``templates``: templates cut from utterances, the template score and its streaming matcher.
- ``events``: the one rule from a score series to events (offline peaks, their streaming twin,
  and the detector's firing).
- ``detector``: the streaming detector (:class:`~kws.spot.detector.Detector`, ``kws.Detector``).
- ``room``: thresholds that learn the room the detector listens in.
"""

"""Spotting: a keyword's templates matched against the stream, events where its score peaks.

- ``templates``: templates cut from utterances, the template score and its streaming matcher.
- ``detector``: the streaming detector (:class:`~kws.spot.detector.Detector`, ``kws.Detector``).
- ``room``: thresholds that learn the room the detector listens in.
"""

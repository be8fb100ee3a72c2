"""Streaming keyword detector: PCM chunks in, one :class:`Detection` per spoken keyword out.

    from kws import Detector
    det = Detector.from_texts(["hey computer"])      # or Detector(KeywordSet.load(store_dir))
    for chunk in stream:                             # float32 16 kHz mono, any chunk size
        for event in det.process(chunk):
            print(event.keyword, event.score, event.start, event.end)
    det.flush()                                      # at the end of a file

The pipeline: the model's front end turns audio into one speech-embedding vector every 80 ms
(kws.model.backbone), once for all keywords; its head, if it has one, maps them into the space
templates are matched in (kws.model.head); every new vector is scored against every template of
every keyword (kws.spot.templates.Matcher); a keyword fires as soon as its score reaches its
threshold (``fire="crossing"``; ``"peak"`` waits for the top of the score, 0.18 s later at the median),
then stays quiet for ``refractory_s`` (kws.spot.events). With ``vad`` on, a
vector whose longest template's stretch of audio holds too little speech (webrtcvad and a
noise-floor check, kws.audio.vad) scores -1. The result does not depend on how the audio is
chunked. A stream begins as if 1.28 s of silence had come before it (``PRIMED_VECTORS``), so a
keyword said at its very start is heard as it would be later on.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from kws.audio.io import AudioError
from kws.enroll.store import KeywordSet, OtherModelError
from kws.errors import UsageError
from kws.model.frontend import SAMPLE_RATE
from kws.model.model import Model
from kws.spot.events import FIRE_AT, Firing, PeakTracker
from kws.spot.room import AdaptConfig, Room, RoomState
from kws.spot.templates import Matcher, TemplateBank, keyword_templates, source_vectors

_SLICE = 16000      # samples handled at a time
_VAD_SLOT = 160     # samples per webrtcvad decision (10 ms)
# A stream starts as if the detector had been listening to silence for this many vectors (1.28 s):
# a word said at once is then heard with the context it has later on (the backbone's 0.78 s window,
# the head's 8 vectors), not with the start of a stream's edge padding. Times stay the stream's own.
PRIMED_VECTORS = 16


@dataclass(frozen=True)
class DetectorConfig:
    """Detector settings; the defaults are the shipped ones."""

    refractory_s: float = 1.0
    # when a keyword fires (kws.spot.events.Firing): "crossing", as soon as its score reaches the
    # threshold; "peak", at the top of the score, one vector after it (later, with the best word times)
    fire: str = "crossing"
    vad: bool = True
    vad_mode: int = 2
    vad_min_speech: float = 0.1      # fraction of 10 ms slots heard by the longest template that must be speech
    # a speech slot must also stand this far above the noise floor (kws.audio.vad); None: webrtcvad only
    vad_noise_margin_db: Optional[float] = 4.0
    # thresholds that learn the room (kws.spot.room); AdaptConfig(enabled=False) keeps the bank's
    adapt: AdaptConfig = field(default_factory=AdaptConfig)
    room_save_s: float = 300.0       # audio between saves of what was learnt (when a room file is given)

    def __post_init__(self):
        if self.refractory_s < 0 or not 0 <= self.vad_min_speech <= 1:
            raise UsageError("refractory_s must be >= 0 and vad_min_speech within [0, 1]")
        if self.fire not in FIRE_AT:
            raise UsageError(f"fire must be one of {', '.join(FIRE_AT)}, not {self.fire!r}")


@dataclass(frozen=True)
class Detection:
    keyword: str
    score: float
    threshold: float
    start: float      # seconds from the start of the stream: where the keyword was heard
    end: float

    def to_dict(self) -> dict:
        return {"keyword": self.keyword, "score": round(self.score, 4),
                "threshold": round(self.threshold, 4), "start": round(self.start, 3),
                "end": round(self.end, 3)}


class Detector:
    def __init__(self, keywords: KeywordSet, model: Optional[Model] = None,
                 config: DetectorConfig = DetectorConfig(),
                 room: Optional[Union[str, os.PathLike]] = None):
        """A detector for the keywords of ``keywords`` (made for ``model``, default the shipped
        one; :class:`~kws.enroll.store.OtherModelError` otherwise).

        Each keyword's threshold starts at its enrolled one (set on the model's background bank)
        and, with ``config.adapt`` on (the default), learns the room (kws.spot.room). ``room``: a file,
        or a keyword store's folder (``room.json`` in it), where what was learnt is read from at
        the start and saved every ``config.room_save_s`` of audio and by :meth:`save_room`;
        None keeps it in memory only."""
        if len(keywords) == 0:
            raise UsageError("no keywords to detect: enroll some first (python -m kws.enroll add ...)")
        self.config = config
        self.model = model or Model.load()
        if keywords.model_id != self.model.model_id:
            raise OtherModelError(f"keywords were made for model {keywords.model_id!r}, not "
                                  f"{self.model.model_id!r}: re-enroll them (python -m kws.enroll migrate "
                                  f"re-makes typed ones)")
        self.keywords = keywords
        self.frontend = self.model.frontend
        self.templates = [keyword_templates(self.model, k) for k in keywords]
        self.bank = TemplateBank.build(self.templates, soft_max=self.model.soft_max)
        self._names = keywords.names
        self._refractory = int(round(config.refractory_s * SAMPLE_RATE / self.frontend.hop))
        self.room_path = room
        self.room: Optional[Room] = None
        if config.adapt.enabled:
            saved = RoomState.load(room, self.model.model_id) if room is not None else None
            self.room = Room.for_keywords(self.model, keywords, config.adapt, saved)
            self._thr = self.room.current()
        else:
            self._thr = np.array([k.threshold for k in keywords], np.float32)
        self._since_save = 0
        self.reset()
        self.vectors = 0             # statistics for benchmarks
        self.vectors_skipped = 0

    @classmethod
    def from_texts(cls, texts: Sequence[str], threshold: Optional[float] = None,
                   model: Optional[Model] = None, config: DetectorConfig = DetectorConfig(),
                   fa_per_hour: Optional[float] = None, voices: Optional[Sequence[str]] = None) -> "Detector":
        """Detector for typed keywords (Kokoro renders each one in 28 voices: a few seconds a
        keyword on one core; kws.enroll.build).

        Args:
            texts: the keywords (words or phrases; any spelling: unknown words are pronounced
                by the fallback G2P).
            threshold: one threshold for all; None: each keyword's own, set for ``fa_per_hour``.
            model: the model (default: the shipped one).
            config: detector settings.
            fa_per_hour: false alarms an hour each threshold is set for (default 1).
            voices: the Kokoro voices that speak them (default: all 28).
        """
        from kws.enroll.build import enroll_keyword

        model = model or Model.load()
        ks = KeywordSet(model.model_id)
        for t in texts:
            kw = enroll_keyword(t, text=t, model=model, tune=False, fa_per_hour=fa_per_hour, voices=voices)
            if threshold is not None:
                kw.threshold = float(threshold)
            ks.add(kw)
        return cls(ks, model, config)

    @property
    def last_scores(self) -> Dict[str, float]:
        """Each keyword's score at the latest vector (-1 where the VAD skipped it), for live views."""
        return {n: float(s) for n, s in zip(self._names, self._firing.last)}

    @property
    def thresholds(self) -> Dict[str, float]:
        """Each keyword's threshold now (learnt from the room when adapting)."""
        return {n: float(t) for n, t in zip(self._names, self._thr)}

    @property
    def bank_thresholds(self) -> Dict[str, float]:
        """Each keyword's enrolled threshold (set on the model's background bank)."""
        return {k.name: float(k.threshold) for k in self.keywords}

    def save_room(self, path: Optional[Union[str, os.PathLike]] = None) -> Optional[str]:
        """Save what the thresholds learnt (to ``path``, default the detector's room file);
        returns the file written, or None when there is nothing to save or nowhere to."""
        path = path if path is not None else self.room_path
        if self.room is None or path is None:
            return None
        state = RoomState.load(path, self.model.model_id)
        state.update(self._names, self.room)
        return str(state.save(path))

    def reset(self) -> None:
        """Forget the stream: the next chunk starts at time 0."""
        cfg, fe = self.config, self.frontend
        self._stream = fe.stream()
        self._head = self.model.head.stream()
        self._matcher = Matcher(self.bank)
        self._vad = None
        if cfg.vad:
            from kws.audio.vad import StreamingVad

            span = fe.samples(0, self.bank.longest + _SLICE // fe.hop + 4)[1]
            self._vad = StreamingVad(cfg.vad_mode, capacity_slots=span // _VAD_SLOT + 8,
                                     noise_margin_db=cfg.vad_noise_margin_db)
        self._firing = Firing(len(self._names), self._refractory, self.config.fire)
        self._peaks = PeakTracker(len(self._names), self._refractory) if self.room is not None else None
        # the silence heard before the stream: through the front end, head, matcher and VAD, unscored
        self._offset = PRIMED_VECTORS * fe.hop
        silence = np.zeros(self._offset, np.float32)
        if self._vad is not None:
            self._vad.push(silence)
        raw = self._stream.push(silence)
        if raw.shape[0]:
            self._matcher.push(self._head.push(raw))

    # ------------------------------------------------------------------ streaming
    def process(self, chunk: np.ndarray) -> List[Detection]:
        """Feed float32 16 kHz mono samples; returns the detections completed by this chunk."""
        chunk = np.asarray(chunk, dtype=np.float32).reshape(-1)
        if chunk.size > _SLICE:
            events: List[Detection] = []
            for s in range(0, chunk.size, _SLICE):
                events += self.process(chunk[s:s + _SLICE])
            return events
        if chunk.size and not np.all(np.isfinite(chunk)):
            raise AudioError("audio chunk contains NaN or infinite samples")
        if self._vad is not None:
            self._vad.push(chunk)
        raw = self._stream.push(chunk)
        if raw.shape[0] == 0:
            return []
        first = self._matcher.count
        scores = self._matcher.push(self._head.push(raw))
        best = self._matcher.best_template
        events: List[Detection] = []
        for i in range(scores.shape[0]):
            e = first + i
            s = scores[i]
            self.vectors += 1
            if not self._speech(e):
                self.vectors_skipped += 1
                s = np.full_like(s, -1.0)
            spans = [(e - int(self.bank.length[t]) + 1, e + 1) for t in best[i]]
            events += self._update(s, spans)
            if self.room is not None:
                self._learn(s)
        return events

    def _learn(self, s: np.ndarray) -> None:
        """The room's part of one vector: peaks below threshold kept, time counted, thresholds
        moved at each update, saved now and then."""
        found = self._peaks.push(s)
        if found is not None:
            for k, p in zip(*found[:2]):
                if p < self._thr[k]:
                    self.room.observe(int(k), float(p))
        # time counts where there is sound to score: a quiet room must not lower its thresholds
        if s[0] > -1.0 and self.room.listened(1):
            self._thr = self.room.current()
        if self.room_path is not None:
            self._since_save += 1
            if self._since_save * self.frontend.hop >= self.config.room_save_s * SAMPLE_RATE:
                self._since_save = 0
                try:
                    self.save_room()
                except OSError:
                    pass                     # a full or read-only disk must not stop detection

    def flush(self) -> List[Detection]:
        """End of stream: report a keyword whose score was still rising at the last vector."""
        return [self._event(k, s, span) for k, s, span in self._firing.flush(self._thr)]

    def detect(self, audio: np.ndarray) -> List[Detection]:
        """Every detection in a whole recording (the same events as streaming it).

        Args:
            audio: float32 16 kHz mono samples.
        Returns:
            The detections, in time order. The detector is reset before and after.
        """
        self.reset()
        events = self.process(audio) + self.flush()
        self.reset()
        return events

    def best_scores(self, clip: np.ndarray, pad_s: Optional[float] = None) -> np.ndarray:
        """Each keyword's best score anywhere in a clip, padded with ``pad_s`` of silence on both
        sides (default: the model's template padding; no VAD, no threshold): (K,) float32, in the
        order of ``self.keywords``."""
        pad_s = self.model.pad_s if pad_s is None else pad_s
        v = source_vectors(self.model.vectors, clip, trim=False, pad_s=pad_s)
        if v.shape[0] == 0:
            return np.full(len(self._names), -1.0, np.float32)
        return Matcher(self.bank).scores(v).max(axis=0)

    # ------------------------------------------------------------------ internals
    def _speech(self, e: int) -> bool:
        if self._vad is None:
            return True
        a, b = self.frontend.samples(max(0, e - self.bank.longest + 1), e + 1)
        return self._vad.speech_fraction(a // _VAD_SLOT, b // _VAD_SLOT) >= self.config.vad_min_speech

    def _update(self, scores: np.ndarray, spans) -> List[Detection]:
        """One vector's scores -> the events it completes (kws.spot.events.Firing)."""
        return [self._event(k, s, span) for k, s, span in self._firing.push(scores, spans, self._thr)]

    def _event(self, k: int, score: float, span: Tuple[int, int]) -> Detection:
        """Where the word lies: the template's vectors heard it from ``pad_s - trim * 80 ms`` after
        the first one's start to ``pad_s - trim_end * 80 ms`` before the last one's end
        (kws.spot.templates.cut)."""
        a, b = (v - self._offset for v in self.frontend.samples(*span))
        hop = self.frontend.hop / SAMPLE_RATE
        start = max(0.0, a / SAMPLE_RATE + self.model.pad_s - self.model.trim * hop)
        end = max(start, b / SAMPLE_RATE - (self.model.pad_s - self.model.trim_end * hop))
        return Detection(self._names[k], score, float(self._thr[k]), start, end)


def max_scores(detector: Detector, audio: np.ndarray, pad_s: Optional[float] = None) -> np.ndarray:
    """Best score of each keyword anywhere in a clip (clip-level evaluation)."""
    return detector.best_scores(audio, pad_s)

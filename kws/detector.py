"""Streaming keyword detector: PCM chunks in, one :class:`Detection` per spoken keyword out.

    from kws import Detector, KeywordSet
    det = Detector(KeywordSet.load(store_dir))      # or Detector.from_texts(["hey computer"])
    for chunk in stream:                             # float32 16 kHz mono, any chunk size
        for event in det.process(chunk):
            print(event.keyword, event.score, event.start, event.end)
    det.flush()                                      # at the end of a file

The bundle's front end (kws.frontend) turns audio into frames (speech-embedding vectors every
80 ms, or log-mel frames every 10 ms for older bundles) kept in a ring buffer. Every hop
(``hop_s``, rounded to whole frames) the windows of the window plan (kws.windows) ending there
are embedded in one onnxruntime call per length; each keyword's score is the best cosine over the
window lengths it uses. A keyword fires at a local peak of its score above its threshold, then
stays quiet for ``refractory_s``. With ``vad`` on, hops whose longest window holds too little
speech (webrtcvad) skip the encoder. The result does not depend on how the audio is chunked.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from kws.bundle import Bundle
from kws.frontend import SAMPLE_RATE
from kws.audio import AudioError
from kws.errors import UsageError
from kws.keywords import Keyword, KeywordSet, OtherModelError, max_per_keyword
from kws.ringbuffer import RingBuffer
from kws.windows import WindowPlan, frames_in, make_plan, spoken_duration


_SLICE = 16000      # samples handled at a time, so long chunks never overrun the ring buffers
_VAD_SLOT = 160     # samples per webrtcvad decision (10 ms)


@dataclass(frozen=True)
class DetectorConfig:
    """Detector settings; the defaults are the shipped ones.

    ``window_s``: None lets the window plan size each keyword's windows to its expected duration
    (speech-embedding models) or use 0.3/0.6/0.9 s (log-mel models); given, the lengths (log-mel)
    or word durations (speech-embedding) to use for every keyword."""

    hop_s: float = 0.15              # rounded to whole frames: 0.16 s on 80 ms frames
    window_s: Optional[Tuple[float, ...]] = None
    refractory_s: float = 1.0
    vad: bool = True
    vad_mode: int = 2
    vad_min_speech: float = 0.1      # fraction of 10 ms slots in the window that must be speech
    # a speech slot must also stand this far above the noise floor (kws.vad); None: webrtcvad only
    vad_noise_margin_db: Optional[float] = 4.0
    variant: str = "int8"            # model variant: int8 or fp32
    max_batch: int = 64              # windows per onnxruntime call in offline scoring (window_scores)

    def __post_init__(self):
        if self.hop_s <= 0 or (self.window_s is not None and (not self.window_s or min(self.window_s) < 0.05)):
            raise UsageError("hop_s must be > 0 and window lengths >= 0.05 s")


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


@dataclass
class _Track:
    prev: float = -2.0
    prev_window: Tuple[int, int] = (0, 0)
    rising: bool = False
    quiet_until: int = -1            # frame index before which the keyword may not fire


def keyword_durations(keywords: KeywordSet) -> List[Optional[float]]:
    """Each keyword's expected spoken duration: as enrolled, else from its phoneme count."""
    out: List[Optional[float]] = []
    for k in keywords:
        d = getattr(k, "duration", None)
        if d is None and k.phonemes:
            d = spoken_duration(k.phonemes.split())
        out.append(d)
    return out


class Detector:
    def __init__(self, keywords: KeywordSet, bundle: Optional[Bundle] = None,
                 config: DetectorConfig = DetectorConfig()):
        if len(keywords) == 0:
            raise UsageError("no keywords to detect: enroll some first (python -m kws.enroll add ...)")
        self.config = config
        self.bundle = bundle or Bundle.load(variant=config.variant)
        if keywords.model_id != self.bundle.model_id:
            raise OtherModelError(f"keywords were made for model {keywords.model_id!r}, not "
                             f"{self.bundle.model_id!r}: re-enroll them")
        self.keywords = keywords
        self.frontend = self.bundle.frontend
        self._mat, self._owner, self._thr = keywords.matrix()
        self._names = keywords.names
        self.plan: WindowPlan = make_plan(self.frontend, config.hop_s, config.window_s,
                                          keyword_durations(keywords))
        self._refractory = frames_in(self.frontend, config.refractory_s)
        self.reset()
        # statistics for benchmarks
        self.hops = 0
        self.hops_skipped = 0

    @classmethod
    def from_texts(cls, texts: Sequence[str], threshold: Optional[float] = None,
                   bundle: Optional[Bundle] = None, config: DetectorConfig = DetectorConfig(),
                   tts: bool = True) -> "Detector":
        """Detector for typed keywords.

        Args:
            texts: the keywords (words or phrases; any spelling: unknown words are pronounced
                by the fallback G2P).
            threshold: one threshold for all; None: each keyword's default, set for
                kws.calibration.DEFAULT_FA_PER_HOUR expected false alarms an hour.
            bundle: the model (default: the shipped one).
            config: detector settings.
            tts: join TTS renderings to the text vectors where a TTS engine is installed
                (kws.anchors; about a second per keyword).
        """
        from kws.anchors import keyword_vector
        from kws.phonemes import pronounce
        from kws.thresholds import background_threshold

        from kws.calibration import TEXT_ONLY_FA_PER_HOUR

        bundle = bundle or Bundle.load(variant=config.variant)
        ks = KeywordSet(bundle.model_id)
        for t in texts:
            pron = pronounce(t)
            v, n_tts = keyword_vector(bundle, pron, " ".join(pron.words) if pron.words else t, tts=tts)
            dur = spoken_duration(pron.phonemes)
            rate = None
            if n_tts == 0 and threshold is None:
                rate = TEXT_ONLY_FA_PER_HOUR
                if tts:
                    import warnings

                    warnings.warn(f"no TTS engine installed: {t!r} is matched by its text alone, less "
                                  f"accurately (threshold set for {rate:g} false alarms an hour); "
                                  f"install espeak-ng (apt-get install espeak-ng) for better keywords")
            thr = threshold if threshold is not None else background_threshold(bundle, v[None], dur, rate)
            ks.add(Keyword(name=t, vectors=v[None], threshold=thr, text=t, source="text",
                           phonemes=" ".join(pron.phonemes), duration=dur))
        return cls(ks, bundle, config)

    @property
    def last_scores(self) -> Dict[str, float]:
        """Each keyword's score at the latest hop (-1 where the VAD skipped it), for live views."""
        return {n: float(tr.prev) for n, tr in zip(self._names, self._tracks)}

    def reset(self) -> None:
        """Forget the stream: the next chunk starts at time 0."""
        cfg, fe = self.config, self.frontend
        self._stream = fe.stream()
        slice_frames = _SLICE // fe.hop + 2
        self._ring = RingBuffer(self.plan.longest + slice_frames + 4 * self.plan.hop, fe.dim)
        self._vad = None
        if cfg.vad:
            from kws.vad import StreamingVad

            slots = fe.samples(0, self._ring.capacity)[1] // _VAD_SLOT + 8
            self._vad = StreamingVad(cfg.vad_mode, capacity_slots=slots,
                                     noise_margin_db=cfg.vad_noise_margin_db)
        self._tracks = [_Track() for _ in self._names]
        self._next_hop = self.plan.hop

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
        frames = self._stream.push(chunk)
        events: List[Detection] = []
        end_total = self._ring.total + frames.shape[0]
        # push frame blocks so that every due hop still finds its windows in the ring
        pos = 0
        while self._next_hop <= end_total:
            take = self._next_hop - self._ring.total
            if take > 0:
                self._ring.push(frames[pos:pos + take])
                pos += take
            events += self._update(*self._hop_scores(self._next_hop))
            self._next_hop += self.plan.hop
        if pos < frames.shape[0]:
            self._ring.push(frames[pos:])
        return events

    def flush(self) -> List[Detection]:
        """End of stream: report a keyword whose score was still rising at the last hop."""
        events = []
        for k, tr in enumerate(self._tracks):
            if tr.rising and tr.prev >= self._thr[k]:
                events.append(self._event(k, tr.prev, tr.prev_window))
            self._tracks[k] = _Track()
        return events

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

    def best_scores(self, clip: np.ndarray) -> np.ndarray:
        """Each keyword's best score anywhere in a clip (no VAD, no threshold).

        Args:
            clip: float32 16 kHz mono samples, e.g. one spoken word with a little silence.
        Returns:
            (K,) float32, in the order of ``self.keywords``.
        """
        return max_scores(self, clip)

    # ------------------------------------------------------------------ internals
    def _speech(self, end: int) -> bool:
        if self._vad is None:
            return True
        a, b = self.frontend.samples(max(0, end - self.plan.longest), end)
        return self._vad.speech_fraction(a // _VAD_SLOT, b // _VAD_SLOT) >= self.config.vad_min_speech

    def _hop_scores(self, e: int):
        """Best window score of each keyword for the hop ending at frame ``e``.

        One encoder call per window length and hop, never across hops: int8 models quantise
        activations per call, so batching hops together would make scores depend on chunking.
        """
        self.hops += 1
        k = len(self._names)
        if not self._speech(e):
            self.hops_skipped += 1
            return np.full(k, -1.0, dtype=np.float32), [(e, e)] * k
        scores, lens = _window_scores_at(self.bundle, self._ring.get, e, self.plan, self._mat,
                                         self._owner, k)
        arg = scores.argmax(axis=0)
        return scores.max(axis=0), [(e - lens[a], e) for a in arg]

    def _update(self, scores: np.ndarray, windows) -> List[Detection]:
        events = []
        for k, tr in enumerate(self._tracks):
            s = float(scores[k])
            if tr.rising and s < tr.prev and tr.prev >= self._thr[k] and windows[k][1] >= tr.quiet_until:
                events.append(self._event(k, tr.prev, tr.prev_window))
                tr.quiet_until = tr.prev_window[1] + self._refractory
            tr.rising = s > tr.prev or (tr.rising and s == tr.prev)
            tr.prev = s
            tr.prev_window = windows[k]
        return events

    def _event(self, k: int, score: float, window: Tuple[int, int]) -> Detection:
        start, end = self.frontend.word_times(*window)
        return Detection(self._names[k], score, float(self._thr[k]), start, end)


def _hop_lengths(plan: WindowPlan, e: int) -> Tuple[List[int], np.ndarray]:
    """Window lengths embedded at the hop ending at frame ``e`` and the (K, n) mask of which
    keyword scores which. A keyword none of whose lengths fit yet scores every length that fits;
    before any fits, the frames so far form one window for every keyword."""
    fit = [j for j, L in enumerate(plan.lengths) if e - L >= 0]
    if not fit:
        return [e], np.ones((plan.use.shape[0], 1), bool)
    use = plan.use[:, fit].copy()
    use[~use.any(axis=1)] = True
    return [plan.lengths[j] for j in fit], use


def _masked(scores: np.ndarray, use: np.ndarray) -> np.ndarray:
    """(n, K) window scores -> the same with -1 where a keyword does not use that window."""
    out = scores.copy()
    out[~use.T] = -1.0
    return out


def _window_scores_at(bundle: Bundle, get, e: int, plan: WindowPlan, mat, owner, k: int):
    """(n, K) scores of the windows ending at frame ``e`` and their lengths (see _hop_lengths)."""
    lens, use = _hop_lengths(plan, e)
    first = get(e - lens[-1], e)
    x = np.zeros((len(lens), lens[-1], first.shape[1]), dtype=np.float32)
    for i, L in enumerate(lens):
        x[i, :L] = first[lens[-1] - L:]
    s = max_per_keyword(bundle.embed_frames(x, np.array(lens)) @ mat.T, owner, k)
    return _masked(s, use), lens


def detect_audio(detector: Detector, audio: np.ndarray) -> List[Detection]:
    """Offline detection over a whole recording (same events as streaming it)."""
    return detector.detect(audio)


def max_scores(detector: Detector, audio: np.ndarray, pad_s: Optional[Tuple[float, float]] = None) -> np.ndarray:
    """Best score of each keyword anywhere in a clip (used for clip-level evaluation and tuning).

    The clip is padded with silence (``pad_s``, before and after; default: enough for every
    window to centre on it) and scored at every hop, without VAD gating.
    """
    fe = detector.frontend
    if pad_s is None:
        pad_s = (0.3, 0.3) if fe.kind == "logmel" else (0.8, 0.4)
    x = np.concatenate([np.zeros(int(pad_s[0] * SAMPLE_RATE), np.float32), np.asarray(audio, dtype=np.float32),
                        np.zeros(int(pad_s[1] * SAMPLE_RATE), np.float32)])
    return window_scores(detector.bundle, detector.keywords, x, detector.config, detector.plan).max(axis=0)


def window_scores(bundle: Bundle, keywords: KeywordSet, audio: np.ndarray,
                  config: DetectorConfig = DetectorConfig(), plan: Optional[WindowPlan] = None) -> np.ndarray:
    """(hops, K) best-window score of every keyword at every hop over a recording (no VAD):
    the scores streaming gives, computed in batches of windows of one length."""
    fe = bundle.frontend
    plan = plan or make_plan(fe, config.hop_s, config.window_s, keyword_durations(keywords))
    frames = fe.frames(audio)
    if frames.shape[0] == 0:
        frames = np.zeros((1, fe.dim), np.float32)
    mat, owner, _ = keywords.matrix()
    k = len(keywords)
    ends = list(range(plan.hop, frames.shape[0] + 1, plan.hop)) or [frames.shape[0]]
    hop_plan = [_hop_lengths(plan, e) for e in ends]
    by_len: Dict[int, List[int]] = {}
    for h, (lens, _) in enumerate(hop_plan):
        for L in lens:
            by_len.setdefault(L, []).append(h)
    raw: Dict[Tuple[int, int], np.ndarray] = {}
    for L, hops in by_len.items():
        for s in range(0, len(hops), config.max_batch):
            part = hops[s:s + config.max_batch]
            x = np.stack([frames[ends[h] - L:ends[h]] for h in part])
            sc = max_per_keyword(bundle.embed_frames(x, np.full(len(part), L)) @ mat.T, owner, k)
            for h, row in zip(part, sc):
                raw[(h, L)] = row
    out = np.full((len(ends), k), -1.0, dtype=np.float32)
    for h, (lens, use) in enumerate(hop_plan):
        out[h] = _masked(np.stack([raw[(h, L)] for L in lens]), use).max(axis=0)
    return out

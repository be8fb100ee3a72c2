"""Streaming keyword detector: PCM chunks in, one :class:`Detection` per spoken keyword out.

    from kws import Detector, KeywordSet
    det = Detector(KeywordSet.load(store_dir))      # or Detector.from_texts(["hey computer"])
    for chunk in stream:                             # float32 16 kHz mono, any chunk size
        for event in det.process(chunk):
            print(event.keyword, event.score, event.start, event.end)
    det.flush()                                      # at the end of a file

Every ``hop_s`` the windows of ``window_s`` lengths ending at that moment are cut from a ring
buffer of log-mel frames and embedded in one onnxruntime call per hop; each keyword's score is the
best cosine over the windows. A keyword fires at a local peak of its score above its threshold,
then stays quiet for ``refractory_s``. With ``vad`` on, hops whose longest window holds no speech
(webrtcvad) skip the encoder. The result does not depend on how the audio is chunked.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from kws.bundle import Bundle
from kws.features import MelConfig, StreamingLogMel, num_frames
from kws.keywords import Keyword, KeywordSet, max_per_keyword
from kws.ringbuffer import RingBuffer


_SLICE = 16000      # samples handled at a time, so long chunks never overrun the ring buffers


@dataclass(frozen=True)
class DetectorConfig:
    hop_s: float = 0.15
    window_s: Tuple[float, ...] = (0.3, 0.6, 0.9)    # 5 lengths (every 0.15 s) cost 1.6x, FA/h higher
    refractory_s: float = 1.0
    vad: bool = True
    vad_mode: int = 2
    vad_min_speech: float = 0.1      # fraction of 10 ms slots in the window that must be speech
    # a speech slot must also stand this far above the noise floor (kws.vad); None: webrtcvad only
    vad_noise_margin_db: Optional[float] = 4.0
    variant: str = "int8"            # model variant: int8 or fp32
    max_batch: int = 64              # windows per onnxruntime call in offline scoring (window_scores)
    # Two-stage scoring: each hop first embeds one probe window; only when some keyword's probe
    # score comes within probe_margin of its threshold are the other windows embedded too.
    # None: always embed every window. (benchmarks/rtf.py measures speed and accuracy.)
    probe_window_s: Optional[float] = None
    probe_margin: float = 0.1

    def __post_init__(self):
        if self.hop_s <= 0 or not self.window_s or min(self.window_s) < 0.05:
            raise ValueError("hop_s must be > 0 and window lengths >= 0.05 s")
        if self.probe_window_s is not None and self.probe_window_s not in self.window_s:
            raise ValueError("probe_window_s must be one of window_s")


@dataclass(frozen=True)
class Detection:
    keyword: str
    score: float
    threshold: float
    start: float      # seconds from the start of the stream
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


class Detector:
    def __init__(self, keywords: KeywordSet, bundle: Optional[Bundle] = None,
                 config: DetectorConfig = DetectorConfig()):
        if len(keywords) == 0:
            raise ValueError("no keywords to detect: enroll some first (python -m kws.enroll add ...)")
        self.config = config
        self.bundle = bundle or Bundle.load(variant=config.variant)
        if keywords.model_id != self.bundle.model_id:
            raise ValueError(f"keywords were made for model {keywords.model_id!r}, not "
                             f"{self.bundle.model_id!r}: re-enroll them")
        self.keywords = keywords
        self._mat, self._owner, self._thr = keywords.matrix()
        self._names = keywords.names
        mel = MelConfig()
        self._hop_frames = max(1, int(round(config.hop_s * mel.sample_rate / mel.hop_length)))
        self._win_frames = sorted({max(1, num_frames(int(round(w * mel.sample_rate)))) for w in config.window_s})
        self._max_win = self._win_frames[-1]
        self._probe = (None if config.probe_window_s is None else
                       max(1, num_frames(int(round(config.probe_window_s * mel.sample_rate)))))
        self._refractory = int(round(config.refractory_s * mel.sample_rate / mel.hop_length))
        self.reset()
        # statistics for benchmarks
        self.hops = 0
        self.hops_skipped = 0
        self.hops_full = 0           # hops that embedded every window (two-stage scoring)

    @classmethod
    def from_texts(cls, texts: Sequence[str], threshold: Optional[float] = None,
                   bundle: Optional[Bundle] = None, config: DetectorConfig = DetectorConfig()) -> "Detector":
        """Detector for plain text keywords, thresholds from the bundle's calibration."""
        from kws.thresholds import background_threshold

        bundle = bundle or Bundle.load(variant=config.variant)
        ks = KeywordSet(bundle.model_id)
        for t in texts:
            v = bundle.embed_text(t)
            thr = threshold if threshold is not None else background_threshold(bundle, v[None])
            ks.add(Keyword(name=t, vectors=v[None], threshold=thr, text=t, source="text"))
        return cls(ks, bundle, config)

    @property
    def last_scores(self) -> Dict[str, float]:
        """Each keyword's score at the latest hop (-1 where the VAD skipped it), for live views."""
        return {n: float(tr.prev) for n, tr in zip(self._names, self._tracks)}

    def reset(self) -> None:
        cfg = self.config
        self._mel = StreamingLogMel()
        # holds the longest window plus one slice of frames (process() works in 1 s slices)
        self._ring = RingBuffer(self._max_win + _SLICE // MelConfig().hop_length + 4 * self._hop_frames,
                                MelConfig().n_mels)
        self._vad = None
        if cfg.vad:
            from kws.vad import StreamingVad

            self._vad = StreamingVad(cfg.vad_mode, capacity_slots=self._ring.capacity,
                                     noise_margin_db=cfg.vad_noise_margin_db)
        self._tracks = [_Track() for _ in self._names]
        self._next_hop = self._hop_frames

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
            raise ValueError("audio chunk contains NaN or infinite samples")
        if self._vad is not None:
            self._vad.push(chunk)
        frames = self._mel.push(chunk)
        events: List[Detection] = []
        due: List[int] = []
        end_total = self._ring.total + frames.shape[0]
        # push frame by frame-blocks so that every due hop still finds its windows in the ring
        pos = 0
        while self._next_hop <= end_total:
            take = self._next_hop - self._ring.total
            if take > 0:
                self._ring.push(frames[pos:pos + take])
                pos += take
            due.append(self._next_hop)
            self._next_hop += self._hop_frames
        if due:
            events += self._run_hops(due)
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

    # ------------------------------------------------------------------ internals
    def _speech(self, end: int) -> bool:
        if self._vad is None:
            return True
        return self._vad.speech_fraction(end - self._max_win, end - 1) >= self.config.vad_min_speech

    def _run_hops(self, ends: List[int]) -> List[Detection]:
        events = []
        for e in ends:
            events += self._update(*self._hop_scores(e))
        return events

    def _hop_scores(self, e: int):
        """Best window score of each keyword for the hop ending at frame ``e``.

        One encoder call per hop, never across hops: int8 models quantise activations per call,
        so batching several hops together would make scores depend on how audio was chunked.
        """
        self.hops += 1
        k = len(self._names)
        if not self._speech(e):
            self.hops_skipped += 1
            return np.full(k, -1.0, dtype=np.float32), [(e, e)] * k
        lens = [L for L in self._win_frames if e - L >= 0] or [e]
        probe = None
        if self._probe is not None and self._probe in lens and len(lens) > 1:
            x = self._ring.get(e - self._probe, e)[None]
            probe = max_per_keyword(self.bundle.embed_mel(x, np.array([self._probe])) @ self._mat.T,
                                    self._owner, k)[0]
            if np.all(probe < self._thr - self.config.probe_margin):
                return probe, [(e - self._probe, e)] * k
            lens = [L for L in lens if L != self._probe]
        self.hops_full += 1
        x = np.zeros((len(lens), lens[-1], self._ring.dim), dtype=np.float32)
        for i, L in enumerate(lens):
            x[i, :L] = self._ring.get(e - L, e)
        s = max_per_keyword(self.bundle.embed_mel(x, np.array(lens)) @ self._mat.T, self._owner, k)
        if probe is not None:
            s = np.vstack([s, probe[None]])
            lens = lens + [self._probe]
        arg = s.argmax(axis=0)
        return s.max(axis=0), [(e - lens[a], e) for a in arg]

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
        hop = MelConfig().hop_length / MelConfig().sample_rate
        win = MelConfig().win_length / MelConfig().sample_rate
        start, end = window
        return Detection(self._names[k], score, float(self._thr[k]), start * hop, (end - 1) * hop + win)


def detect_audio(detector: Detector, audio: np.ndarray) -> List[Detection]:
    """Offline detection over a whole recording (same events as streaming it)."""
    detector.reset()
    return detector.process(audio) + detector.flush()


def max_scores(detector: Detector, audio: np.ndarray, pad_s: float = 0.3) -> np.ndarray:
    """Best score of each keyword anywhere in a clip (used for clip-level evaluation and tuning).

    The clip is padded with ``pad_s`` of silence each side so that windows can centre on it.
    VAD gating is not applied.
    """
    pad = np.zeros(int(pad_s * 16000), dtype=np.float32)
    x = np.concatenate([pad, np.asarray(audio, dtype=np.float32), pad])
    return window_scores(detector.bundle, detector.keywords, x, detector.config).max(axis=0)


def window_scores(bundle: Bundle, keywords: KeywordSet, audio: np.ndarray,
                  config: DetectorConfig = DetectorConfig()) -> np.ndarray:
    """(hops, K) best-window score of every keyword at every hop over a recording."""
    from kws.features import LogMel

    mel = LogMel()(audio)
    cfg = MelConfig()
    hop = max(1, int(round(config.hop_s * cfg.sample_rate / cfg.hop_length)))
    wins = sorted({max(1, num_frames(int(round(w * cfg.sample_rate)))) for w in config.window_s})
    ends = list(range(hop, mel.shape[0] + 1, hop)) or [mel.shape[0]]
    segs, owner = [], []
    for h, e in enumerate(ends):
        for L in wins:
            if e - L >= 0:
                segs.append(mel[e - L:e])
                owner.append(h)
        if not any(o == h for o in owner[-len(wins):]):
            segs.append(mel[:e])
            owner.append(h)
    out = np.full((len(ends), len(keywords)), -1.0, dtype=np.float32)
    owner = np.array(owner)
    for s in range(0, len(segs), config.max_batch):
        part = segs[s:s + config.max_batch]
        T = max(p.shape[0] for p in part)
        x = np.zeros((len(part), T, cfg.n_mels), dtype=np.float32)
        for i, p in enumerate(part):
            x[i, :p.shape[0]] = p
        sc = keywords.scores(bundle.embed_mel(x, np.array([max(1, p.shape[0]) for p in part])))
        for i, row in enumerate(sc):
            h = owner[s + i]
            out[h] = np.maximum(out[h], row)
    return out

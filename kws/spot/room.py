"""Thresholds that learn the room: each keyword's threshold moves toward its false-alarm target
where the detector actually listens.

A keyword's threshold is first set on the model's background bank (kws.enroll.thresholds): the bank's
highest score peaks, modelled as an exponential tail, give the score at which the keyword is
expected to fire ``r`` times an hour. Where people talk differently from the bank (other voices,
other phrases said again and again, a television) the same threshold can give ten times the
target or a tenth of it. So the detector also listens to the room:

- **What it keeps.** Each keyword's score peaks that stay *below* its threshold (peaks as the one
  event rule counts them, :func:`kws.spot.events.peaks`: local maxima reached by a rise, each the
  highest within the refractory time on either side), as a histogram, and the hours listened to
  sound (time the VAD skips does not count: a room that is mostly quiet must not lower its
  thresholds for the hour someone talks).
  Events it fired on are never kept, so a keyword said often is not adapted away.
- **What it fits.** The room's tail is taken to have the bank's shape (its scale ``beta``) at a
  level of its own: the room gives ``rho`` times the bank's rate at every score. ``rho`` is read
  from the peaks the room gave in a window just below the lowest threshold the keyword has had
  since it started learning (every peak there was kept, whatever the threshold did since):
  ``rho = (n + a) / (E + a)``, with ``n`` the peaks counted there, ``E`` the count the bank's tail
  expects over the same hours and ``a`` (``prior_peaks``) a few peaks of prior belief in the bank,
  so that little evidence moves little. The threshold for the target ``r`` is then the bank
  tail's threshold for ``r / rho``.
- **How it moves.** Toward that threshold at most ``max_step`` at each update (every
  ``update_s`` of audio), never before ``min_minutes`` of listening, and never outside
  ``[bank - bound, bank + bound]`` nor below the floor that the keyword's confusions set at
  enrollment (``tuned_on["floor"]``). Older evidence fades with a half-life of ``half_life_h``
  hours, so a room that changes is followed.
- **Where it is kept.** :class:`RoomState` is saved as ``room.json`` beside the keyword store
  (atomic writes), so a restart keeps what was learnt; an entry belongs to one keyword's
  utterances and target (a re-enrolled keyword starts afresh).

:class:`Room` is what the detector drives (kws.spot.detector); ``DetectorConfig(adapt=AdaptConfig(
enabled=False))`` (``--no-adapt`` on the command line) turns it off.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

import numpy as np

ROOM_FILE = "room.json"
ROOM_VERSION = 1
HOP_S = 0.08                  # seconds of audio a front-end vector stands for


@dataclass(frozen=True)
class AdaptConfig:
    """How thresholds learn the room; the defaults are the shipped ones."""

    enabled: bool = True
    bound: float = 0.10           # the threshold stays within the bank's threshold +- bound
    window: float = 0.05          # peaks counted in [c - window, c), c the lowest threshold so far
    prior_peaks: float = 3.0      # peaks of prior belief in the bank's level
    max_step: float = 0.01        # most a threshold moves at one update
    update_s: float = 60.0        # audio between updates
    min_minutes: float = 5.0      # no move before this much listening
    half_life_h: float = 4.0      # evidence older than this counts half
    bin_width: float = 0.0025     # histogram resolution of the kept peaks

    def __post_init__(self):
        if not (self.bound >= 0 and self.window > 0 and self.prior_peaks > 0 and self.max_step > 0
                and self.update_s > 0 and self.min_minutes >= 0 and self.half_life_h > 0 and self.bin_width > 0):
            from kws.errors import UsageError

            raise UsageError("AdaptConfig: bound, min_minutes >= 0 and the other settings > 0")


def keyword_key(kw) -> str:
    """What a learnt entry belongs to: the keyword's utterances and its false-alarm target."""
    h = hashlib.sha256(np.ascontiguousarray(kw.vectors, np.float32).tobytes())
    h.update(json.dumps([kw.segments, (kw.tuned_on or {}).get("target_per_hour")]).encode())
    return h.hexdigest()[:16]


@dataclass
class KeywordRoom:
    """One keyword's learnt state."""

    key: str
    bank: float                   # the threshold the bank gave
    target: float                 # false alarms an hour wanted
    tail: Dict[str, float]        # the bank tail: u, beta, m, hours
    lo: float                     # lower edge of the histogram
    counts: List[float] = field(default_factory=list)   # kept peaks per bin (faded)
    hours: float = 0.0            # hours listened (faded)
    listened_h: float = 0.0       # hours listened in all (not faded)
    lowest: float = math.inf      # lowest threshold since learning began
    threshold: Optional[float] = None   # the learnt threshold (None: the bank's)
    floor: Optional[float] = None

    def to_json(self) -> dict:
        return {"key": self.key, "bank": self.bank, "target": self.target, "tail": self.tail,
                "lo": self.lo, "counts": [round(c, 4) for c in self.counts], "hours": self.hours,
                "listened_h": self.listened_h, "lowest": None if math.isinf(self.lowest) else self.lowest,
                "threshold": self.threshold, "floor": self.floor}

    @classmethod
    def from_json(cls, d: dict) -> "KeywordRoom":
        return cls(key=str(d["key"]), bank=float(d["bank"]), target=float(d["target"]),
                   tail={k: float(v) for k, v in d["tail"].items()}, lo=float(d["lo"]),
                   counts=[float(c) for c in d["counts"]], hours=float(d["hours"]),
                   listened_h=float(d.get("listened_h", d["hours"])),
                   lowest=math.inf if d.get("lowest") is None else float(d["lowest"]),
                   threshold=None if d.get("threshold") is None else float(d["threshold"]),
                   floor=None if d.get("floor") is None else float(d["floor"]))


def _bank_rate(tail: Dict[str, float], t: float) -> float:
    """False alarms an hour the bank's exponential tail gives at ``t`` (extended below u)."""
    return tail["m"] / tail["hours"] * math.exp(-(t - tail["u"]) / tail["beta"])


def _bank_threshold(tail: Dict[str, float], rate: float) -> float:
    return tail["u"] + tail["beta"] * math.log(tail["m"] / (rate * tail["hours"]))


class Room:
    """The learning state of a detector's keywords: fed each keyword's peaks below threshold and
    the time listened, it moves the thresholds (:meth:`current`)."""

    def __init__(self, entries: Sequence[KeywordRoom], config: AdaptConfig = AdaptConfig()):
        self.config = config
        self.entries = list(entries)
        for e in self.entries:
            self._fit_hist(e)
        self._since_update = 0.0

    # ------------------------------------------------------------------ making
    @classmethod
    def for_keywords(cls, model, keywords, config: AdaptConfig = AdaptConfig(),
                     saved: Optional["RoomState"] = None) -> "Room":
        """Entries for ``keywords`` (a KeywordSet): taken from ``saved`` where it holds the same
        keyword, else new (the bank tail read from the keyword's enrollment record, or fitted
        now on the model's bank)."""
        entries = []
        for kw in keywords:
            key = keyword_key(kw)
            old = saved.entries.get(kw.name) if saved is not None else None
            if old is not None and old.key == key and abs(old.bank - float(kw.threshold)) < 1e-6:
                entries.append(old)
                continue
            entries.append(new_entry(model, kw, key, config))
        return cls(entries, config)

    def _fit_hist(self, e: KeywordRoom) -> None:
        top = e.bank + self.config.bound
        n = int(math.ceil((top - e.lo) / self.config.bin_width)) + 1
        if len(e.counts) != n:
            e.counts = (list(e.counts) + [0.0] * n)[:n]

    # ------------------------------------------------------------------ learning
    def current(self) -> np.ndarray:
        """Each keyword's threshold now."""
        return np.array([e.bank if e.threshold is None else e.threshold for e in self.entries], np.float32)

    def observe(self, k: int, peak: float) -> None:
        """A peak of keyword ``k``'s score that stayed below its threshold."""
        e = self.entries[k]
        if peak < e.lo:
            return
        i = int((peak - e.lo) / self.config.bin_width)
        if i < len(e.counts):
            e.counts[i] += 1.0

    def listened(self, vectors: int) -> bool:
        """``vectors`` more front-end vectors heard; returns True when the thresholds were updated
        (every ``update_s`` of audio: the hours are added, old evidence fades, thresholds move)."""
        self._since_update += vectors * HOP_S
        if self._since_update < self.config.update_s:
            return False
        h = self._since_update / 3600.0
        self._since_update = 0.0
        fade = 0.5 ** (h / self.config.half_life_h)
        for e in self.entries:
            e.hours = e.hours * fade + h
            e.listened_h += h
            e.counts = [c * fade for c in e.counts]
            self._update(e)
        return True

    def _bounds(self, e: KeywordRoom):
        lo = e.bank - self.config.bound
        if e.floor is not None:
            lo = max(lo, e.floor)
        return lo, e.bank + self.config.bound

    def estimate(self, e: KeywordRoom) -> Optional[float]:
        """The threshold the room's peaks call for (bounded), or None before enough listening."""
        cfg = self.config
        if e.listened_h * 60.0 < cfg.min_minutes:
            return None
        t_now = e.bank if e.threshold is None else e.threshold
        c = min(e.lowest, t_now)
        a = c - cfg.window
        i0 = max(0, int(math.floor((a - e.lo) / cfg.bin_width)))
        i1 = max(0, int(math.floor((c - e.lo) / cfg.bin_width)))      # bins wholly below c
        n = float(sum(e.counts[i0:i1]))
        a_edge, c_edge = e.lo + i0 * cfg.bin_width, e.lo + i1 * cfg.bin_width
        expected = e.hours * (_bank_rate(e.tail, a_edge) - _bank_rate(e.tail, c_edge))
        rho = (n + cfg.prior_peaks) / (max(expected, 0.0) + cfg.prior_peaks)
        want = _bank_threshold(e.tail, e.target / rho)
        # the bank's own threshold may sit above its tail's (a floor, the minimum threshold):
        # move it by the same amount as the tail's threshold moves
        want = e.bank + (want - _bank_threshold(e.tail, e.target))
        lo, hi = self._bounds(e)
        return float(min(max(want, lo), hi))

    def _update(self, e: KeywordRoom) -> None:
        want = self.estimate(e)
        if want is None:
            return
        t_now = e.bank if e.threshold is None else e.threshold
        step = max(-self.config.max_step, min(self.config.max_step, want - t_now))
        e.threshold = float(t_now + step)
        e.lowest = min(e.lowest, e.threshold, e.bank)


def new_entry(model, kw, key: Optional[str] = None, config: AdaptConfig = AdaptConfig()) -> KeywordRoom:
    """A keyword's fresh entry: its bank threshold, target and bank tail."""
    tuned = kw.tuned_on or {}
    target = tuned.get("target_per_hour")
    target = float(target) if isinstance(target, (int, float)) and target > 0 else 1.0
    tail = tuned.get("tail")
    if not (isinstance(tail, dict) and all(isinstance(tail.get(k), (int, float)) for k in ("u", "beta", "m", "hours"))):
        tail = bank_tail(model, kw, target)
    floor = tuned.get("floor")
    bank = float(kw.threshold)
    lo = bank - config.bound - config.window - 0.05
    return KeywordRoom(key=key or keyword_key(kw), bank=bank, target=target,
                       tail={k: float(tail[k]) for k in ("u", "beta", "m", "hours")}, lo=lo,
                       lowest=bank, floor=float(floor) if isinstance(floor, (int, float)) else None)


_TAILS: Dict[tuple, Dict[str, float]] = {}


def bank_tail(model, kw, target: float = 1.0) -> Dict[str, float]:
    """The keyword's tail on the model's background bank (kws.enroll.thresholds.calibrate; kept per
    process, since scoring the bank takes a second or two)."""
    from kws.enroll.thresholds import calibrate
    from kws.spot.templates import keyword_templates

    key = (model.model_id, str(model.background_file), keyword_key(kw))
    if key not in _TAILS:
        t = calibrate(model, keyword_templates(model, kw), target).tail
        _TAILS[key] = {"u": float(t.u), "beta": float(t.beta), "m": float(t.m), "hours": float(t.hours)}
    return dict(_TAILS[key])


class RoomState:
    """What was learnt, by keyword name, as saved beside a store (``room.json``)."""

    def __init__(self, model_id: str, entries: Optional[Dict[str, KeywordRoom]] = None):
        self.model_id = model_id
        self.entries: Dict[str, KeywordRoom] = dict(entries or {})

    @classmethod
    def load(cls, path: Union[str, os.PathLike], model_id: str) -> "RoomState":
        """The state saved at ``path`` (a file, or a store folder holding ``room.json``); empty
        when there is none, it is damaged, or it was learnt with another model."""
        p = Path(path)
        if p.is_dir():
            p = p / ROOM_FILE
        try:
            doc = json.loads(p.read_text(encoding="utf-8"))
            if doc.get("version") != ROOM_VERSION or doc.get("model_id") != model_id:
                return cls(model_id)
            return cls(model_id, {str(n): KeywordRoom.from_json(d) for n, d in doc["keywords"].items()})
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return cls(model_id)

    def update(self, names: Sequence[str], room: Room) -> None:
        for n, e in zip(names, room.entries):
            self.entries[n] = e

    def save(self, path: Union[str, os.PathLike]) -> Path:
        """Write atomically to ``path`` (a file, or a store folder: ``room.json`` in it)."""
        p = Path(path)
        if p.is_dir():
            p = p / ROOM_FILE
        doc = {"version": ROOM_VERSION, "model_id": self.model_id,
               "keywords": {n: e.to_json() for n, e in self.entries.items()}}
        from kws.enroll.store import _atomic_write

        p.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write(p, json.dumps(doc).encode("utf-8"))
        return p


def room_file(store, demo: bool = False) -> Path:
    """Where a store's learnt thresholds are kept: ``room.json`` in the store folder, or
    ``room-demo.json`` there for the demo keywords served when the store holds none."""
    return Path(store) / ("room-demo.json" if demo else ROOM_FILE)


def rename_learnt(store, renames: Dict[str, Optional[str]], model_id: str) -> None:
    """Keep ``room.json`` in step with the store: ``{old: new}`` moves what a keyword learnt to
    its new name, ``{old: None}`` forgets it (the keyword was removed)."""
    p = room_file(store)
    if not p.exists():
        return
    state = RoomState.load(p, model_id)
    changed = False
    for old, new in renames.items():
        e = state.entries.pop(old, None)
        if e is not None:
            changed = True
            if new is not None:
                state.entries[new] = e
    if changed:
        state.save(p)

"""The head training's configuration: the run (:class:`TrainConfig`) and each head trained in it
(:class:`Variant`), from a JSON file and ``key=value`` overrides."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import List, Optional, Sequence, Tuple, Union

from kws.spot.templates import TRIM
from kws.train.net import HeadConfig


@dataclass
class Variant:
    name: str = "c4h256"
    head: HeadConfig = field(default_factory=HeadConfig)
    alpha_clap: float = 0.1
    alpha_dwd: float = 1.0
    lr: float = 1e-3
    init: Optional[str] = None      # continue from this checkpoint's weights (head and loss parameters)
    trim_end: int = TRIM            # template vectors dropped at the end (export.model --trim-end the same)
    soft_max: float = 0.0           # validated with a keyword's templates combined so (export.model --soft-max
                                    # the same; kws.spot.templates.combine; 0: the best template's)
    teacher: Optional[str] = None   # a head's checkpoint (e.g. from-onnx of the shipped head) whose scores
    alpha_kd: float = 0.0           # between clean templates this head learns to keep (kws.train.losses)
    ema: float = 0.0                # > 0: validate and keep an exponential moving average of the weights
                                    # (this decay a step) instead of the weights themselves

    @classmethod
    def from_dict(cls, d: dict) -> "Variant":
        d = dict(d)
        return cls(head=HeadConfig.from_dict(d.pop("head", {})), **d)


@dataclass
class TrainConfig:
    corpus: str = "/tmp/kcorpus"            # kws.corpus.kokoro_corpus output
    speech: Optional[str] = None            # stage-speech output (scripts/head_scale.sh gather): index.json + audio
    other_talk: Optional[str] = None        # kws.corpus.other_voices --texts output: talk in other synthesisers' voices
    backbone: str = "kws/assets/model"            # a folder with backbone.onnx + backbone_mel.npz
    noise: Optional[str] = None
    music: Optional[Union[str, List[str]]] = None   # one file or several (joined)
    rooms: Optional[str] = None
    val: Optional[str] = None               # kws.train.head_eval validation file (npy)
    out: str = "runs/head"
    snapshots: bool = False                 # also keep the head of every validation (snap-STEP.pt, fp16)
    variants: List[Variant] = field(default_factory=lambda: [Variant()])
    words_per_batch: int = 256
    templates_per_word: int = 2
    queries_per_word: int = 2
    negatives: float = 0.35                 # negative items per positive item
    item_s: float = 4.0                     # every item padded to this (fixed shapes)
    max_word_s: float = 1.6
    template_max: int = 22                  # template vectors kept at most (the last ones)
    # word alone / in a sentence / real [/ another synthesiser's rendering alone, a fourth weight]
    p_query: Tuple[float, ...] = (0.35, 0.35, 0.3)
    # silence / rendered sentence / real speech [/ other synthesisers' talk (other_talk), a fourth weight];
    # the context around words, and the speech of speech negatives
    p_context: Tuple[float, ...] = (0.3, 0.35, 0.35)
    p_negative: Tuple[float, float, float, float] = (0.3, 0.2, 0.25, 0.25)  # prefix, suffix, speech, noise only
    cluster: float = 0.5                    # share of the batch's words drawn as neighbours, four at a time
    neighbours: str = "sound"               # "sound": a word and three closest in phonemes; "spelling": four in a row
    sound_alike: float = 0.0                # share of negative items that are runs of 1-3 sentence words sounding
                                            # like a batch word ('a light rain', 'this election' for alexa)
    p_reverb: float = 0.5
    p_rooms: float = 0.4                    # of reverberated items: a simulated room, else a synthetic tail
    rt60: Tuple[float, float] = (0.25, 2.5)
    drr_db: Tuple[float, float] = (-15.0, 10.0)
    p_reverb_after_noise: float = 0.5
    p_noise: float = 0.85
    # real, music, babble, one talker, coloured, TV (one talker over music); a config of five
    # weights (before TV) gives TV none
    noise_kinds: Tuple[float, ...] = (0.15, 0.2, 0.4, 0.15, 0.1, 0.0)
    snr_db: Tuple[float, float] = (-5.0, 20.0)
    babble_talkers: Tuple[int, int] = (2, 8)
    p_bandlimit: float = 0.1
    p_clip: float = 0.0                     # driven into clipping by 3-15 dB
    gain_db: Tuple[float, float] = (-30.0, 3.0)
    minutes: float = 8.0
    steps: int = 0                          # > 0: stop after this many steps (tests)
    warmup: float = 0.05
    weight_decay: float = 1e-2
    eval_minutes: float = 1.5
    seed: int = 0
    tf32: bool = True

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        d = dict(d)
        variants = [Variant.from_dict(v) for v in d.pop("variants", [{}])]
        unknown = set(d) - {f.name for f in fields(cls)}
        if unknown:
            raise SystemExit(f"unknown config keys: {', '.join(sorted(unknown))}")
        d = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
        if d.get("neighbours", "sound") not in ("sound", "spelling"):
            raise SystemExit(f"neighbours: 'sound' or 'spelling', not {d['neighbours']!r}")
        for key in ("p_query", "p_context"):
            if len(d.get(key, (1, 1, 1))) not in (3, 4):
                raise SystemExit(f"{key}: three or four weights, not {d[key]!r}")
        if not 0.0 <= float(d.get("sound_alike", 0.0)) <= 1.0:
            raise SystemExit(f"sound_alike: a share from 0 to 1, not {d['sound_alike']!r}")
        return cls(variants=variants, **d)

    def to_dict(self) -> dict:
        return asdict(self)


def overrides(cfg: dict, items: Sequence[str]) -> dict:
    """``key=value`` items over a config (values as JSON where they parse); a dotted key reaches
    inside: ``variants.0.init=runs/x/last.pt``."""
    for it in items:
        k, v = it.split("=", 1)
        try:
            value = json.loads(v)
        except json.JSONDecodeError:
            value = v
        *path, last = k.split(".")
        node = cfg
        for p in path:
            node = node[int(p)] if isinstance(node, list) else node.setdefault(p, {})
        node[int(last) if isinstance(node, list) else last] = value
    return cfg

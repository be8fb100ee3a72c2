"""The host side of a training batch: which words, which renderings, where every segment of every
item goes (:class:`Batcher`), and the items assembled on the device (:func:`assemble`)."""
from __future__ import annotations

from typing import List, Sequence, Tuple

import numpy as np
import torch

from kws.spot.templates import MIN_LENGTH, TRIM
from kws.train.config import TrainConfig
from kws.train.data import SR, Data


class Batcher:
    """Host side of a batch: which words, which renderings, where every segment of every item goes."""

    def __init__(self, data: Data, cfg: TrainConfig, tpl_count: np.ndarray, rng: np.random.Generator):
        self.d, self.cfg, self.rng = data, cfg, rng
        W = len(data.words)
        ok_tpl = (tpl_count - 2 * TRIM) >= MIN_LENGTH
        ok_len = data.iso_len <= cfg.max_word_s * SR
        alt = data.iso_alt if data.iso_alt is not None else np.zeros(data.iso_off.size, bool)
        # Kokoro's renderings: templates and queries; another synthesiser's: queries alone
        tpl_ok = ok_tpl & ok_len & ~alt
        self.iso_by_word = _group(data.iso_word[tpl_ok], np.flatnonzero(tpl_ok), W)
        self.alt_by_word = _group(data.iso_word[ok_len & alt], np.flatnonzero(ok_len & alt), W)
        okw = (data.occ_end - data.occ_start) <= cfg.max_word_s * SR
        self.occ_by_word = _group(data.occ_word[okw], np.flatnonzero(okw), W)
        rk = (data.rocc_word >= 0) & ((data.rocc_end - data.rocc_start) <= cfg.max_word_s * SR) & \
             ((data.rocc_end - data.rocc_start) >= 0.15 * SR)
        self.rocc_by_word = _group(data.rocc_word[rk], np.flatnonzero(rk), W)
        Nt = cfg.templates_per_word
        self.eligible = np.array([w for w in range(W) if len(self.iso_by_word[w]) >= Nt and
                                  (len(self.iso_by_word[w]) > Nt or len(self.occ_by_word[w]) or
                                   len(self.rocc_by_word[w]) or len(self.alt_by_word[w]))])
        if len(self.eligible) < 2:
            raise ValueError("fewer than two words have enough renderings to train on")
        # in spelling order, neighbours share their beginning (compute, computer, computing)
        spelled = [data.words[w] for w in self.eligible]
        self.by_spelling = self.eligible[np.argsort(spelled, kind="stable")]
        # each eligible word's closest words in sound (election, alexa): rows of self.eligible
        self.sound_near = sound_neighbours([data.phone_ids[w] for w in self.eligible]) \
            if cfg.neighbours == "sound" else None
        # runs of sentence words that sound like each eligible word: negatives (cfg.sound_alike)
        self.alike = SoundAlikeRuns(data, self.eligible) if cfg.sound_alike > 0 else None
        # occurrences of each sentence (rendered and real), for context free of batch words
        self.sen_occ = _group(data.occ_sentence, np.arange(data.occ_sentence.size), data.sen_off.size)
        self.real_occ = _group(data.rocc_file, np.arange(data.rocc_file.size), data.real_off.size)
        self.item = int(cfg.item_s * SR)
        # the context's sources (silence, rendered sentence, real speech, other synthesisers' talk);
        # the fourth only where the config weighs it and the data has that talk
        pc = np.array(cfg.p_context, float)
        if pc.size == 4 and (pc[3] <= 0 or data.alt_sen_off is None or data.alt_sen_off.size == 0):
            pc = pc[:3]
        self.p_context = pc / pc.sum()

    # ---------------------------------------------------------------- words
    def draw_words(self) -> np.ndarray:
        cfg, rng = self.cfg, self.rng
        K = min(cfg.words_per_batch, len(self.eligible))
        n_cl = int(K * cfg.cluster) // 4 * 4
        chosen: List[int] = []
        seen = set()
        tries = 0
        while len(chosen) < n_cl and tries < 10 * K:
            tries += 1
            if self.sound_near is not None:      # a word and three of its closest in sound
                i = int(rng.integers(0, len(self.eligible)))
                near = self.sound_near[i]
                group = self.eligible[np.r_[i, rng.choice(near, size=min(3, near.size), replace=False)]]
            else:                                # four words in a row in spelling order
                s = int(rng.integers(0, max(1, len(self.by_spelling) - 4)))
                group = self.by_spelling[s:s + 4]
            for w in group:
                if int(w) not in seen and len(chosen) < n_cl:
                    seen.add(int(w))
                    chosen.append(int(w))
        rest = np.setdiff1d(self.eligible, np.array(chosen, dtype=np.int64))
        chosen += [int(w) for w in rng.choice(rest, size=K - len(chosen), replace=False)]
        return np.array(chosen, dtype=np.int64)

    # ---------------------------------------------------------------- context
    def _context(self, side: int, want: int, batch: set, speech: bool = False) -> Tuple[int, int]:
        """(start, length) of a piece of a rendered sentence or of real speech with no batch word,
        ``want`` samples long at most, or (0, 0) for silence. ``side`` 0: before the target (the
        piece's end is used), 1: after it. ``speech``: never silence."""
        cfg, rng, d = self.cfg, self.rng, self.d
        pc = self.p_context
        kind = rng.choice(pc.size, p=pc)
        if speech and kind == 0:
            kind = int(rng.integers(1, 3)) if pc.size == 3 else int(rng.choice(3, p=pc[1:] / pc[1:].sum())) + 1
        if kind == 0 or want < 800:
            return 0, 0
        for _ in range(4):
            if kind == 3:                  # another synthesiser's talk: a sentence whose text holds no batch word
                f = int(rng.integers(0, d.alt_sen_off.size))
                if np.isin(d.alt_sen_words[f], list(batch)).any():
                    continue
                off, ln = int(d.alt_sen_off[f]), int(d.alt_sen_len[f])
                piece = min(want, ln)
                return off + int(rng.integers(0, ln - piece + 1)), piece
            if kind == 1 and d.sen_off.size:
                f = int(rng.integers(0, d.sen_off.size))
                off, ln = int(d.sen_off[f]), int(d.sen_len[f])
                occ = self.sen_occ[f]
                ws, we, wid = d.occ_start[occ], d.occ_end[occ], d.occ_word[occ]
            elif d.real_off.size:
                f = int(rng.integers(0, d.real_off.size))
                off, ln = int(d.real_off[f]), int(d.real_len[f])
                occ = self.real_occ[f]
                ws, we, wid = d.rocc_start[occ], d.rocc_end[occ], d.rocc_word[occ]
            else:
                return 0, 0
            piece = min(want, ln)
            st = off + int(rng.integers(0, ln - piece + 1))
            hit = np.isin(wid, list(batch)) & (ws < st + piece) & (we > st)
            if not hit.any():
                return st, piece
        return 0, 0

    # ---------------------------------------------------------------- items
    def prepare(self) -> dict:
        cfg, rng, d = self.cfg, self.rng, self.d
        words = self.draw_words()
        K, Nt, Nq = len(words), cfg.templates_per_word, cfg.queries_per_word
        batch = set(int(w) for w in words)
        tpl = np.zeros((K, Nt), np.int64)
        segs: List[list] = []          # per item: list of (src, length, dst, speed, gain)
        target: List[Tuple[int, int]] = []
        labels: List[int] = []
        pq = np.zeros(4)
        pq[:len(cfg.p_query)] = cfg.p_query
        for k, w in enumerate(words):
            iso = self.iso_by_word[w]
            pick = rng.permutation(iso)
            tpl[k] = pick[:Nt]
            spare = list(pick[Nt:])
            for _ in range(Nq):
                avail = np.array([len(spare) > 0, len(self.occ_by_word[w]) > 0, len(self.rocc_by_word[w]) > 0,
                                  len(self.alt_by_word[w]) > 0])
                p = pq * avail
                if p.sum() == 0:           # only the template renderings: reuse one of them
                    spare = list(pick[:Nt])
                    p = np.array([1.0, 0, 0, 0])
                kind = int(rng.choice(4, p=p / p.sum()))
                if kind == 0:
                    r = spare.pop(int(rng.integers(0, len(spare))))
                    s, t = self._word_alone(int(d.iso_off[r]), int(d.iso_len[r]), batch)
                elif kind == 1:
                    o = int(rng.choice(self.occ_by_word[w]))
                    s, t = self._in_sentence(d.occ_start[o], d.occ_end[o], d.occ_sentence[o], False, batch)
                elif kind == 2:
                    o = int(rng.choice(self.rocc_by_word[w]))
                    s, t = self._in_sentence(d.rocc_start[o], d.rocc_end[o], d.rocc_file[o], True, batch)
                else:                      # another synthesiser's voice
                    r = int(rng.choice(self.alt_by_word[w]))
                    s, t = self._word_alone(int(d.iso_off[r]), int(d.iso_len[r]), batch)
                segs.append(s), target.append(t), labels.append(k)
        n_neg = int(round(cfg.negatives * K * Nq))
        n_alike = int(round(cfg.sound_alike * n_neg)) if self.alike is not None else 0
        for _ in range(n_alike):
            got = self._sound_alike(words, batch)
            if got is not None:
                segs.append(got[0]), target.append(got[1]), labels.append(-1)
                n_neg -= 1
        pn = np.array(cfg.p_negative) / sum(cfg.p_negative)
        for _ in range(n_neg):
            kind = int(rng.choice(4, p=pn))
            if kind <= 1:
                w = int(words[int(rng.integers(0, K))])
                r = int(rng.choice(self.iso_by_word[w]))
                s, t = self._partial(int(d.iso_off[r]), int(d.iso_len[r]), kind == 0, batch)
            elif kind == 2:
                want = int(rng.uniform(1.0, 3.5) * SR)
                st, ln = self._context(1, want, batch, speech=True)
                s = [(st, ln, int(rng.uniform(0.1, 0.4) * SR), 1.0, 1.0)] if ln else []
                t = (s[0][2], s[0][2] + ln) if ln else (0, 0)
            else:
                s, t = [], (0, 0)
            segs.append(s), target.append(t), labels.append(-1)
        return {"words": words, "templates": tpl, "segments": segs, "target": np.array(target, np.int64),
                "labels": np.array(labels, np.int64)}

    def _sound_alike(self, words: np.ndarray, batch: set, tries: int = 8):
        """A run of sentence words that sounds like one of the batch's words and holds none of
        them, in its sentence (up to 1 s each side, never reaching a batch word), or None."""
        for _ in range(tries):
            runs = self.alike.runs_of(int(words[int(self.rng.integers(0, len(words)))]))
            if runs.size == 0:
                continue
            r = int(self.rng.choice(runs))
            a = self.alike
            if batch & set(a.words_in(r)):
                continue
            return self._in_sentence(int(a.start[r]), int(a.end[r]), int(a.file[r]), bool(a.real[r]), batch)
        return None

    def _word_alone(self, off: int, ln: int, batch: set):
        rng = self.rng
        left = int(rng.uniform(0.05, 1.0) * SR)
        gap_l, gap_r = (int(rng.uniform(0.03, 0.3) * SR) for _ in range(2))
        ls, ll = self._context(0, left, batch)
        t0 = (ll + gap_l) if ll else left
        segs = []
        if ll:
            segs.append((ls, ll, 0, 1.0, _db(rng.uniform(-8, 4))))
        segs.append((off, ln, t0, 1.0, 1.0))
        room = self.item - (t0 + ln) - gap_r
        rs, rl = self._context(1, min(int(rng.uniform(0.1, 1.0) * SR), max(room, 0)), batch)
        if rl:
            segs.append((rs, rl, t0 + ln + gap_r, 1.0, _db(rng.uniform(-8, 4))))
        return segs, (t0, t0 + ln)

    def _in_sentence(self, ws: int, we: int, f: int, real: bool, batch: set):
        """A word with its own sentence around it (up to 1 s each side), never reaching another
        batch word's occurrence in that sentence."""
        rng, d = self.rng, self.d
        if real:
            lo, hi = int(d.real_off[f]), int(d.real_off[f] + d.real_len[f])
            occ = self.real_occ[f]
            os_, oe, ow = d.rocc_start[occ], d.rocc_end[occ], d.rocc_word[occ]
        else:
            lo, hi = int(d.sen_off[f]), int(d.sen_off[f] + d.sen_len[f])
            occ = self.sen_occ[f]
            os_, oe, ow = d.occ_start[occ], d.occ_end[occ], d.occ_word[occ]
        other = np.isin(ow, list(batch)) & ~((os_ == ws) & (oe == we))
        left = max(lo, int(ws) - int(rng.uniform(0.05, 1.0) * SR))
        right = min(hi, int(we) + int(rng.uniform(0.1, 1.0) * SR))
        if other.any():
            before = oe[other & (oe <= ws)]
            after = os_[other & (os_ >= we)]
            if before.size:
                left = max(left, int(before.max()))
            if after.size:
                right = min(right, int(after.min()))
        f_speed = rng.uniform(0.9, 1.1) if real else 1.0
        lead = int(rng.uniform(0.0, 0.3) * SR)
        ln = right - left
        out_len = int(ln / f_speed)
        if lead + out_len > self.item:
            ln = int((self.item - lead) * f_speed)
        t0 = lead + int((ws - left) / f_speed)
        t1 = lead + int((we - left) / f_speed)
        return [(left, ln, lead, f_speed, 1.0)], (t0, min(t1, self.item))

    def _partial(self, off: int, ln: int, prefix: bool, batch: set):
        """The first 30-60 % (prefix) or the last 35-60 % (suffix) of a rendering, with context
        on the open side (silence or speech without batch words)."""
        rng = self.rng
        if prefix:
            part = int(ln * rng.uniform(0.3, 0.6))
            src, sl = off, part
        else:
            part = int(ln * rng.uniform(0.35, 0.6))
            src, sl = off + ln - part, part
        t0 = int(rng.uniform(0.1, 1.0) * SR)
        segs = [(src, sl, t0, 1.0, 1.0)]
        if prefix:
            cs, cl = self._context(1, int(rng.uniform(0.3, 1.5) * SR), batch)
            if cl:
                segs.append((cs, cl, t0 + sl + int(rng.uniform(0.0, 0.2) * SR), 1.0, _db(rng.uniform(-6, 3))))
        else:
            cs, cl = self._context(0, min(t0, int(rng.uniform(0.3, 1.0) * SR)), batch)
            if cl:
                segs.append((cs, cl, max(0, t0 - cl - int(rng.uniform(0.0, 0.2) * SR)), 1.0, _db(rng.uniform(-6, 3))))
        return segs, (t0, t0 + sl)


def sound_neighbours(phones: Sequence[np.ndarray], k: int = 8, block: int = 1024) -> np.ndarray:
    """(n, k) for each word (its phoneme ids), the ``k`` other words closest in sound: cosine of
    their counts of phonemes and of phoneme pairs (the word's edges marked), so that words
    sharing a run of sounds anywhere (alexa, election; computer, commuter) are neighbours."""
    n = len(phones)
    k = max(1, min(k, n - 1))
    V = int(max((int(p.max()) for p in phones if p.size), default=0)) + 2       # ids, then the edge mark
    feats = _sound_features(phones, V)
    out = np.zeros((n, k), np.int64)
    for a in range(0, n, block):
        sim = feats[a:a + block] @ feats.T
        sim[np.arange(sim.shape[0]), np.arange(a, a + sim.shape[0])] = -np.inf      # not itself
        top = np.argpartition(-sim, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(sim, top, axis=1), axis=1, kind="stable")
        out[a:a + block] = np.take_along_axis(top, order, axis=1)
    return out


def _sound_features(phones: Sequence[np.ndarray], V: int) -> np.ndarray:
    """Unit rows of counts of phonemes and of phoneme pairs (edges marked by id ``V - 1``)."""
    edge = V - 1
    feats = np.zeros((len(phones), V + V * V), np.float32)
    for i, p in enumerate(phones):
        p = np.asarray(p, np.int64)
        np.add.at(feats[i], p, 1.0)
        q = np.r_[edge, p, edge]
        np.add.at(feats[i], V + q[:-1] * V + q[1:], 1.0)
    feats /= np.maximum(np.linalg.norm(feats, axis=1, keepdims=True), 1e-9)
    return feats


class SoundAlikeRuns:
    """Runs of 1 to ``longest`` consecutive words of the sentences (rendered, and real where every
    word of the run is a vocabulary word) that sound like a word, by the cosine of
    :func:`sound_neighbours`' features, across the words' boundaries as they are spoken: for
    'alexa', 'election', 'this election', 'a light'. A run that holds the word itself is never its
    own, nor one whose phonemes hold the word's in a row (a homophone: 'two' in 'to', or the word
    across a boundary: 'cat' in 'a cattle'), which sounds like the word and would teach the head
    to tell apart what cannot be told apart, nor one of fewer phonemes than 60 % of the word's.
    Each word keeps its ``k`` closest runs of cosine at least ``floor``."""

    def __init__(self, data: Data, words: np.ndarray, longest: int = 3, k: int = 16, floor: float = 0.35,
                 block: int = 512):
        starts, ends, files, real, members, phones = [], [], [], [], [], []
        for is_real, off, occ_file, occ_word, occ_start, occ_end in (
                (False, data.sen_off, data.occ_sentence, data.occ_word, data.occ_start, data.occ_end),
                (True, data.real_off, data.rocc_file, data.rocc_word, data.rocc_start, data.rocc_end)):
            for occ in _group(occ_file, np.arange(occ_file.size), off.size):
                occ = occ[np.argsort(occ_start[occ], kind="stable")]
                for i in range(occ.size):
                    for n in range(1, longest + 1):
                        run = occ[i:i + n]
                        if run.size < n or (occ_word[run] < 0).any():
                            break
                        if occ_end[run[-1]] - occ_start[run[0]] > 1.6 * SR:
                            break
                        starts.append(int(occ_start[run[0]])), ends.append(int(occ_end[run[-1]]))
                        files.append(int(occ_file[run[0]])), real.append(is_real)
                        members.append(tuple(int(w) for w in occ_word[run]))
                        phones.append(np.concatenate([data.phone_ids[int(w)] for w in occ_word[run]]))
        self.start, self.end = np.array(starts, np.int64), np.array(ends, np.int64)
        self.file, self.real = np.array(files, np.int64), np.array(real, bool)
        self.members = members
        self._runs: dict = {}
        if not phones:
            return
        wp = [data.phone_ids[int(w)] for w in words]
        V = int(max((int(p.max()) for p in wp + phones if p.size), default=0)) + 2     # ids, then the edge mark
        fw, fr = _sound_features(wp, V), _sound_features(phones, V)
        run_len = np.array([p.size for p in phones])
        holding: dict = {}                  # word -> the runs that hold it
        for r, m in enumerate(members):
            for w in set(m):
                holding.setdefault(w, []).append(r)
        kk = min(k, len(phones))
        for a in range(0, len(words), block):
            sim = fw[a:a + block] @ fr.T
            for j, w in enumerate(words[a:a + block]):
                row = sim[j]
                row[holding.get(int(w), [])] = -np.inf
                row[run_len < max(2, int(np.ceil(0.6 * wp[a + j].size)))] = -np.inf     # not 'a' for alexa
                more = min(2 * kk + 8, row.size)             # room for the homophones left out
                top = np.argpartition(-row, more - 1)[:more]
                top = top[np.argsort(-row[top], kind="stable")]
                keep = [int(r) for r in top if row[r] >= floor and not holds_phonemes(phones[r], wp[a + j])]
                self._runs[int(w)] = np.array(keep[:kk], np.int64)

    def runs_of(self, word: int) -> np.ndarray:
        """The runs (indices) that sound like ``word``, closest first."""
        return self._runs.get(word, np.zeros(0, np.int64))

    def words_in(self, run: int) -> tuple:
        return self.members[run]

    def text(self, run: int, words: Sequence[str]) -> str:
        return " ".join(words[w] for w in self.members[run])


def holds_phonemes(run: np.ndarray, word: np.ndarray) -> bool:
    """Whether the phoneme ids ``word`` occur in a row in ``run`` (a run that sounds the word)."""
    run, word = np.asarray(run), np.asarray(word)
    if word.size == 0 or run.size < word.size:
        return False
    win = np.lib.stride_tricks.sliding_window_view(run, word.size)
    return bool((win == word[None, :]).all(axis=1).any())


def _db(x: float) -> float:
    return float(10 ** (x / 20))


def _group(keys: np.ndarray, values: np.ndarray, n: int) -> List[np.ndarray]:
    order = np.argsort(keys, kind="stable")
    k, v = keys[order], values[order]
    out = [np.zeros(0, np.int64)] * n
    if k.size:
        cuts = np.flatnonzero(np.diff(k)) + 1
        for s, e in zip(np.r_[0, cuts], np.r_[cuts, k.size]):
            out[int(k[s])] = v[s:e].astype(np.int64)
    return out


def assemble(buffer: torch.Tensor, segments: Sequence[list], length: int) -> torch.Tensor:
    """Items from segments (src, length, dst, speed, gain): [n, length] float waveforms."""
    dev = buffer.device
    n = len(segments)
    S = max(1, max(len(s) for s in segments))
    arr = np.zeros((n, S, 5), np.float64)
    for i, s in enumerate(segments):
        for j, seg in enumerate(s):
            arr[i, j] = seg
    a = torch.from_numpy(arr).to(dev)
    src, ln, dst, f, gain = (a[..., c] for c in range(5))
    out_len = torch.floor(ln / f)
    pos = torch.arange(length, device=dev, dtype=torch.float64)[None, :]
    wav = torch.zeros(n, length, device=dev)
    top = buffer.numel() - 1
    for j in range(S):
        rel = pos - dst[:, j:j + 1]
        valid = (rel >= 0) & (rel < out_len[:, j:j + 1]) & (ln[:, j:j + 1] > 0)
        q = src[:, j:j + 1] + rel.clamp(min=0) * f[:, j:j + 1]
        q = torch.minimum(q, (src[:, j:j + 1] + ln[:, j:j + 1] - 1).clamp(min=0))
        lo = q.floor().long().clamp(0, top)
        w = (q - lo.double()).clamp(0, 1).float()
        x = buffer[lo].float() * (1 - w) + buffer[(lo + 1).clamp(max=top)].float() * w
        wav = wav + torch.where(valid, x / 32768.0 * gain[:, j:j + 1].float(), torch.zeros((), device=dev))
    return wav

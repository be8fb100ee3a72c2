"""The learned head: torch twin == ONNX (offline and streaming), the training's template scores ==
the run-time matcher's, template cuts, Kokoro word times, batches."""
import json
from dataclasses import asdict

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")

from kws.model.head import Head  # noqa: E402
from kws.model.head import unit  # noqa: E402
from kws.spot.templates import TemplateBank, cut, template_scores  # noqa: E402
from kws.train import augment, batches, config, losses, net  # noqa: E402
from kws.train import data as tdata  # noqa: E402
from kws.train import head as th  # noqa: E402


def _random_head(context=4, hidden=32, layers=2, dim=24, seed=0):
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    h = net.HeadNet(net.HeadConfig(context, hidden, layers, dim), rng.normal(size=96), rng.uniform(0.5, 2, 96), 3.0)
    with torch.no_grad():
        for p in h.parameters():
            p.add_(0.2 * torch.randn_like(p))
    return h.eval()


def _checkpoint(h, tmp_path):
    ck = tmp_path / "h.pt"
    torch.save({"head": asdict(h.cfg), "state": h.state_dict(), "step": 1, "val": None, "variant": None}, ck)
    return ck


def _export(h, tmp_path):
    ck = _checkpoint(h, tmp_path)
    out = tmp_path / "head"
    rng = np.random.default_rng(2)          # a bank file as export.model writes it: int8 rows, a scale each,
    calib = tmp_path / "bank-raw.npz"       # vectors drawn as the test's inputs are (normal, sd 3)
    np.savez(calib, vectors=np.clip(np.round(rng.normal(size=(2000, 96)) * 32), -127, 127).astype(np.int8),
             scales=np.full(2000, 3 / 32, np.float16))
    meta = th.export(str(ck), out, calibration=str(calib))
    return out, meta


@pytest.mark.parametrize("context", [1, 4])
def test_onnx_equals_torch_offline_and_streaming(tmp_path, context):
    h = _random_head(context=context)
    out, meta = _export(h, tmp_path)
    assert meta["context"] == context and meta["dim"] == 24
    assert json.loads((out / "head.json").read_text())["sha256"] == meta["sha256"]
    assert meta["file"] == meta["int8"]["file"]
    onnx_head = Head(out / meta["fp32"]["file"], context, threads=1)
    rng = np.random.default_rng(1)
    for T in (1, 2, 5, 37):
        x = rng.normal(size=(T, 96)).astype(np.float32) * 3
        ref = net.apply_head(h, torch.from_numpy(x)[None])[0].detach().numpy()
        got = onnx_head(x)
        assert got.shape == (T, 24)
        np.testing.assert_allclose(got, ref, atol=2e-5)
    # streaming in uneven chunks gives the offline outputs
    x = rng.normal(size=(23, 96)).astype(np.float32) * 3
    s = onnx_head.stream()
    parts = [s.push(x[a:b]) for a, b in ((0, 1), (1, 4), (4, 5), (5, 17), (17, 23))]
    np.testing.assert_allclose(np.concatenate(parts), onnx_head(x), atol=2e-5)
    # the static int8 graph stays close to fp32, and streams exactly as it runs offline
    q = Head(out / meta["int8"]["file"], context, threads=1)
    cos = np.sum(q(x) * onnx_head(x), axis=1)
    assert cos.min() > 0.98 and meta["int8"]["quantisation"] == "static"
    s = q.stream()
    parts = [s.push(x[a:b]) for a, b in ((0, 1), (1, 4), (4, 5), (5, 17), (17, 23))]
    np.testing.assert_array_equal(np.concatenate(parts), q(x))


@pytest.mark.parametrize("shape", [(4, 32, 2), (1, 16, 1), (3, 0, 2)])
def test_a_checkpoint_from_the_graph_holds_the_same_head(tmp_path, shape):
    h = _random_head(*shape)
    out = tmp_path / "head"
    th.export(str(_checkpoint(h, tmp_path)), out, int8=False)
    ck = th.checkpoint_from_onnx(out / "head.onnx")
    assert ck["loss"] == {} and net.HeadConfig(**ck["head"]).context == shape[0]
    back = net.HeadNet(net.HeadConfig(**ck["head"]))
    back.load_state_dict(ck["state"])
    for k, v in h.state_dict().items():
        np.testing.assert_allclose(back.state_dict()[k].numpy(), v.numpy(), rtol=0, atol=0)


def test_a_checkpoint_from_the_int8_graph_holds_its_weights(tmp_path):
    """The shipped head is static int8 (QDQ): read back, each weight is within half a quantisation
    step of the trained one, and the torch twin gives the int8 graph's outputs."""
    h = _random_head(8, 32, 3, 24)
    with torch.no_grad():       # standardised as the calibration vectors are drawn (normal, sd 3)
        h.mean.zero_(), h.inv_std.fill_(1 / 3)
    out, meta = _export(h, tmp_path)
    ck = th.checkpoint_from_onnx(out / meta["int8"]["file"])
    assert net.HeadConfig(**ck["head"]) == h.cfg
    for k, v in h.state_dict().items():
        w = v.numpy()
        step = np.abs(w).max(axis=-1, keepdims=True) / 127 if w.ndim == 2 else np.abs(w).max() / 127
        assert np.all(np.abs(ck["state"][k].numpy() - w) <= 0.51 * step + 1e-6), k


def test_distillation_pulls_the_template_scores_toward_the_teachers():
    rng = np.random.default_rng(3)
    raw = torch.from_numpy(rng.normal(size=(6, 14, 96)).astype(np.float32) * 3)
    n = torch.tensor([14, 12, 10, 14, 9, 11])
    teacher, student = _random_head(4, 32, 2, 24, seed=1), _random_head(4, 32, 2, 24, seed=2)
    with torch.no_grad():
        target = losses.template_scores(net.apply_head(teacher, raw), n, 8)
    assert target.shape == (6, 6)
    p = losses.LossParams(24, False, 10)
    labels = torch.tensor([0, 1, 2, -1])
    q = torch.from_numpy(rng.normal(size=(4, 20, 96)).astype(np.float32) * 3)
    args = (p, raw, n, q, labels, 3, 2, 8, 0.0, 1.0)
    _, same = losses.batch_loss(teacher, *args, teacher=target, alpha_kd=1.0)
    assert same["kd"] < 1e-10
    opt = torch.optim.Adam(student.parameters(), lr=3e-3)
    first = None
    for _ in range(30):         # the distillation alone
        loss, parts = losses.batch_loss(student, *args[:-1], 0.0, teacher=target, alpha_kd=1.0)
        first = parts["kd"] if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert first > 1e-3 and parts["kd"] < 0.5 * first


def test_int8_export_needs_calibration_vectors(tmp_path):
    ck = _checkpoint(_random_head(), tmp_path)
    with pytest.raises(FileNotFoundError, match="calibrate"):
        th.export(str(ck), tmp_path / "head", calibration=str(tmp_path / "missing.npz"))
    assert th.export(str(ck), tmp_path / "head", int8=False)["precision"] == "fp32"


def test_identity_start():
    """A fresh head (output layer zero, skip = identity) reproduces the raw vectors' directions."""
    h = net.HeadNet(net.HeadConfig(4, 32, 2, 96), np.zeros(96), np.ones(96), 5.0).eval()
    x = np.random.default_rng(2).normal(size=(9, 96)).astype(np.float32)
    got = net.apply_head(h, torch.from_numpy(x)[None])[0].detach().numpy()
    np.testing.assert_allclose(got, unit(x), atol=1e-5)


def test_score_series_is_the_matchers_score():
    rng = np.random.default_rng(3)
    D = 16
    lens = [3, 5, 8]
    full = [unit(rng.normal(size=(n + 2 * 2, D))) for n in lens]        # padded utterances (TRIM = 2)
    tpls = [f[slice(*cut(f.shape[0]))] for f in full]
    stream = unit(rng.normal(size=(30, D)))
    stream[10:15] = tpls[1] + 0.1 * rng.normal(size=(5, D))
    stream = unit(stream)
    bank = TemplateBank.build([[t] for t in tpls])
    ref = template_scores(bank, stream)                                   # [30, 3], -1 before fitting
    mx = max(f.shape[0] for f in full)
    F_ = torch.zeros(3, mx, D)
    for i, f in enumerate(full):
        F_[i, : f.shape[0]] = torch.from_numpy(f)
    n = torch.tensor([f.shape[0] for f in full])
    T, L = net.right_aligned(F_, n, lmax=10)
    assert L.tolist() == lens
    G = net.score_series(T, L, torch.from_numpy(stream)[None].float())[0].numpy()
    fit = ref > -1
    np.testing.assert_allclose(G[fit], ref[fit], atol=1e-5)
    assert (G[~fit] == -2).all()
    assert G[:, 1].argmax() == 14


def test_right_aligned_keeps_the_last_rows_when_capped():
    D = 4
    f = torch.arange(20 * D, dtype=torch.float32).view(1, 20, D)
    T, L = net.right_aligned(f, torch.tensor([20]), lmax=6)
    assert L.tolist() == [6]
    a, b = cut(20)
    np.testing.assert_array_equal(T[0].numpy(), f[0, b - 6:b].numpy())


def test_right_aligned_with_fewer_vectors_dropped_at_the_end_equals_cut():
    D = 3
    f = torch.arange(2 * 30 * D, dtype=torch.float32).view(2, 30, D)
    n = torch.tensor([30, 17])
    T, L = net.right_aligned(f, n, lmax=40, trim_end=4)
    for i, ni in enumerate(n.tolist()):
        a, b = cut(ni, 2, 4)
        assert (a, b) == (2, ni - 4) and L[i] == b - a
        np.testing.assert_array_equal(T[i, 40 - (b - a):].numpy(), f[i, a:b].numpy())
        assert (T[i, :40 - (b - a)] == 0).all()


def test_word_spans_from_durations():
    from kws.corpus.kokoro_corpus import word_spans

    ph = "ab cde f"
    # tokens: start, a, b, space, c, d, e, space, f, end
    dur = np.array([10, 1, 2, 3, 1, 1, 1, 4, 2, 9], float)
    assert word_spans(ph, dur) == [(10, 13), (16, 19), (23, 25)]


def test_dwd_prefers_the_right_word():
    p = losses.LossParams(8, False, 10)
    labels = torch.tensor([0, 1, 2, -1])
    good = torch.tensor([[0.9, 0.1, 0.0], [0.1, 0.8, 0.2], [0.0, 0.1, 0.9], [0.1, 0.2, 0.1]])
    bad = good[:, [1, 2, 0]]
    assert losses.dwd_template_loss(good, labels, p) < losses.dwd_template_loss(bad, labels, p)


def _synthetic_data(n_words=6, per_word=3, seed=0):
    """Words as distinct tone sequences; sentences as their concatenations."""
    rng = np.random.default_rng(seed)
    sr = tdata.SR
    pcm, iso, occ, sen = [], {"off": [], "len": [], "word": []}, {"s": [], "w": [], "a": [], "b": []}, {"off": [], "len": []}
    pos = 0

    def word(w):
        n = int(sr * rng.uniform(0.3, 0.6))
        t = np.arange(n) / sr
        return (0.3 * np.sin(2 * np.pi * (300 + 150 * w) * t * rng.uniform(0.9, 1.1)) * 32767).astype(np.int16)

    for w in range(n_words):
        for _ in range(per_word):
            a = word(w)
            iso["off"].append(pos), iso["len"].append(a.size), iso["word"].append(w)
            pcm.append(a)
            pos += a.size
    for s in range(4):
        ws = rng.integers(0, n_words, 3)
        start = pos
        for w in ws:
            a = word(int(w))
            occ["s"].append(s), occ["w"].append(int(w)), occ["a"].append(pos), occ["b"].append(pos + a.size)
            pcm.append(a)
            pos += a.size
        sen["off"].append(start), sen["len"].append(pos - start)
    buf = torch.from_numpy(np.concatenate(pcm))
    a = lambda v: np.array(v, np.int64)  # noqa: E731
    e = np.zeros(0, np.int64)
    return tdata.Data(buffer=buf, words=[f"w{i}" for i in range(n_words)], phone_ids=[np.array([2, 3])] * n_words,
                   iso_off=a(iso["off"]), iso_len=a(iso["len"]), iso_word=a(iso["word"]),
                   sen_off=a(sen["off"]), sen_len=a(sen["len"]), occ_sentence=a(occ["s"]), occ_word=a(occ["w"]),
                   occ_start=a(occ["a"]), occ_end=a(occ["b"]), real_off=e, real_len=e, rocc_file=e, rocc_word=e,
                   rocc_start=e, rocc_end=e, talk_off=a(sen["off"]), talk_len=a(sen["len"]))


def test_batches_place_the_target_words():
    d = _synthetic_data()
    cfg = config.TrainConfig(words_per_batch=4, item_s=3.0)
    rng = np.random.default_rng(0)
    tpl_n = np.full(d.iso_off.size, 12)
    b = batches.Batcher(d, cfg, tpl_n, rng)
    prep = b.prepare()
    K, Nq = 4, cfg.queries_per_word
    assert len(prep["words"]) == K and prep["templates"].shape == (K, cfg.templates_per_word)
    lab = prep["labels"]
    assert (lab[: K * Nq] == np.repeat(np.arange(K), Nq)).all() and (lab[K * Nq:] == -1).all()
    # templates are renderings of their word; query renderings differ from the templates
    for k, w in enumerate(prep["words"]):
        assert (d.iso_word[prep["templates"][k]] == w).all()
    wav = batches.assemble(d.buffer, prep["segments"], int(cfg.item_s * tdata.SR)).numpy()
    for i in range(K * Nq):
        t0, t1 = prep["target"][i]
        assert 0 <= t0 < t1 <= wav.shape[1]
        seg = wav[i, t0:t1]
        assert np.sqrt(np.mean(seg ** 2)) > 0.05        # the word is where the target says
    g = torch.Generator().manual_seed(0)
    out = augment.Augment(d, cfg, g, rng)(torch.from_numpy(wav), torch.from_numpy(prep["target"]))
    assert out.shape == wav.shape and torch.isfinite(out).all() and out.abs().max() <= 1
    # TV noise (a talker over music) and clipping: every item gets them
    d.music = torch.from_numpy(np.random.default_rng(1).standard_normal(3 * tdata.SR).astype(np.float32) * 0.1)
    tv = config.TrainConfig(words_per_batch=4, item_s=3.0, noise_kinds=(0, 0, 0, 0, 0, 1), p_noise=1.0,
                        p_reverb=0.0, p_clip=1.0, p_bandlimit=0.0, gain_db=(0.0, 0.0))
    out = augment.Augment(d, tv, g, rng)(torch.from_numpy(wav), torch.from_numpy(prep["target"]))
    assert out.shape == wav.shape and torch.isfinite(out).all()
    flat = (out.abs() >= 0.8999).float().mean(1)              # clipped: many samples at the peak
    assert flat.min() > 0.001


def test_shipped_head_matches_its_training_twin():
    """The shipped model's head: the graph the manifest names has the manifest's sha256 and gives, on
    the stored input, the outputs the trained torch model gave (int8 weights: close, not equal)."""
    import hashlib

    from kws.model.model import default_model_path

    d = default_model_path()
    manifest = json.loads((d / "manifest.json").read_text())
    meta = manifest.get("head")
    if not meta:
        pytest.skip("the shipped model has no head")
    f = d / meta["file"]
    assert hashlib.sha256(f.read_bytes()).hexdigest() == manifest["files"][meta["file"]]["sha256"]
    chk = np.load(d / "head_check.npz")
    got = Head(f, meta["context"], threads=1)(chk["vectors"])
    assert got.shape == (chk["vectors"].shape[0], meta["dim"])
    assert np.sum(got * chk["out"], axis=1).min() > 0.99


def test_command_line_overrides_reach_inside_the_config():
    cfg = {"minutes": 3.0, "variants": [{"name": "a"}, {"name": "b", "head": {"context": 8}}]}
    config.overrides(cfg, ["minutes=16", "variants.1.init=runs/x/last.pt", "variants.1.head.context=12",
                        'music=["a.ogg", "b.ogg"]', "out=/tmp/run"])
    assert cfg["minutes"] == 16 and cfg["out"] == "/tmp/run" and cfg["music"] == ["a.ogg", "b.ogg"]
    assert cfg["variants"][1] == {"name": "b", "init": "runs/x/last.pt", "head": {"context": 12}}
    assert config.TrainConfig.from_dict(cfg).variants[1].head.context == 12


def test_sound_neighbours_are_the_words_that_sound_alike():
    from kws.enroll.phonemes import pronounce

    words = ["alexa", "election", "cat", "bat", "doggedly", "window", "computer", "commuter"]
    near = batches.sound_neighbours([np.array(pronounce(w).ids(), np.int64) for w in words], k=2)
    first = {w: words[near[i, 0]] for i, w in enumerate(words)}
    assert first["alexa"] == "election" and first["cat"] == "bat" and first["computer"] == "commuter"
    assert all(i not in near[i] for i in range(len(words)))


@pytest.mark.parametrize("neighbours", ["sound", "spelling"])
def test_batches_draw_distinct_words_either_way(neighbours):
    d = _synthetic_data(n_words=12)
    cfg = config.TrainConfig(words_per_batch=8, item_s=3.0, neighbours=neighbours)
    b = batches.Batcher(d, cfg, np.full(d.iso_off.size, 12), np.random.default_rng(0))
    for _ in range(5):
        w = b.draw_words()
        assert len(w) == 8 and len(set(w.tolist())) == 8 and set(w.tolist()) <= set(b.eligible.tolist())


def _data_of_sentences(vocab, sentences, per_word=3, seed=0):
    """Words as tones (one frequency each), renderings of each alone, and rendered sentences of
    them (lists of vocabulary indices), with the words' real pronunciations as phonemes."""
    from kws.enroll.phonemes import pronounce

    d = _synthetic_data(n_words=len(vocab), per_word=per_word, seed=seed)
    sr, rng = tdata.SR, np.random.default_rng(seed)
    pcm, pos = [d.buffer.numpy()], d.buffer.numel()
    occ = {"s": [], "w": [], "a": [], "b": []}
    sen = {"off": [], "len": []}
    for s, ws in enumerate(sentences):
        start = pos
        for w in ws:
            n = int(sr * rng.uniform(0.2, 0.4))
            a = (0.3 * np.sin(2 * np.pi * (300 + 150 * w) * np.arange(n) / sr) * 32767).astype(np.int16)
            occ["s"].append(s), occ["w"].append(w), occ["a"].append(pos), occ["b"].append(pos + n)
            pcm.append(a)
            pos += n
        sen["off"].append(start), sen["len"].append(pos - start)
    a = lambda v: np.array(v, np.int64)  # noqa: E731
    d.buffer = torch.from_numpy(np.concatenate(pcm))
    d.words = list(vocab)
    d.phone_ids = [np.array(pronounce(w).ids(), np.int64) for w in vocab]
    d.sen_off, d.sen_len, d.talk_off, d.talk_len = a(sen["off"]), a(sen["len"]), a(sen["off"]), a(sen["len"])
    d.occ_sentence, d.occ_word, d.occ_start, d.occ_end = a(occ["s"]), a(occ["w"]), a(occ["a"]), a(occ["b"])
    return d


def test_sound_alike_runs_cross_word_boundaries_and_never_hold_the_word():
    vocab = ["alexa", "a", "light", "rain", "this", "election", "cat", "window", "doggedly", "purple"]
    V = {w: i for i, w in enumerate(vocab)}
    sentences = [[V[w] for w in s.split()] for s in
                 ("a light rain", "this election", "cat window purple", "this alexa window", "doggedly purple cat")]
    d = _data_of_sentences(vocab, sentences)
    runs = batches.SoundAlikeRuns(d, np.arange(len(vocab)), k=4, floor=0.3)
    near = [runs.text(r, vocab) for r in runs.runs_of(V["alexa"])]
    assert near and near[0] in ("election", "this election")
    assert all("alexa" not in t.split() for t in near)           # never a run that holds the word
    # nor one that holds its sound: a homophone, or the word across a boundary
    assert batches.holds_phonemes(np.array([5, 1, 2, 3, 9]), np.array([1, 2, 3]))
    assert not batches.holds_phonemes(np.array([1, 2, 9, 3]), np.array([1, 2, 3]))
    assert not batches.holds_phonemes(np.array([1, 2]), np.array([1, 2, 3]))
    from kws.enroll.phonemes import pronounce

    two = ["two", "to", "too", "tooth", "bat", "window"]
    d2 = _data_of_sentences(two, [[1, 5], [2, 4], [3, 5], [4, 5]])
    r2 = batches.SoundAlikeRuns(d2, np.arange(len(two)), k=4, floor=0.0)
    same = [w for w in ("to", "too") if np.array_equal(pronounce(w).ids(), pronounce("two").ids())]
    assert same and not {runs_text for runs_text in (r2.text(r, two) for r in r2.runs_of(0))} & set(same)
    assert all(runs.start[r] < runs.end[r] for r in runs.runs_of(V["alexa"]))
    # a batch of words: the sound-alike negatives are runs of sentence words, none of them a batch word
    cfg = config.TrainConfig(words_per_batch=4, item_s=3.0, sound_alike=1.0, negatives=1.0)
    b = batches.Batcher(d, cfg, np.full(d.iso_off.size, 12), np.random.default_rng(0))
    b.draw_words = lambda: np.array([V["alexa"], V["cat"], V["window"], V["purple"]])
    prep = b.prepare()
    K, Nq = 4, cfg.queries_per_word
    neg = [s for s, lab in zip(prep["segments"], prep["labels"]) if lab == -1]
    assert len(neg) == K * Nq                                     # negatives = 1.0 x positives
    in_sentences = [s for s in neg if s and all(d.sen_off[0] <= src < d.sen_off[-1] + d.sen_len[-1] for src, *_ in s)]
    assert in_sentences, "the sound-alike negatives come from the sentences"
    batch_occ = np.isin(d.occ_word, prep["words"])
    for segs in in_sentences:
        for src, ln, *_ in segs:          # no batch word's occurrence inside a negative
            assert not (batch_occ & (d.occ_start < src + ln) & (d.occ_end > src)).any()


def test_other_synthesisers_renderings_are_queries_never_templates():
    d = _synthetic_data(n_words=6, per_word=4)
    d.iso_alt = np.zeros(d.iso_off.size, bool)
    d.iso_alt[2::4] = True                      # one rendering of each word by another synthesiser
    d.iso_alt[3::4] = True                      # and a second one
    cfg = config.TrainConfig(words_per_batch=4, item_s=3.0, p_query=(0.0, 0.0, 0.0, 1.0), negatives=0.0)
    b = batches.Batcher(d, cfg, np.full(d.iso_off.size, 12), np.random.default_rng(0))
    alt_off = set(d.iso_off[d.iso_alt].tolist())
    for _ in range(5):
        prep = b.prepare()
        assert not d.iso_alt[prep["templates"]].any()
        for k, w in enumerate(prep["words"]):
            for q in range(cfg.queries_per_word):
                segs = prep["segments"][k * cfg.queries_per_word + q]
                word_seg = [s for s in segs if s[0] in alt_off]
                assert len(word_seg) == 1
                assert d.iso_word[d.iso_off == word_seg[0][0]][0] == w
    # three weights (no other synthesiser's renderings asked for): never one of them
    b3 = batches.Batcher(d, config.TrainConfig(words_per_batch=4, item_s=3.0, negatives=0.0),
                         np.full(d.iso_off.size, 12), np.random.default_rng(1))
    for _ in range(5):
        for segs in b3.prepare()["segments"]:
            assert not any(s[0] in alt_off for s in segs)
    with pytest.raises(SystemExit):
        config.TrainConfig.from_dict({"p_query": [1, 1]})


def test_template_vectors_skip_other_synthesisers_renderings():
    """Another synthesiser's rendering is never a template: no vectors computed, none counted; the
    others' vectors are what the backbone gives for each rendering alone, padded with silence."""
    from kws.model.backbone import DIM, VEC_HOP, VEC_SPAN, num_vectors
    from kws.spot.templates import PAD_S

    class Frames(torch.nn.Module):              # a stand-in backbone: each vector the mean of its window
        def forward(self, wav):
            n = (wav.shape[1] - VEC_SPAN) // VEC_HOP + 1
            win = torch.stack([wav[:, i * VEC_HOP:i * VEC_HOP + VEC_SPAN].mean(1) for i in range(n)], 1)
            return win[:, :, None] * torch.arange(1, DIM + 1, dtype=wav.dtype)

    d = _synthetic_data(n_words=4, per_word=3)
    d.iso_alt = np.zeros(d.iso_off.size, bool)
    d.iso_alt[1::3] = True
    raw, n = tdata.template_vectors(d, Frames(), torch.device("cpu"), batch=2)
    n = n.numpy()
    assert (n[d.iso_alt] == 0).all() and not raw[torch.from_numpy(d.iso_alt)].any()
    pad = int(PAD_S * tdata.SR)
    for i in np.flatnonzero(~d.iso_alt):
        a = d.buffer[d.iso_off[i]:d.iso_off[i] + d.iso_len[i]].float() / 32768.0
        wav = torch.cat([torch.zeros(pad), a, torch.zeros(pad)])[None]
        assert n[i] == num_vectors(wav.shape[1])
        torch.testing.assert_close(raw[i, :n[i]], Frames()(wav)[0, :n[i]])


def test_moving_average_of_the_weights():
    from kws.train.head import ema_update

    a, b = _random_head(seed=0), _random_head(seed=1)
    before = {k: t.clone() for k, t in a.state_dict().items()}
    ema_update(a, b, 0.9)
    for k, t in a.state_dict().items():
        want = 0.9 * before[k] + 0.1 * b.state_dict()[k] if t.is_floating_point() else b.state_dict()[k]
        assert torch.allclose(t, want, atol=1e-6), k


def test_other_voices_shard_joins_the_kokoro_corpus(tmp_path, monkeypatch):
    """kws.corpus.other_voices writes a shard that kokoro_corpus.unpack reads with the same word
    ids, every rendering marked as another synthesiser's (never a template)."""
    import random

    from kws.corpus import kokoro_corpus, other_voices

    like = tmp_path / "like"
    like.mkdir()
    words = ["apple", "banana", "cherry"]
    (like / "index.json").write_text(json.dumps({"format": kokoro_corpus.PACK_FORMAT, "words": words,
                                                 "phonemes": ["ap", "ba", "ch"]}))

    def speak(engine, text, rng):
        n = 1600 + 800 * words.index(text)
        return (0.3 * np.sin(np.arange(n) * 0.1)).astype(np.float32), f"{engine}:test:{rng.randint(0, 9)}"

    monkeypatch.setattr(other_voices, "speak", speak)
    monkeypatch.setattr(other_voices, "engines", lambda: ["espeak-ng", "flite"])
    stats = other_voices.render(like, tmp_path / "out", per_word=2, workers=1, quiet=True)
    assert stats["word_renderings"] == 6 and stats["failed"] == 0
    got = kokoro_corpus.unpack([tmp_path / "out"], tmp_path / "corpus")
    assert got["word_renderings"] == 6 and got["sentences"] == 0
    z = np.load(tmp_path / "corpus" / "index.npz")
    assert list(z["words"]) == words and sorted(z["iso_word"].tolist()) == [0, 0, 1, 1, 2, 2]
    assert tdata.alt_renderings(z["iso_voice"]).all()
    assert not tdata.alt_renderings(["af_heart@1.0", "am_adam*0.4+bf_emma@1.1"]).any()
    # the two synthesisers take turns for a word
    engines = {(int(w), str(v).split(":")[0]) for w, v in zip(z["iso_word"], z["iso_voice"])}
    assert len(engines) == 6
    # a command line names its voice; a synthesiser not on PATH is a clear error
    cmd, voice = other_voices.command("espeak-ng", "apple", random.Random(0))
    assert cmd[0] == "espeak-ng" and voice.startswith("espeak-ng:") and cmd[-1] == "apple"
    cmd, voice = other_voices.command("festival", "apple", random.Random(0))
    assert cmd[0] == "text2wave" and voice.split(":")[1] in other_voices.FESTIVAL_VOICES
    with pytest.raises(ValueError):
        other_voices.command("say", "apple", random.Random(0))
    monkeypatch.setattr(other_voices, "engines", lambda: [])
    with pytest.raises(SystemExit, match="not found on PATH"):
        other_voices.render(like, tmp_path / "out2", quiet=True)


def test_other_synthesisers_talk_as_context_and_speech_negatives(tmp_path, monkeypatch):
    """Talk of kws.corpus.other_voices --texts joins the training data (its sentences' vocabulary
    words read from their texts) and, with a fourth p_context weight, gives the context around
    words and the speech negatives: never a sentence whose text holds a batch word."""
    from kws.corpus import kokoro_corpus, other_voices

    like = tmp_path / "like"
    like.mkdir()
    words = ["apple", "banana", "cherry", "date", "elder", "fig"]
    (like / "index.json").write_text(json.dumps({"format": kokoro_corpus.PACK_FORMAT, "words": words,
                                                 "phonemes": ["x"] * len(words)}))

    def speak(engine, text, rng):
        n = 2400 + 1600 * len(text.split())
        return (0.3 * np.sin(np.arange(n) * 0.1)).astype(np.float32), f"{engine}:test"

    monkeypatch.setattr(other_voices, "speak", speak)
    monkeypatch.setattr(other_voices, "engines", lambda: ["espeak-ng"])
    other_voices.render(like, tmp_path / "shard", per_word=3, workers=1, quiet=True)
    kokoro_corpus.unpack([tmp_path / "shard"], tmp_path / "corpus")
    texts = tmp_path / "texts.json"
    held = [f"the {a} and the {b} went out" for a in words for b in words if a < b]
    texts.write_text(json.dumps({"bank": held, "heldout": []}))
    other_voices.talk(texts, "bank", 1.0, tmp_path / "talk", workers=1, quiet=True)
    cfg = config.TrainConfig(corpus=str(tmp_path / "corpus"), other_talk=str(tmp_path / "talk"))
    d, stats = tdata.load_data(cfg, torch.device("cpu"), workers=1)
    assert stats["other_talk_sentences"] == len(held) == d.alt_sen_off.size
    ix = json.loads((tmp_path / "talk" / "index.json").read_text())
    for s, off, ln, ws in zip(ix["sentences"], d.alt_sen_off, d.alt_sen_len, d.alt_sen_words):
        assert sorted(words[w] for w in ws) == sorted({w for w in s["text"].split() if w in words})
        assert ln == s["len"] and off + ln <= d.buffer.numel()
    # every rendering is another synthesiser's here: give the batches Kokoro templates to draw
    d.iso_alt = np.zeros(d.iso_off.size, bool)
    cfg = config.TrainConfig(words_per_batch=2, item_s=3.0, negatives=1.0, cluster=0.0,
                             p_context=(0.0, 0.0, 0.0, 1.0), p_negative=(0.0, 0.0, 1.0, 0.0))
    b = batches.Batcher(d, cfg, np.full(d.iso_off.size, 12), np.random.default_rng(0))
    ends = d.alt_sen_off + d.alt_sen_len
    seen = 0
    for _ in range(6):
        prep = b.prepare()
        batch = set(prep["words"].tolist())
        for segs, lab in zip(prep["segments"], prep["labels"]):
            for src, ln, *_ in segs:
                f = np.flatnonzero((d.alt_sen_off <= src) & (src + ln <= ends))
                if lab == -1 or f.size:
                    assert f.size == 1, "a context or speech negative from the other synthesisers' talk"
                    assert not set(d.alt_sen_words[f[0]].tolist()) & batch
                    seen += 1
    assert seen
    with pytest.raises(SystemExit):
        config.TrainConfig.from_dict({"p_context": [1, 1]})


def _validation_sets() -> dict:
    """Validation sets (kws.train.head_eval's layout, raw vectors) where words sound alike enough
    that some are missed: 3 wake words and 10 digits, 4 templates each, talk with the wake words in it."""
    from kws.train.head_eval import DIGIT_WORDS, WAKE

    rng = np.random.default_rng(11)
    words = WAKE + DIGIT_WORDS
    base = rng.normal(size=(8, 96)).astype(np.float32)        # words that sound alike: hard enough
    proto = {w: base[:int(n)] + 0.7 * rng.normal(size=(int(n), 96)).astype(np.float32)
             for w, n in zip(words, rng.integers(5, 9, size=len(words)))}
    quiet = rng.normal(size=96).astype(np.float32)

    def said(w, noise):
        p = proto[w] + noise * rng.normal(size=proto[w].shape).astype(np.float32)
        return np.concatenate([np.tile(quiet, (12, 1)), p, np.tile(quiet, (4, 1))]).astype(np.float32)

    templates = {w: [said(w, 0.6)[8:-2] for _ in range(4)] for w in words}
    wake_label = [w for w in WAKE for _ in range(12)]
    fsdd_label = [w for w in DIGIT_WORDS for _ in range(3)]
    background = []
    for _ in range(6):                      # talk: random vectors, now and then a word
        x = rng.normal(size=(200, 96)).astype(np.float32)
        x[:12] = quiet
        for at, w in zip((20, 80, 140), WAKE):
            part = proto[w]                 # said as in a clip, the quiet around it too
            x[at - 4:at + len(part) + 2] = said(w, 1.5)[8:-2]
        background.append(x)
    return {"templates": templates, "background": background, "wake_label": wake_label,
            "wake": {"clean": [said(w, 1.5) for w in wake_label]},
            "fsdd_label": fsdd_label, "fsdd": {"clean": [said(w, 1.5) for w in fsdd_label]}}


@pytest.mark.parametrize("soft_max", [0.0, 20.0])
def test_training_validation_equals_the_clip_evaluation(soft_max):
    """kws.train.validation.validate (torch, during training) gives kws.train.head_eval.evaluate's
    numbers (numpy, as the detector scores) on the same sets, a keyword's templates combined the
    same way (best, or the soft maximum a variant's soft_max asks for)."""
    import torch

    from kws.train.head_eval import evaluate, identity
    from kws.train.validation import validate

    sets = _validation_sets()
    want = evaluate(sets, identity, wake_conditions=("clean",), fsdd_conditions=("clean",), soft_max=soft_max)
    got = validate(None, sets, torch.device("cpu"), soft_max=soft_max)
    for key in ("wake_clean", "digits_clean"):
        for m, v in got[key].items():
            assert v == pytest.approx(want[key][m], abs=1e-6), (key, m)
    assert 0 < want["wake_clean"]["miss_1fah"] < 1, want               # neither all found nor none


def test_validate_command_uses_the_checkpoints_variant(tmp_path, capsys):
    """python -m kws.train.head validate CHECKPOINT --val FILE: the numbers of a training run's
    validation, with the checkpoint's variant's trim_end and soft_max unless told otherwise."""
    import torch

    from kws.train.validation import validate

    sets = _validation_sets()
    np.save(tmp_path / "val.npy", sets, allow_pickle=True)
    torch.manual_seed(0)
    h = net.HeadNet(net.HeadConfig(context=2, hidden=32, layers=1, dim=16))
    ck = tmp_path / "best.pt"
    torch.save({"head": asdict(h.cfg), "state": h.state_dict(), "variant": {"trim_end": 3, "soft_max": 20.0}}, ck)
    for extra, soft in (([], 20.0), (["--soft-max", "0"], 0.0)):
        assert th.main(["validate", str(ck), "--val", str(tmp_path / "val.npy")] + extra) == 0
        out = json.loads(capsys.readouterr().out)
        assert (out["trim_end"], out["soft_max"]) == (3, soft)
        want = validate(th.load_head(str(ck)), sets, torch.device("cpu"), trim_end=3, soft_max=soft)
        assert out["val"]["score"] == pytest.approx(want["score"], abs=1e-9)

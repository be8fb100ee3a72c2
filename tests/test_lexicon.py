"""CMUdict kept parsed in the user cache (kws.enroll.lexicon): the same table as parsing it, a
damaged file parsed again."""
import pytest

from kws.enroll import lexicon


@pytest.fixture
def fresh(tmp_path, monkeypatch):
    monkeypatch.setenv("KWS_CACHE", str(tmp_path))
    lexicon._entries.cache_clear()
    lexicon.cmu_lexicon.cache_clear()
    lexicon.cmu_lexicon_stressed.cache_clear()
    yield tmp_path
    lexicon._entries.cache_clear()
    lexicon.cmu_lexicon.cache_clear()
    lexicon.cmu_lexicon_stressed.cache_clear()


def test_the_cached_table_is_the_parsed_one(fresh):
    raw = lexicon._source()
    path = lexicon.cache_file(raw)
    assert path.parent == fresh / "lexicon" and not path.exists()
    first = dict(lexicon._entries())            # parsed, then kept
    assert path.is_file()
    lexicon._entries.cache_clear()
    assert lexicon._entries() == first == lexicon.parse(raw)
    stressed, plain = lexicon.cmu_lexicon_stressed(), lexicon.cmu_lexicon()
    assert stressed["computer"] == ["K", "AH0", "M", "P", "Y", "UW1", "T", "ER0"]
    assert plain["computer"] == ["K", "AH", "M", "P", "Y", "UW", "T", "ER"]
    assert len(plain) == len(first) and "computer" in plain and "zzzqx" not in plain
    assert plain.get("zzzqx") is None


def test_a_damaged_cache_file_is_parsed_again(fresh):
    raw = lexicon._source()
    want = lexicon.parse(raw)
    path = lexicon.cache_file(raw)
    path.parent.mkdir(parents=True)
    for damage in (b"", b"0" * 64 + b"\nnot marshal", path.name.encode()):
        path.write_bytes(damage)
        lexicon._entries.cache_clear()
        assert lexicon._entries() == want
        assert lexicon._load(path) == want          # written again, whole


def test_a_cache_folder_that_cannot_be_written_costs_only_the_parse(fresh):
    (fresh / "lexicon").write_text("a file where the folder would be")
    assert lexicon._entries() == lexicon.parse(lexicon._source())

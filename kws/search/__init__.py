"""Spoken-term search: recordings of many hours indexed as speech-embedding vectors, searched by a
typed term or a recording of it (``python -m kws search``; ``kws.ArchiveIndex``).

- ``archive``: the archive index (:class:`~kws.search.archive.ArchiveIndex`): its folder, how it
  is checked and built.
- ``rows``: what is stored of a recording (whitened vectors as int8 rows, their hashes).
- ``terms``: what a query is (a term's templates, from text or a recording).
- ``query``: how a query is answered (candidates from the inverted lists, exact scores, hits).
- ``shards``: what the workers of an indexing run write.
- ``dist``: where they run (this process, or a Dask cluster).
"""

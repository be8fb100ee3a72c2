"""Spoken-term search: recordings of many hours indexed as the model's vectors, searched by a typed
term or a recording of it as the detector matches keywords (``python -m kws search``;
``kws.ArchiveIndex``).

- ``archive``: the archive index (:class:`~kws.search.archive.ArchiveIndex`): its folder, how it
  is checked and built.
- ``rows``: what is stored of a recording (the model's vectors as int8 rows, their hashes) and a
  template in the same space.
- ``terms``: what a query is (a term's templates, from text or a recording).
- ``lists``: the inverted lists that propose where a query is scored (windows of rows, their
  codes, their checks).
- ``query``: how a query is answered (candidates from the inverted lists, exact scores, hits).
- ``fusion``: an index of both spaces (:class:`~kws.search.fusion.PairedIndex`), a term's two
  scores of each place added.
- ``joint``: the joint lists of an index of both spaces (entries of a raw window and the head's
  window at the same place), which propose its candidates by about the fused score.
- ``shards``: what the workers of an indexing run write.
- ``dist``: where they run (this process, or a Dask cluster).
"""

"""Spoken-term search: recordings of many hours indexed as speech-embedding vectors, searched by a
typed term or a recording of it (``python -m kws search``; ``kws.ArchiveIndex``).

- ``archive``: the archive index.
- ``dist``: indexing on a Dask cluster.
"""

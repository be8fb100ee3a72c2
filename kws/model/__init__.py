"""The model: a folder of networks and constants, checked by sha256, that turns audio into the
vectors keywords are matched in.

- ``model``: the folder and its manifest (:class:`~kws.model.model.Model`, ``kws.Model``).
- ``frontend``: audio -> raw vectors, offline and streaming, and where each vector lies in the audio.
- ``backbone``: the frozen speech-embedding network behind the front end (log-mel in numpy, ONNX).
- ``head``: raw vectors -> the unit vectors templates are matched in (or the identity).
- ``graph_bytes``: an ONNX model's bytes read and written with numpy; int8 weights made exact on every CPU.
"""

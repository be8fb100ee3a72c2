"""Training and evaluation data (never imported by the run-time path):

- ``vocab.py``: the fixed vocabulary split (in-vocabulary words trained on, out-of-vocabulary ones);
- ``real.py``: real recordings of ../shared/data as labelled word clips; ``align.py``: their word
  times by forced alignment; ``stage.py``: real audio packed small enough to travel to training;
- ``kokoro_corpus.py``: the head's Kokoro corpus (words alone and in sentences, in shards);
  ``kokoro_talk.py``: Kokoro talk for the background bank and evaluation; ``kokoro_render.py``:
  what both share (16 kHz audio and token durations, word times) and its two renderers,
  onnxruntime or ``kokoro_torch.py`` (the same model in PyTorch, weights read by
  ``kokoro_torch_weights.py``, batched on a GPU: docs/kokoro-torch.md);
- ``other_voices.py``: the corpus's words by other synthesisers (espeak-ng, flite, festival);
- ``rooms.py``: simulated room impulse responses.
"""

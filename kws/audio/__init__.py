"""Sound in: what the pipeline hears, as 16 kHz mono float32.

- ``io``: audio files and buffers to 16 kHz mono float32 (load, resample, convert, write, trim).
- ``mic``: the microphone, as a stream of blocks.
- ``vad``: the speech gate (webrtcvad plus a noise-floor check).
- ``ringbuffer``: the fixed-size ring the gate keeps its decisions in.
"""

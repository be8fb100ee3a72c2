"""The Wyoming wake-word server (``python -m kws serve``): kws for Home Assistant.

- ``server``: :class:`~kws.serve.server.KwsServer`, which accepts the connections, and ``serve()``.
- ``handler``: one client's connection: its events, one detector per audio stream.
- ``framing``: the protocol on the wire (events read with limits; the optional ``wyoming`` package).
- ``pcm``: the client's PCM to 16 kHz mono float32.
- ``source``: the keywords served (``--keyword`` texts, or the store, re-read when it changes).
- ``config``: the server's settings.
"""

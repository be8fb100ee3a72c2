"""The Wyoming wake-word server (``python -m kws serve``): kws for Home Assistant.

- ``server``: the server.
"""

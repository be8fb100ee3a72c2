"""The keywords a server serves: ``--keyword`` texts, or the keyword store, read again when it
changes (the demo keywords while it holds none)."""
from __future__ import annotations

import copy
import logging
import os
import time
from pathlib import Path
from typing import Optional, Sequence, Tuple

from kws.enroll.demo import demo_keywords
from kws.enroll.store import STORE_FILE, KeywordSet, StoreError, default_store_dir
from kws.model.model import Model
from kws.serve.config import ServeConfig
from kws.spot.detector import Detector, DetectorConfig

log = logging.getLogger("kws.serve")


def _text_keywords(texts: Sequence[str], threshold: Optional[float], model: Model,
                   config: DetectorConfig, fa_per_hour: Optional[float] = None) -> KeywordSet:
    return Detector.from_texts(list(texts), threshold=threshold, model=model, config=config,
                               fa_per_hour=fa_per_hour).keywords


class KeywordSource:
    """The keywords served and a version number that changes whenever they do.

    ``--keyword`` texts are fixed. Otherwise the store is read at start (a store that cannot be
    used raises :class:`StoreError`) and again whenever its ``keywords.json`` changes (mtime,
    size or inode); a store that becomes unreadable keeps the keywords served and is logged.
    """

    def __init__(self, model: Model, config: ServeConfig):
        self.model = model
        self.config = config
        self.store = Path(config.store) if config.store else default_store_dir()
        self.version = 0
        self.demo = False
        self._key: object = ()
        self._checked = float("-inf")
        self._demo_set: Optional[KeywordSet] = None
        if config.texts:
            self.keywords = _text_keywords(config.texts, config.threshold, model, config.detector,
                                           config.fa_per_hour)
            self.version = 1
        else:
            self._refresh(initial=True)

    def current(self) -> Tuple[int, KeywordSet]:
        """(version, keywords), re-reading the store when it changed (at most every reload_s)."""
        if not self.config.texts:
            now = time.monotonic()
            if now - self._checked >= self.config.reload_s:
                self._checked = now
                self._refresh(initial=False)
        return self.version, self.keywords

    def _stat(self) -> Optional[Tuple[int, int, int]]:
        try:
            st = os.stat(self.store / STORE_FILE)
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size, st.st_ino

    def _refresh(self, initial: bool) -> None:
        key = self._stat()
        if key == self._key:
            return
        ks: Optional[KeywordSet] = None
        if key is not None:
            try:
                ks = KeywordSet.load(self.store, self.model.model_id)
            except StoreError as exc:
                if initial:
                    raise
                # a newer write changes the key again and is read then
                self._key = key
                log.warning("keyword store changed but cannot be read; still serving %s: %s",
                            ", ".join(self.keywords.names), exc)
                return
        self._key = key
        if ks is None or len(ks) == 0:
            if self._demo_set is None:
                self._demo_set = demo_keywords(self.model)
            if not self.demo or initial:
                log.info("no keywords enrolled in %s: serving the demo keywords %s (add your own with "
                         "python -m kws.enroll add \"...\"; they are picked up without a restart)",
                         self.store, ", ".join(self._demo_set.names))
            ks, self.demo = self._demo_set, True
        else:
            self.demo = False
            log.info("%s %d keyword(s) from %s: %s", "serving" if initial else "keyword store changed; now serving",
                     len(ks), self.store, ", ".join(ks.names))
        if self.config.threshold is not None:          # --threshold: one for all, the store left as it is
            ks = copy.deepcopy(ks)
            for k in ks:
                k.threshold = float(self.config.threshold)
        self.keywords = ks
        self.version += 1

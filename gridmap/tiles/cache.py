"""Tiles kept in memory: least recently used first out, bounded in bytes, emptied by a publish."""
from __future__ import annotations

import threading
import time
from collections import OrderedDict

DEFAULT_BYTES = 64 * 1024 * 1024
ENTRY_OVERHEAD = 200  # the key, the tuple and the dict slot: an empty tile is not free


class TileCache:
    """(layer, z, x, y, generation, visibility) → (bytes, etag), at most ``max_bytes`` in all.

    Keys carry the generation, so a publish alone makes every older tile unreachable; the first
    key of a newer generation also drops them, so they do not sit out their time in the LRU.
    """

    def __init__(self, max_bytes=DEFAULT_BYTES):
        self.max_bytes = int(max_bytes)
        self._items = OrderedDict()
        self._bytes = 0
        self._generation = None
        self._lock = threading.Lock()
        self.hits = self.misses = 0
        self._seen = (None, 0.0)  # (generation, monotonic time it was read)

    def generation(self, read, max_age):
        """The published generation, read with ``read()`` at most every ``max_age`` seconds (the
        snapshot's SNAPSHOT_CHECK_SECONDS): a cached tile then costs no query at all."""
        gen, at = self._seen
        now = time.monotonic()
        if gen is None or now - at >= max_age:
            gen = read()
            self._seen = (gen, now)
        return gen

    def get(self, key):
        with self._lock:
            value = self._items.get(key)
            if value is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return value

    def put(self, key, value):
        size = len(value[0]) + ENTRY_OVERHEAD
        if size > self.max_bytes:
            return
        with self._lock:
            generation = key[4]
            if self._generation is None or generation > self._generation:
                self._drop_older(generation)
            elif generation < self._generation:
                return  # a slow request of the old generation: its tile is already stale
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= len(old[0]) + ENTRY_OVERHEAD
            self._items[key] = value
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, dropped = self._items.popitem(last=False)
                self._bytes -= len(dropped[0]) + ENTRY_OVERHEAD

    def _drop_older(self, generation):
        self._generation = generation
        for key in [k for k in self._items if k[4] < generation]:
            self._bytes -= len(self._items.pop(key)[0]) + ENTRY_OVERHEAD

    @property
    def bytes(self):
        return self._bytes

    def __len__(self):
        return len(self._items)

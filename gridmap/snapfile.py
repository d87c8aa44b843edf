"""Snapshot files: one file of flat arrays per generation, mapped read-only by every process; the build lock; NOTIFY.

Layout of ``gen-<N>.snap`` (little-endian)::

    b"GRIDSNAP" | u32 version | u32 header length | header (JSON) | padding | array … array

The header holds the free-form ``meta`` (small things: names of kinds, settings of the build)
and, per array, its dtype, shape, offset, byte length and CRC-32; ``total`` is the file's size.
Every array starts on a 64-byte boundary so ``numpy.frombuffer`` over one ``mmap`` gives aligned,
read-only views: the pages are the kernel's page cache, shared by every process that maps the
file, and never copied.

A file is written under a temporary name in the same folder, flushed and fsynced, and renamed: a
reader sees a whole file or none. A file that is short, long, or whose checksums disagree (a disk
that lost a write, a hand edit) is refused with :class:`BadSnapshotFile`; the caller rebuilds it.

Only one process builds a generation: :func:`build_lock` is ``pg_try_advisory_lock`` on PostgreSQL
and an ``flock`` on a file beside the snapshots otherwise. The others keep serving the generation
they have and map the file when it appears.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import logging
import mmap
import os
import re
import socket
import struct
import threading
import time
import zlib
from pathlib import Path

import numpy as np
from sqlalchemy import text

from .store.generations import CHANNEL

log = logging.getLogger(__name__)

MAGIC = b"GRIDSNAP"
VERSION = 1
_ALIGN = 64
_NAME = re.compile(r"^gen-(\d+)\.snap$")
# checksums are verified a block at a time: a 300 MB file is not read into memory to check it
_CRC_BLOCK = 1 << 24


class BadSnapshotFile(Exception):
    """A snapshot file that is partial, of another format or corrupt: rebuild it, never serve it."""


# -- strings as offsets + bytes ---------------------------------------------------------------------

def pack_values(values):
    """Any JSON-able values (str, int, float, None) → (int64 offsets, uint8 bytes): one JSON text each.

    Python lists of 250,000 names cost ~60 bytes a name in every process; these are mapped.
    """
    parts = [json.dumps(_plain(v), ensure_ascii=False).encode() for v in values]
    offsets = np.zeros(len(parts) + 1, dtype=np.int64)
    np.cumsum([len(p) for p in parts], out=offsets[1:])
    return offsets, np.frombuffer(b"".join(parts), dtype=np.uint8).copy()


def pack_bytes(values):
    """bytes (or None, stored as empty) → (int64 offsets, uint8 bytes)."""
    parts = [v or b"" for v in values]
    offsets = np.zeros(len(parts) + 1, dtype=np.int64)
    np.cumsum([len(p) for p in parts], out=offsets[1:])
    return offsets, np.frombuffer(b"".join(parts), dtype=np.uint8).copy()


class PackedValues:
    """A read-only sequence over :func:`pack_values` arrays: ``values[i]`` decodes one value."""

    def __init__(self, offsets, blob):
        self._o = memoryview(offsets)  # memoryview items are plain ints: faster than numpy scalars
        self._blob = blob
        self._n = len(offsets) - 1

    def __len__(self):
        return self._n

    def __getitem__(self, i):
        i = int(i)
        if i < 0:
            i += self._n
        if not 0 <= i < self._n:
            raise IndexError(i)
        return json.loads(self._blob[self._o[i]:self._o[i + 1]].tobytes())

    def __iter__(self):
        return (self[i] for i in range(self._n))

    def tolist(self):
        return list(self)

    @property
    def nbytes(self):
        return self._blob.nbytes + 8 * (self._n + 1)


def _plain(v):
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, float) and v != v:
        return None  # NaN (pandas' missing) reads back as None
    return v


# -- one file of arrays -----------------------------------------------------------------------------

def path_for(directory, gen):
    return Path(directory) / f"gen-{int(gen):08d}.snap"


def generations_in(directory):
    """Generations with a file in ``directory``, ascending."""
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    return sorted(int(m.group(1)) for m in map(_NAME.match, names) if m)


def write(directory, gen, arrays, meta):
    """Write ``arrays`` (name → ndarray) and ``meta`` (JSON-able) as generation ``gen``; return its path.

    Written under a temporary name and renamed over any file of the same generation (a corrupt one
    being rebuilt): readers see the whole old file or the whole new one, never a part.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    table, offset = {}, 0
    arrays = {k: np.ascontiguousarray(v) for k, v in arrays.items()}
    for name, a in arrays.items():
        if a.dtype.hasobject:
            raise TypeError(f"array {name!r} holds Python objects; pack it first")
        table[name] = {"dtype": a.dtype.str, "shape": list(a.shape), "offset": offset, "nbytes": int(a.nbytes),
                       "crc": _crc(a)}
        offset += _aligned(a.nbytes)
    head = {"generation": int(gen), "meta": meta, "arrays": table}
    head_bytes = json.dumps(head, ensure_ascii=False).encode()
    start = _aligned(len(MAGIC) + 8 + len(head_bytes))
    head["data_start"] = start  # the header's own length moves the start: write it with room to spare
    head_bytes = json.dumps(head, ensure_ascii=False).encode()
    while len(MAGIC) + 8 + len(head_bytes) > start:
        start = _aligned(len(MAGIC) + 8 + len(head_bytes)) + _ALIGN
        head["data_start"] = start
        head_bytes = json.dumps(head, ensure_ascii=False).encode()
    total = start + offset
    final = path_for(directory, gen)
    tmp = directory / f".{final.name}.{socket.gethostname()}.{os.getpid()}.{threading.get_ident()}.tmp"
    try:
        with open(tmp, "wb") as f:
            f.write(MAGIC + struct.pack("<II", VERSION, len(head_bytes)) + head_bytes)
            f.write(b"\0" * (start - f.tell()))
            for name, a in arrays.items():
                f.write(memoryview(a.reshape(-1)).cast("B"))
                f.write(b"\0" * (_aligned(a.nbytes) - a.nbytes))
            f.write(struct.pack("<Q", total))  # trailer: a file cut anywhere is caught by its size
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, final)
        _fsync_dir(directory)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return final


class Mapped:
    """A snapshot file mapped read-only: ``arrays`` (name → read-only ndarray), ``meta``, ``generation``."""

    def __init__(self, path, *, verify=True):
        self.path = Path(path)
        with open(self.path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size < len(MAGIC) + 16:
                raise BadSnapshotFile(f"{self.path} is {size} bytes: too short")
            self._mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        try:
            self._open(size, verify)
        except BadSnapshotFile:
            self._close()
            raise
        except Exception as err:  # a garbled header: whatever broke, the file is not a snapshot
            self._close()
            raise BadSnapshotFile(f"{self.path}: {err}") from err

    def _close(self):
        self.arrays = {}
        with contextlib.suppress(BufferError):  # views still held by a traceback: unmapped when they go
            self._mm.close()

    def _open(self, size, verify):
        mm = self._mm
        if mm[:len(MAGIC)] != MAGIC:
            raise BadSnapshotFile(f"{self.path} is not a gridmap snapshot file")
        version, hlen = struct.unpack_from("<II", mm, len(MAGIC))
        if version != VERSION:
            raise BadSnapshotFile(f"{self.path} has format {version}, this gridmap reads {VERSION}")
        head = json.loads(mm[len(MAGIC) + 8:len(MAGIC) + 8 + hlen])
        start = head["data_start"]
        total = start + sum(_aligned(a["nbytes"]) for a in head["arrays"].values())
        if size != total + 8 or struct.unpack_from("<Q", mm, total)[0] != total:
            raise BadSnapshotFile(f"{self.path} is {size} bytes, expected {total + 8}: a partial write")
        self.generation = int(head["generation"])
        self.meta = head["meta"]
        self.arrays = {}
        self.crcs = {name: spec["crc"] for name, spec in head["arrays"].items()}
        for name, spec in head["arrays"].items():
            dtype = np.dtype(spec["dtype"])
            count = spec["nbytes"] // dtype.itemsize if dtype.itemsize else 0
            a = np.frombuffer(mm, dtype=dtype, count=count, offset=start + spec["offset"]).reshape(spec["shape"])
            if verify and _crc(a) != spec["crc"]:
                raise BadSnapshotFile(f"{self.path}: array {name!r} fails its checksum")
            self.arrays[name] = a
        self.nbytes = size

    def __getitem__(self, name):
        return self.arrays[name]

    def key(self, prefix):
        """What identifies the arrays named ``prefix.*``: their names and checksums (equal → same data)."""
        return tuple(sorted((k, c) for k, c in self.crcs.items() if k.startswith(prefix + ".")))

    def get(self, name, default=None):
        return self.arrays.get(name, default)


def _crc(a):
    buf = memoryview(a.reshape(-1)).cast("B") if a.nbytes else b""
    crc = 0
    for i in range(0, len(buf), _CRC_BLOCK):
        crc = zlib.crc32(buf[i:i + _CRC_BLOCK], crc)
    return crc


def _aligned(n):
    return (n + _ALIGN - 1) // _ALIGN * _ALIGN


def _fsync_dir(directory):
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def remove_old(directory, keep):
    """Delete generation files not in ``keep`` and temporary files older than an hour.

    A process that still maps a deleted file keeps reading it (the kernel frees it at the last
    unmap), so removal never pulls a snapshot out from under a request.
    """
    for gen in generations_in(directory):
        if gen not in keep:
            with contextlib.suppress(FileNotFoundError):
                path_for(directory, gen).unlink()
    with contextlib.suppress(FileNotFoundError):
        for name in os.listdir(directory):
            p = Path(directory) / name
            if name.endswith(".tmp") and time.time() - p.stat().st_mtime > 3600:
                with contextlib.suppress(FileNotFoundError):
                    p.unlink()


def folder_for(root, store):
    """The folder of one store's snapshot files under ``root``: stores never share files."""
    url = store.url.render_as_string(hide_password=True)
    return Path(root) / hashlib.sha1(url.encode()).hexdigest()[:12]


# -- the build lock ---------------------------------------------------------------------------------

@contextlib.contextmanager
def build_lock(store, directory, gen):
    """Yield True when this process holds the right to build ``gen`` into ``directory``, else False.

    PostgreSQL: a session advisory lock keyed by host, folder and generation, held on a connection
    of its own for the build (every host with its own disk builds its own file once). SQLite: an
    exclusive ``flock`` on ``.build.lock`` beside the files. Never waits: the loser keeps serving.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if store.is_postgis:
        digest = hashlib.sha1(f"{socket.gethostname()}|{directory.resolve()}|{gen}".encode()).digest()
        key = int.from_bytes(digest[:8], "big", signed=True)
        with store.engine.connect() as conn:
            got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar())
            conn.commit()
            try:
                yield got
            finally:
                if got:
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                    conn.commit()
        return
    fd = os.open(directory / ".build.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            got = True
        except OSError as err:
            if err.errno not in (errno.EWOULDBLOCK, errno.EACCES):
                raise
            got = False
        try:
            yield got
        finally:
            if got:
                fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


# -- generation changes by NOTIFY (store.generations.bump_generation sends them) ---------------------

class Listener:
    """A thread that LISTENs on :data:`CHANNEL` with its own psycopg connection and calls ``on_notify()``.

    Reconnects after a lost connection (a restarted server), calling ``on_notify()`` once it is back,
    since a publish may have happened while it was away. ``stop()`` ends it.
    """

    def __init__(self, store, on_notify, *, retry_seconds=1.0):
        self.store = store
        self.on_notify = on_notify
        self.retry_seconds = retry_seconds
        self._stop = threading.Event()
        self.connected = threading.Event()
        self.thread = threading.Thread(target=self._run, name="gridmap-listen", daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self._stop.set()

    def _run(self):
        import psycopg
        url = self.store.url.set(drivername="postgresql")
        dsn = url.render_as_string(hide_password=False)
        first = True
        while not self._stop.is_set():
            try:
                with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self.connected.set()
                    if not first:
                        self.on_notify()
                    first = False
                    while not self._stop.is_set():
                        got = False
                        for _ in conn.notifies(timeout=1.0, stop_after=1):
                            got = True
                        if got:
                            self.on_notify()
            except Exception as err:  # lost connection, server restart: listen again shortly
                self.connected.clear()
                log.warning("snapshot listener: %s; reconnecting in %.0f s", err, self.retry_seconds)
                self._stop.wait(self.retry_seconds)

"""Files uploaded for import: type sniffed, zips measured as they unpack, kept privately until used or expired.

The checks run on the bytes before any reader (GDAL, pandas, osmium) sees the file, so a file
that lies about its type, or a zip whose members would unpack to gigabytes or number in the
thousands, is refused with the value and the fix and never reaches a parser. Every refusal is
an :class:`~gridmap.errors.InvalidInput` (400) or :class:`UploadTooLarge` (413) whose
``details`` carry ``code`` and its parameters, for the web layer to say in the page's language.

An upload lives in ``ROOT/<id>/``: the file under its own (cleaned) name, ``meta.json`` (who,
when, what) and the state of its job (:mod:`.jobs`). The folder is readable by the server's
user only; it is deleted after expiry, and the file itself right after a successful import.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import struct
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import GridmapError, InvalidInput, N_, NotFound

#: What can be uploaded: the suffix → the format's name. The CLI reads a bare .shp too, but a
#: Shapefile is several files: uploaded, it must come zipped.
FORMATS = {".csv": "CSV", ".geojson": "GeoJSON", ".json": "GeoJSON", ".gpkg": "GeoPackage",
           ".zip": "zipped Shapefile", ".osm": "OpenStreetMap XML", ".osm.pbf": "OpenStreetMap PBF",
           ".pbf": "OpenStreetMap PBF"}

_ID = re.compile(r"[A-Za-z0-9_-]{22}")
_UNSAFE_NAME = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]+')
_CHUNK = 1 << 20
# Signatures of files that are never data for an import, so a wrong suffix can be named.
_MAGIC = ((b"PK\x03\x04", "a ZIP archive"), (b"PK\x05\x06", "an empty ZIP archive"),
          (b"SQLite format 3\x00", "a GeoPackage or SQLite database"), (b"%PDF", "a PDF document"),
          (b"\x89PNG", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"), (b"\x7fELF", "a program"),
          (b"MZ", "a Windows program"), (b"\xd0\xcf\x11\xe0", "an Excel 97 workbook"),
          (b"\x1f\x8b", "a gzip archive"), (b"Rar!", "a RAR archive"), (b"7z\xbc\xaf", "a 7-Zip archive"))


class UploadTooLarge(GridmapError):
    """The upload (or what it unpacks to) is larger than a limit: 413, nothing kept."""

    status = 413
    code = "too_large"


@dataclass(frozen=True)
class Limits:
    """The border's limits for one upload (the IMPORT_MAX_* settings)."""

    upload_bytes: int = 64 * 2**20
    unzipped_bytes: int = 512 * 2**20
    zip_members: int = 64


def suffix_of(name):
    """The upload's format suffix (``.osm.pbf`` whole), or raise naming the accepted ones."""
    low = (name or "").lower()
    for suffix in sorted(FORMATS, key=len, reverse=True):
        if low.endswith(suffix):
            return suffix
    shown = Path(low).suffix or "(none)"
    if shown == ".shp":
        raise InvalidInput(N_('"%(name)s" is one part of a Shapefile; its .dbf, .shx and .prj are needed too.'),
                           fix=N_("Zip the .shp, .shx, .dbf, .prj (and .cpg) files together and upload the .zip."),
                           details={"code": "shapefile_unzipped", "name": name},
                           params={"name": name})
    raise InvalidInput(N_('"%(name)s" has the extension "%(shown)s", which is not a file gridmap imports.'),
                       fix="Upload one of " + ", ".join(FORMATS) + ".",
                       details={"code": "bad_extension", "name": name, "extension": shown,
                                "allowed": ", ".join(FORMATS)},
                       params={"name": name, "shown": shown})


def clean_name(name):
    """The uploaded file's own name, fit to be a file name here: no folders, no control characters, ≤ 100 characters."""
    base = _UNSAFE_NAME.sub("_", (name or "").replace("\\", "/").rsplit("/", 1)[-1]).strip(" .")
    suffix = suffix_of(name)
    stem = base[: len(base) - len(suffix)] if base.lower().endswith(suffix) else base
    stem = stem[: 100 - len(suffix)] or "upload"
    return stem + suffix


def save(root, stream, name, *, user, kind, limits=Limits()):
    """Check ``stream`` (a binary file object) named ``name`` and keep it in a new private folder under ``root``.

    Returns the new upload's id. Raises (and keeps nothing) when the name's type is not one
    gridmap reads, the bytes are not that type, the file is larger than ``limits.upload_bytes``,
    or a zip holds more members or unpacks to more bytes than its limits.
    """
    filename = clean_name(name)
    root = private_root(root)
    upload_id = secrets.token_urlsafe(16)
    folder = root / upload_id
    folder.mkdir(mode=0o700)
    try:
        path = folder / filename
        size = _copy_bounded(stream, path, limits.upload_bytes, name)
        sniff(path, name)
        if suffix_of(name) == ".zip":
            check_zip(path, name, limits)
        write_json(folder / "meta.json", {"id": upload_id, "name": filename, "user": user, "kind": kind,
                                           "bytes": size, "created": time.time()})
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return upload_id


def private_root(root):
    """``root`` made if missing, readable by this user only."""
    root = Path(root)
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(root, 0o700)
    return root


def folder_of(root, upload_id):
    """The folder of upload ``upload_id``; NotFound for an id that is not one (or is gone)."""
    if not isinstance(upload_id, str) or not _ID.fullmatch(upload_id):
        raise NotFound(N_("Upload %(value)s is not an upload id."),
                       fix=N_("Open the upload from the list on /admin/imports."), details={"code": "no_upload"},
                       params={"value": repr(str(upload_id)[:40])})
    folder = Path(root) / upload_id
    if not (folder / "meta.json").exists():
        raise NotFound(N_("Upload %(upload_id)s does not exist (it was imported or discarded, or it expired)."),
                       fix=N_("Upload the file again."), details={"code": "no_upload"},
                       params={"upload_id": upload_id})
    return folder


def meta(folder):
    """What was uploaded: id, name, user, kind, bytes, created."""
    return json.loads((Path(folder) / "meta.json").read_text())


def data_path(folder):
    """The uploaded file in ``folder``, or None once it has been imported."""
    m = meta(folder)
    path = Path(folder) / m["name"]
    return path if path.exists() else None


def listing(root, *, user=None):
    """Uploads under ``root`` (only ``user``'s when given), newest first, as their meta dicts."""
    root = Path(root)
    if not root.exists():
        return []
    out = []
    for folder in root.iterdir():
        try:
            m = meta(folder)
        except (OSError, ValueError):
            continue
        if user is None or m.get("user") == user:
            out.append(m)
    return sorted(out, key=lambda m: m["created"], reverse=True)


def expire(root, *, hours, busy=lambda folder: False, now=None):
    """Delete the uploads older than ``hours`` (those ``busy`` says are being worked on stay); returns how many."""
    root = Path(root)
    if not root.exists():
        return 0
    now = time.time() if now is None else now
    gone = 0
    for folder in root.iterdir():
        try:
            created = meta(folder)["created"]
        except (OSError, ValueError, KeyError):
            created = folder.stat().st_mtime  # a folder whose upload failed half-way
        if now - created > hours * 3600 and not busy(folder):
            shutil.rmtree(folder, ignore_errors=True)
            gone += 1
    return gone


def discard(folder):
    shutil.rmtree(folder, ignore_errors=True)


# --- the checks ----------------------------------------------------------------------------------


def sniff(path, name):
    """Refuse a file whose first bytes are not of the type its name says (named, with what it looks like)."""
    suffix = suffix_of(name)
    with open(path, "rb") as f:
        head = f.read(4096)
    fmt = FORMATS[suffix]
    body = head.lstrip(b"\xef\xbb\xbf").lstrip()
    if suffix == ".zip":
        ok = head.startswith(b"PK\x03\x04")
    elif suffix == ".gpkg":
        ok = head.startswith(b"SQLite format 3\x00")
    elif suffix in (".pbf", ".osm.pbf"):
        ok = len(head) > 8 and b"OSMHeader" in head[4:40]
    elif suffix == ".osm":
        ok = body.startswith((b"<?xml", b"<osm")) and b"<osm" in head
    elif suffix in (".geojson", ".json"):
        ok = body.startswith(b"{")
    else:  # CSV: text in any encoding, so only what is certainly not text is refused
        ok = b"\x00" not in head and not any(head.startswith(magic) for magic, _ in _MAGIC)
    if ok:
        return
    looks = next((what for magic, what in _MAGIC if head.startswith(magic)), None)
    if looks is None:
        looks = "text" if head and b"\x00" not in head else ("empty" if not head else "binary data")
    raise InvalidInput(N_('"%(name)s" is named as a %(fmt)s file, but its content is %(looks)s.'),
                       fix=N_("Upload the %(fmt)s file itself, or give the file the extension of what it really is."),
                       details={"code": "wrong_type", "name": name, "format": fmt, "looks": looks},
                       params={"name": name, "fmt": fmt, "looks": looks})


def check_zip(path, name, limits):
    """Refuse a zip with more members than ``limits.zip_members`` or unpacking to more than ``limits.unzipped_bytes``.

    The member count is read from the archive's last record before Python lists the members
    (a 64 MiB archive can name a million of them); then every member is inflated to nowhere,
    a megabyte at a time, counting real bytes, so a member that lies about its size stops at
    the limit too. Encrypted and damaged archives are refused.
    """
    count = _zip_member_count(path, name)
    if count > limits.zip_members:
        raise UploadTooLarge(f'"{name}" holds {count:,} files; an uploaded zip may hold at most {limits.zip_members:,}.',
                             fix="Zip only the Shapefile's own files (.shp, .shx, .dbf, .prj, .cpg), or ask the "
                                 "operator to raise GRIDMAP_IMPORT_MAX_ZIP_MEMBERS.",
                             details={"code": "zip_members", "name": name, "members": count,
                                      "limit": limits.zip_members, "setting": "GRIDMAP_IMPORT_MAX_ZIP_MEMBERS"})
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            declared = sum(i.file_size for i in infos)
            if declared > limits.unzipped_bytes:
                raise _unzipped_too_large(name, declared, limits)
            total = 0
            for info in infos:
                if info.flag_bits & 0x1:
                    raise InvalidInput(N_('"%(name)s" is encrypted (%(filename)s needs a password).'),
                                       fix=N_("Zip the files again without a password."),
                                       details={"code": "zip_encrypted", "name": name, "member": info.filename},
                                       params={"name": name, "filename": info.filename})
                with zf.open(info) as member:
                    while chunk := member.read(_CHUNK):
                        total += len(chunk)
                        if total > limits.unzipped_bytes:
                            raise _unzipped_too_large(name, total, limits)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, NotImplementedError, OSError) as err:
        if isinstance(err, GridmapError):
            raise
        raise InvalidInput(N_('"%(name)s" is a damaged or unsupported zip archive (%(err)s).'),
                           fix=N_("Zip the files again (plain ZIP, deflate) and upload the new archive."),
                           details={"code": "zip_damaged", "name": name, "reason": str(err)},
                           params={"name": name, "err": err}) from None


def _unzipped_too_large(name, size, limits):
    return UploadTooLarge(
        f'"{name}" unpacks to more than {limits.unzipped_bytes:,} bytes (at least {size:,}).',
        fix="Upload a smaller extract, or convert it to a GeoPackage; or ask the operator to raise "
            "GRIDMAP_IMPORT_MAX_UNZIPPED_BYTES.",
        details={"code": "zip_unzipped", "name": name, "bytes": size, "limit": limits.unzipped_bytes,
                 "setting": "GRIDMAP_IMPORT_MAX_UNZIPPED_BYTES"})


def _zip_member_count(path, name):
    """Members the zip's end-of-central-directory record declares (0xFFFF: Zip64, counted as that many at least)."""
    size = Path(path).stat().st_size
    with open(path, "rb") as f:
        f.seek(max(0, size - (22 + 65535)))
        tail = f.read()
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < 22:
        raise InvalidInput(N_('"%(name)s" is not a complete zip archive (its directory at the end is missing).'),
                           fix=N_("Upload the whole file again; the upload or the download before it was cut short."),
                           details={"code": "zip_damaged", "name": name, "reason": "no end of central directory"},
                           params={"name": name})
    (entries,) = struct.unpack("<H", tail[at + 10:at + 12])
    return entries


def _copy_bounded(stream, path, limit, name):
    """Copy ``stream`` to ``path``, refusing (and stopping) at the first byte past ``limit``; returns the size."""
    size = 0
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        while chunk := stream.read(_CHUNK):
            size += len(chunk)
            if size > limit:
                raise UploadTooLarge(
                    f'"{name}" is larger than {limit:,} bytes, the most an upload may be.',
                    fix="Split the file, or import it on the server with `gridmap import`; or ask the operator "
                        "to raise GRIDMAP_IMPORT_MAX_UPLOAD_BYTES.",
                    details={"code": "upload_size", "name": name, "limit": limit,
                             "setting": "GRIDMAP_IMPORT_MAX_UPLOAD_BYTES"})
            out.write(chunk)
    if size == 0:
        raise InvalidInput(N_('"%(name)s" is empty.'), fix=N_("Choose the file again; it has no bytes."),
                           details={"code": "empty", "name": name},
                           params={"name": name})
    return size


def write_json(path, value):
    """Write ``value`` to ``path`` whole or not at all (readers in other processes never see half of it)."""
    tmp = Path(path).with_suffix(".tmp")
    tmp.write_text(json.dumps(value, ensure_ascii=False))
    os.replace(tmp, path)



"""Photos people attach (a resident's report, a grid worker's resolve): checked, cleaned, kept and served.

One border for every photo upload. A file is taken only when its **content** is a JPEG, PNG or
WebP (the name and the browser's content type are the sender's word, not the file's), when it
is no larger than ``max_bytes`` and declares no more than ``max_pixels`` (checked before a pixel
is decoded: a small file can unpack into gigabytes), and when Pillow can decode it. What is kept
is a **re-encoding** of the decoded pixels, turned upright as the camera's EXIF orientation says,
scaled to at most ``max_side`` pixels a side, in the same format, with no metadata at all: a
phone photo's EXIF names where it was taken (GPS), with what and when, and a resident's report is
often taken at home.

Photos are rows of the store (:class:`gridmap.store.models.Photo`), not files: they are written
in their owner's transaction, so a refused report leaves nothing behind, and every process and
host on one database serves them. Who may see a photo is its owner's business (the caller asks
:mod:`gridmap.access` about the owner, then calls :func:`photo_bytes`).

Errors are :class:`~gridmap.errors.InvalidInput` with ``details["reason"]`` (a code) and the values
it names, so a page can say it in its own language:

- ``too_many_photos`` (``count``, ``most``)
- ``photo_too_large`` (``name``, ``size``, ``most``)
- ``photo_not_image`` (``name``): not a JPEG, PNG or WebP by its content
- ``photo_unreadable`` (``name``): starts like one but cannot be decoded (cut short, damaged)
- ``photo_too_many_pixels`` (``name``, ``pixels``, ``most``)
"""
from __future__ import annotations

import hashlib
import io
import re
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps
from sqlalchemy import select

from . import settings
from .errors import InvalidInput, N_, NotFound
from .store import models as m

#: content type → (Pillow's format name, how its files begin)
FORMATS = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP"}
_SAVE_OPTIONS = {"JPEG": {"quality": 85}, "PNG": {}, "WEBP": {"quality": 80}}
#: what each format may hold when re-encoded; anything else is converted to the first
_MODES = {"JPEG": ("RGB", "L"), "PNG": ("RGB", "RGBA", "L", "LA", "P"), "WEBP": ("RGB", "RGBA")}


@dataclass(frozen=True)
class PhotoLimits:
    """How many photos one upload may carry and how large each may be (see the PHOTO_* settings)."""

    max_count: int = 3
    max_bytes: int = settings.default("PHOTO_MAX_BYTES")
    max_pixels: int = settings.default("PHOTO_MAX_PIXELS")
    max_side: int = settings.default("PHOTO_MAX_SIDE")

    @classmethod
    def from_config(cls, config, *, max_count=3):
        """The limits an app's settings give, with ``max_count`` photos per upload."""
        return cls(max_count=max_count, max_bytes=int(config["PHOTO_MAX_BYTES"]),
                   max_pixels=int(config["PHOTO_MAX_PIXELS"]), max_side=int(config["PHOTO_MAX_SIDE"]))


@dataclass(frozen=True)
class CleanPhoto:
    """A photo that passed :func:`clean_photos`: re-encoded bytes without metadata, ready to store."""

    name: str
    mime: str
    width: int
    height: int
    data: bytes


def save_photos(store_or_session, files, *, owner_kind, owner_id, limits=PhotoLimits(), stage="report",
                reporter_sees=True):
    """Check and clean every one of ``files``, then store them for ``(owner_kind, owner_id)``.

    Parameters
    ----------
    store_or_session
        A SQLAlchemy session (the owner's transaction: the caller commits) or a
        :class:`gridmap.store.Store` (a transaction of its own).
    files
        Uploads: Werkzeug ``FileStorage`` objects, binary file objects, ``bytes``, ``(name, bytes)``
        pairs, or :class:`CleanPhoto` from an earlier :func:`clean_photos`. Empty parts (a form's
        file box left empty) are skipped.
    owner_kind, owner_id
        What the photos belong to, e.g. ``("incident", 12)``.
    stage, reporter_sees
        The step the photos show ("report", "resolve") and whether the holder of the report's status
        link sees them (see :class:`gridmap.store.models.Photo`).

    Returns
    -------
    list of int
        The new photos' ids, in the order given.

    Raises InvalidInput (see the module's reasons) before anything is written when any file fails.
    """
    cleaned = clean_photos(files, limits=limits)
    if not isinstance(owner_kind, str) or not 0 < len(owner_kind) <= 32:
        raise ValueError(f"owner_kind={owner_kind!r} is not a short name such as 'incident'")
    if hasattr(store_or_session, "transaction"):
        with store_or_session.transaction() as session:
            return _insert(session, cleaned, owner_kind, int(owner_id), stage, bool(reporter_sees))
    return _insert(store_or_session, cleaned, owner_kind, int(owner_id), stage, bool(reporter_sees))


def clean_photos(files, *, limits=PhotoLimits()):
    """Every upload of ``files`` checked and re-encoded (see the module); nothing is stored.

    Lets a caller refuse a whole request before it writes its owner. Returns [CleanPhoto]."""
    items = [item for item in (_read(f, limits.max_bytes) for f in (files or ())) if item is not None]
    if len(items) > limits.max_count:
        raise InvalidInput(N_("%(items)s photos were sent; at most %(max_count)s are taken."),
                           fix=N_("Choose at most %(max_count)s photos."),
                           details={"reason": "too_many_photos", "count": len(items), "most": limits.max_count},
                           params={"items": len(items), "max_count": limits.max_count})
    return [item if isinstance(item, CleanPhoto) else _clean(*item, limits) for item in items]


def photo_bytes(session, photo_id, *, owner_kind=None, owner_id=None, reporter=False):
    """``(bytes, content type)`` of a stored photo; NotFound for an unknown id or one of another owner.

    Pass the owner the caller was allowed to see, so an id guessed from another report answers as
    one that does not exist; ``reporter=True`` (the holder of a report's link) answers the same for
    a photo not shown to the reporter."""
    row = session.get(m.Photo, photo_id) if isinstance(photo_id, int) and 0 < photo_id < 2 ** 31 else None
    if row is None or (owner_kind is not None and (row.owner_kind, row.owner_id) != (owner_kind, owner_id)) \
            or (reporter and not row.reporter_sees):
        raise missing(photo_id)
    return row.data, row.mime


def missing(photo_id):
    """The one NotFound of a photo: for one that does not exist and one the caller may not see alike."""
    return NotFound(f"Photo {photo_id} does not exist.", fix="Use a photo link from the page that showed it.",
                    details={"reason": "photo_not_found"})


def photo_owner(session, photo_id):
    """``(owner_kind, owner_id)`` of a stored photo, or None: for a caller that checks access by owner."""
    if not isinstance(photo_id, int) or not 0 < photo_id < 2 ** 31:
        return None
    row = session.execute(select(m.Photo.owner_kind, m.Photo.owner_id).where(m.Photo.id == photo_id)).first()
    return tuple(row) if row else None


def photos_of(session, owner_kind, owner_id):
    """The photos of one owner, in the order they were given: ``[{id, mime, width, height, size, stage,
    reporter_sees}]``."""
    rows = session.execute(select(m.Photo.id, m.Photo.mime, m.Photo.width, m.Photo.height, m.Photo.size,
                                  m.Photo.stage, m.Photo.reporter_sees)
                           .where(m.Photo.owner_kind == owner_kind, m.Photo.owner_id == int(owner_id))
                           .order_by(m.Photo.created_at, m.Photo.position, m.Photo.id)).all()
    return [dict(r._mapping) for r in rows]


# --- private helpers -------------------------------------------------------------------------------

def _insert(session, cleaned, owner_kind, owner_id, stage="report", reporter_sees=True):
    rows = [m.Photo(owner_kind=owner_kind, owner_id=owner_id, position=i, mime=c.mime, width=c.width,
                    height=c.height, size=len(c.data), sha256=hashlib.sha256(c.data).hexdigest(), data=c.data,
                    stage=stage, reporter_sees=reporter_sees)
            for i, c in enumerate(cleaned)]
    session.add_all(rows)
    session.flush()
    return [r.id for r in rows]


def _read(item, most):
    """(name, bytes) of one upload, at most ``most`` + 1 bytes read; None for an empty part."""
    if isinstance(item, CleanPhoto):
        return item
    if isinstance(item, (bytes, bytearray)):
        name, data = "photo", bytes(item)
    elif isinstance(item, tuple) and len(item) == 2:
        name, data = str(item[0] or "photo"), bytes(item[1])
    else:
        name = getattr(item, "filename", None) or getattr(item, "name", None) or "photo"
        stream = getattr(item, "stream", item)
        data = stream.read(most + 1)
    name = str(name)[-80:]  # the sender's name, shown back in errors only
    if not data:
        return None
    if len(data) > most:
        size = getattr(item, "content_length", 0) or len(data)
        raise InvalidInput(N_("Photo %(name)s is larger than %(most)s bytes."),
                           fix=N_("Send a smaller photo (at most %(value)s MB), e.g. the phone's 'medium' size; the "
                                  "operator sets the limit as GRIDMAP_PHOTO_MAX_BYTES."),
                           details={"reason": "photo_too_large", "name": name, "size": size, "most": most},
                           params={"name": repr(name), "most": format(most, ','), "value": most // (1024 * 1024)})
    return name, data


def _sniff(data):
    """The content type the bytes themselves show, or None."""
    if data[:3] == b"\xff\xd8\xff":
        return "image/jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "image/png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def _clean(name, data, limits):
    mime = _sniff(data)
    if mime is None:
        raise InvalidInput(N_("%(name)s is not a JPEG, PNG or WebP photo (judged by its content, not its name)."),
                           fix=N_("Send a photo taken by a phone or camera: JPEG, PNG or WebP."),
                           details={"reason": "photo_not_image", "name": name},
                           params={"name": repr(name)})
    fmt = FORMATS[mime]
    unreadable = InvalidInput(f"Photo {name!r} cannot be read: it is damaged or cut short.",
                              fix="Send the photo again, or take a new one.",
                              details={"reason": "photo_unreadable", "name": name})
    try:
        with warnings.catch_warnings():
            # Pillow's own bomb guard warns, then refuses far above ours: ours names the setting
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            try:
                img = Image.open(io.BytesIO(data), formats=[fmt])
            except Image.DecompressionBombError as err:
                found = re.search(r"\((\d+) pixels\)", str(err))
                raise _too_many_pixels(name, int(found.group(1)) if found else None, limits) from None
        width, height = img.size
        if width * height > limits.max_pixels:
            raise _too_many_pixels(name, width * height, limits)
        # scaled first (a JPEG far larger is decoded at a reduced scale), turned after: rotating the
        # small image costs a fraction of rotating the camera's
        img.thumbnail((limits.max_side, limits.max_side))
        img.load()
        img = ImageOps.exif_transpose(img)  # the pixels as the camera meant them; the tag goes with the rest
        if img.mode not in _MODES[fmt]:
            img = img.convert("RGBA" if "A" in img.getbands() and "RGBA" in _MODES[fmt] else _MODES[fmt][0])
        img.info = {}  # no EXIF, XMP, ICC, text chunks or comments travel into the stored copy
        out = io.BytesIO()
        img.save(out, format=fmt, **_SAVE_OPTIONS[fmt])
    except InvalidInput:
        raise
    except (OSError, SyntaxError, ValueError, EOFError):
        raise unreadable from None
    return CleanPhoto(name=name, mime=mime, width=img.width, height=img.height, data=out.getvalue())


def _too_many_pixels(name, pixels, limits):
    return InvalidInput(f"Photo {name!r} has {pixels:,} pixels; at most {limits.max_pixels:,} are taken."
                        if pixels else f"Photo {name!r} has too many pixels; at most {limits.max_pixels:,} are taken.",
                        fix="Send a smaller photo; the operator sets the limit as GRIDMAP_PHOTO_MAX_PIXELS.",
                        details={"reason": "photo_too_many_pixels", "name": name, "pixels": pixels,
                                 "most": limits.max_pixels})

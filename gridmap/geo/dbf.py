"""Which text encoding a Shapefile's attributes are in: --encoding, its .cpg, its DBF header, or a strict detection.

GDAL, left alone, reads a DBF without a .cpg as ISO-8859-1, which never fails: GBK's 林茂社区
arrives as ``ÁÖÃ¯ÉçÇø`` and the import succeeds. So the choice is made here, explicitly, in
this order, and reported:

1. ``--encoding`` (the caller knows best);
2. the ``.cpg`` file (what the exporting program declared);
3. the text decoded strictly as UTF-8 (which text in any other encoding almost never is);
4. the language-driver byte of the DBF header, when it names a code page;
5. the text decoded strictly as GB18030 (which contains GBK).

A declared encoding (1, 2) the text is not valid in is refused, and so is text none of 3-5
reads: nothing is decoded with replacement characters. GDAL is asked for ISO-8859-1, which maps
each byte to one character and back losslessly, so the very bytes checked here are the bytes
decoded here, by one strict decoder (Python's, not iconv's, whose names and leniency differ).
"""

from __future__ import annotations

import codecs
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import pandas as pd

from .errors import InvalidInput, N_

__all__ = ["LANGUAGE_DRIVERS", "TRANSPORT", "ShapefileText", "decode_frame", "find"]

# What GDAL is told the text is: one byte, one character, no byte refused or changed.
TRANSPORT = "ISO-8859-1"

# The DBF header's language driver id (byte 29) → Python codec, after ESRI's table as GDAL
# (ogr/ogrsf_frmts/shape/ogrshapelayer.cpp) and pyshp read it. Two ids are left out on purpose:
# 0x00 (none) and 0x57, "the current ANSI code page", i.e. whatever Windows locale wrote the
# file (GBK on a Chinese PC, cp1252 on an English one); GDAL reads 0x57 as ISO-8859-1, which is
# exactly the mojibake this module exists to prevent. Both fall through to detection.
LANGUAGE_DRIVERS = {
    0x01: "cp437", 0x02: "cp850", 0x03: "cp1252", 0x04: "mac_roman", 0x08: "cp865", 0x09: "cp437",
    0x0A: "cp850", 0x0B: "cp437", 0x0D: "cp437", 0x0E: "cp850", 0x0F: "cp437", 0x10: "cp850",
    0x11: "cp437", 0x12: "cp850", 0x13: "cp932", 0x14: "cp850", 0x15: "cp437", 0x16: "cp850",
    0x17: "cp865", 0x18: "cp437", 0x19: "cp437", 0x1A: "cp850", 0x1B: "cp437", 0x1C: "cp863",
    0x1D: "cp850", 0x1F: "cp852", 0x22: "cp852", 0x23: "cp852", 0x24: "cp860", 0x25: "cp850",
    0x26: "cp866", 0x37: "cp850", 0x40: "cp852",
    0x4D: "cp936", 0x4E: "cp949", 0x4F: "cp950", 0x50: "cp874",  # GBK, Korean, Big5, Thai
    0x58: "cp1252", 0x59: "cp1252", 0x64: "cp852", 0x65: "cp866", 0x66: "cp865", 0x67: "cp861",
    0x6A: "cp737", 0x6B: "cp857", 0x6C: "cp863",
    0x78: "cp950", 0x79: "cp949", 0x7A: "cp936", 0x7B: "cp932", 0x7C: "cp874",  # Windows CJK
    0x86: "cp737", 0x87: "cp852", 0x88: "cp857", 0x96: "mac_cyrillic", 0x97: "mac_latin2",
    0x98: "mac_greek", 0xC8: "cp1250", 0xC9: "cp1251", 0xCA: "cp1254", 0xCB: "cp1253", 0xCC: "cp1257",
}
# GBK and GB2312 are subsets of GB18030, which decodes all their bytes alike and also the
# four-byte characters (rare names such as 㑇) that exports labelled "GBK" sometimes hold.
_WIDER = {"gbk": "gb18030", "gb2312": "gb18030"}
# Codecs as people write them, in notes; others are shown as Python names them, in capitals (CP1252).
_NAMES = {"utf-8": "UTF-8", "gb18030": "GB18030", "ascii": "ASCII"}
# A .cpg that names no particular code page ("the system's") declares nothing: detect instead.
_UNSPECIFIC = {"", "ANSI", "OEM", "SYSTEM", "DEFAULT"}

_FIX = "Pass --encoding GBK (most Chinese GIS exports) or the file's real encoding, or add a .cpg file naming it."


@dataclass(frozen=True)
class ShapefileText:
    """What a Shapefile says about its text, read from the files themselves (never through GDAL).

    Attributes
    ----------
    name : str
        The DBF as shown in messages: ``"gbk.dbf"``, or ``"grids.zip › grids.dbf"``.
    cpg : str or None
        The first line of the ``.cpg`` file, as written; None without one.
    ldid : int or None
        Byte 29 of the DBF header (the language driver id); None for a DBF shorter than a header.
    """

    name: str
    cpg: str | None
    ldid: int | None


def find(path, kind: str, layer: str | None) -> ShapefileText | None:
    """The DBF and .cpg of a ``.shp`` (kind ``"shp"``) or of ``layer`` in a zip (``"zip"``); None without a DBF."""
    path = Path(path)
    if kind == "shp":
        dbf = _sibling(path, ".dbf")
        if dbf is None:
            return None
        cpg = _sibling(path, ".cpg")
        with open(dbf, "rb") as f:
            header = f.read(32)
        text = cpg.read_bytes()[:256] if cpg is not None else None
        return ShapefileText(dbf.name, _first_line(text), header[29] if len(header) > 29 else None)
    if kind == "zip" and layer is not None:
        try:
            with zipfile.ZipFile(path) as zf:
                return _find_in_zip(zf, path.name, layer)
        except zipfile.BadZipFile:
            return None  # GDAL read it, so it is some other container; nothing to say about a DBF
    return None


def decode_frame(frame: pd.DataFrame, text: ShapefileText, *, encoding: str | None = None):
    """Decode a frame GDAL read as :data:`TRANSPORT`; return it with a note saying which encoding and why.

    Parameters
    ----------
    frame : DataFrame
        As read by pyogrio with ``encoding=TRANSPORT``: each character of a text cell or column
        name is one byte of the DBF.
    text : ShapefileText
        From :func:`find`.
    encoding : str, optional
        The caller's ``--encoding``; wins over everything the file says.

    Returns
    -------
    (DataFrame, str)

    Raises
    ------
    InvalidInput
        For an encoding name nobody knows, for text not valid in a declared encoding, and for
        text that is neither UTF-8 nor GB18030 when nothing was declared.
    """
    samples = _non_ascii(frame)
    codec, why = _choose(text, encoding, samples)
    decoded = frame.copy()
    # only the non-ASCII cells change: ASCII reads alike in every encoding offered here
    cells: dict[str, list] = {}
    for row, column, raw in samples:
        if row is not None:
            cells.setdefault(column, []).append((row - 1, raw))
    for column, found in cells.items():
        values = decoded[column].to_numpy(dtype=object, copy=True)
        for i, raw in found:
            values[i] = _decode(raw, codec)
        decoded[column] = pd.Series(values, index=decoded.index, dtype=decoded[column].dtype)
    decoded = decoded.rename(columns={c: _decode(c, codec) for c in frame.columns if isinstance(c, str)})
    note = f"{text.name}: text read as {_shown(codec)}, {why}."
    if codec != "utf-8" and samples and all(_valid(raw, "utf-8") for _, _, raw in samples):
        # Chinese GBK text is almost never also valid UTF-8; UTF-8 text often is valid GBK, as mojibake.
        note += " Its text is also valid UTF-8: if names look garbled, import again with --encoding UTF-8."
    return decoded, note


# --- choosing ---------------------------------------------------------------------


def _choose(text: ShapefileText, encoding, samples) -> tuple[str, str]:
    """(codec, why) for the text, or InvalidInput."""
    if encoding is not None:
        codec = _codec(encoding)
        if codec is None:
            raise InvalidInput(N_('Encoding "%(encoding)s" is not known.'), fix=_FIX, details={"encoding": encoding},
                               params={"encoding": encoding})
        return _declared(text, codec, encoding, f"as --encoding {encoding} says", samples)
    cpg = (text.cpg or "").strip()
    if cpg.upper() not in _UNSPECIFIC:
        codec = _codec(cpg)
        if codec is None:
            raise InvalidInput(
                N_('%(name)s: its .cpg names the encoding "%(cpg)s", which is not known.'),
                fix=N_("Pass --encoding with the file's real encoding (e.g. --encoding GBK), or correct the "
                       ".cpg."),
                details={"file": text.name, "cpg": cpg},
                params={"name": text.name, "cpg": cpg},
            )
        return _declared(text, codec, cpg, f"as its .cpg says: {cpg}", samples)
    without = f'its .cpg ("{cpg}") names no code page' if text.cpg is not None else "it has no .cpg"
    if not samples:
        return "ascii", f"as {without} and all its text is ASCII, which every encoding reads alike"
    declared = LANGUAGE_DRIVERS.get(text.ldid)
    header = f"its DBF header's language driver byte (0x{text.ldid:02X})" if text.ldid is not None else ""
    # UTF-8 is tried before the header: GBK reads almost any byte pairs, so UTF-8 Chinese passes
    # as "valid GBK" mojibake, while GBK text (or any other) is almost never valid UTF-8.
    if _first_invalid(samples, "utf-8") is None:
        overruled = (f" ({header} says {declared}, but text in {declared} is almost never valid UTF-8)"
                     if declared is not None and _wider(declared) != "utf-8" else "")
        return "utf-8", f"detected: {without} and all its text is valid UTF-8{overruled}"
    if declared is not None:
        codec = _wider(declared)
        if _first_invalid(samples, codec) is None:
            return codec, f"as {header} says ({declared}; {without}){_widened(declared, codec)}"
        without += f", {header} says {declared} but the text is not valid {declared},"
    elif text.ldid:
        without += f", {header} names no particular code page,"
    if _first_invalid(samples, "gb18030") is None:
        return "gb18030", (f"detected: {without} and its text is not valid UTF-8 but is valid GB18030 "
                           "(which contains GBK)")
    row, column, raw = _first_invalid(samples, "gb18030")
    raise InvalidInput(
        N_("%(name)s: %(without)s and its text is neither valid UTF-8 nor GB18030 (%(row)s: "
           "%(raw)s)."),
        fix=_FIX,
        details={"file": text.name, "tried": ["UTF-8", "GB18030"], "row": row, "column": column},
        params={"name": text.name, "without": without, "row": _where(row, column), "raw": _bytes(raw)},
    )


def _declared(text: ShapefileText, codec: str, given: str, why: str, samples) -> tuple[str, str]:
    """Check every non-ASCII cell against a declared encoding; refuse the file at the first that fails."""
    decoder = _wider(codec)
    bad = _first_invalid(samples, decoder)
    if bad is None:
        return decoder, why + _widened(codec, decoder)
    row, column, raw = bad
    other = next((name for c, name in (("utf-8", "UTF-8"), ("gb18030", "GBK"))
                  if c != decoder and _first_invalid(samples, c) is None), None)
    where = ", or correct the .cpg" if ".cpg" in why else ""
    fix = f"Its text does decode as {other}: pass --encoding {other}{where}." if other else _FIX
    raise InvalidInput(
        N_("%(name)s: %(row)s is not valid %(given)s (%(why)s): %(raw)s."),
        fix=fix,
        details={"file": text.name, "encoding": given, "row": row, "column": column},
        params={"name": text.name, "row": _where(row, column), "given": given, "why": why, "raw": _bytes(raw)},
    )


def _shown(codec: str) -> str:
    return _NAMES.get(codec) or re.sub(r"^ISO8859-", "ISO-8859-", codec.upper())


def _wider(codec: str) -> str:
    return _WIDER.get(codecs.lookup(codec).name, codec)


def _widened(codec: str, decoder: str) -> str:
    return "" if decoder == codecs.lookup(codec).name else f"; GB18030 contains {codec.upper()} and reads it alike"


def _codec(name: str) -> str | None:
    """The Python codec for an encoding as .cpg files and people write it, or None if unknown.

    Accepts names (``UTF-8``, ``GBK``, ``Big5``), Windows code page numbers (``936``,
    ``ANSI 1252``, ``CP936``, ``65001``) and ISO numbers (``88591``, ``8859-5``).
    """
    text = name.strip().upper().replace("_", "-")
    number = re.fullmatch(r"(?:ANSI|CP|WINDOWS-?|MS)?\s*-?(\d{3,5})", text)
    iso = re.fullmatch(r"(?:ISO-?)?8859-?(\d{1,2})", text)
    if iso:
        candidate = f"iso8859_{iso.group(1)}"
    elif number:
        # three code pages Python knows by name only: UTF-8, GB18030 and GB2312
        aliases = {"65001": "utf-8", "54936": "gb18030", "20936": "gb2312"}
        candidate = aliases.get(number.group(1), f"cp{number.group(1)}")
    else:
        candidate = name.strip()
    try:
        return codecs.lookup(candidate).name
    except LookupError:
        return None


# --- the text ---------------------------------------------------------------------


def _text_columns(frame: pd.DataFrame) -> list:
    # the geometry column's dtype is neither, so it is never touched
    return [c for c in frame.columns
            if pd.api.types.is_object_dtype(frame[c].dtype) or pd.api.types.is_string_dtype(frame[c].dtype)]


def _non_ascii(frame: pd.DataFrame) -> list[tuple[int | None, str, str]]:
    """(1-based row or None for a column name, column, cell) for every text that is not plain ASCII."""
    found = [(None, c, c) for c in frame.columns if isinstance(c, str) and not c.isascii()]
    for column in _text_columns(frame):
        values = frame[column].to_numpy(dtype=object)
        found.extend((i + 1, column, v) for i, v in enumerate(values) if isinstance(v, str) and not v.isascii())
    return found


def _first_invalid(samples, codec: str):
    return next(((row, column, raw) for row, column, raw in samples if not _valid(raw, codec)), None)


def _valid(raw: str, codec: str) -> bool:
    try:
        raw.encode(TRANSPORT).decode(codec)
    except UnicodeDecodeError:
        return False
    return True


def _decode(value: str, codec: str) -> str:
    return value if value.isascii() else value.encode(TRANSPORT).decode(codec)


def _where(row, column: str) -> str:
    if row is None:
        return "the name of a column"  # its bytes follow in the message
    if not column.isascii():
        # the column's own name is undecided yet: shown as whichever of UTF-8 and GB18030 reads it
        column = next((column.encode(TRANSPORT).decode(c) for c in ("utf-8", "gb18030") if _valid(column, c)),
                      column.encode(TRANSPORT))
    return f"the text in row {row}, column {column!r}"


def _bytes(raw: str) -> str:
    data = raw.encode(TRANSPORT)
    return repr(data[:24]) + ("…" if len(data) > 24 else "")


# --- the files --------------------------------------------------------------------


def _sibling(path: Path, suffix: str) -> Path | None:
    # Shapefiles come from Windows as often as not: the parts may be .DBF/.CPG
    for candidate in (path.with_suffix(suffix), path.with_suffix(suffix.upper())):
        if candidate.exists():
            return candidate
    return None


def _find_in_zip(zf: zipfile.ZipFile, zip_name: str, layer: str) -> ShapefileText | None:
    members = {}
    for info in zf.infolist():
        name = PurePosixPath(info.filename)
        if info.is_dir() or name.is_absolute() or ".." in name.parts:
            continue  # GDAL does not read members outside the archive's root either
        members.setdefault((str(name.parent), name.stem.lower(), name.suffix.lower()), info)
    # the layer's DBF; the shallowest one if folders repeat the name
    dbfs = sorted((k for k in members if k[1] == layer.lower() and k[2] == ".dbf"), key=lambda k: k[0].count("/"))
    if not dbfs:
        return None
    folder, stem, _ = dbfs[0]
    dbf = members[dbfs[0]]
    with zf.open(dbf) as f:
        header = f.read(32)  # only the header: a zip bomb's DBF is never inflated here
    cpg = members.get((folder, stem, ".cpg"))
    text = None
    if cpg is not None:
        with zf.open(cpg) as f:
            text = f.read(256)
    return ShapefileText(f"{zip_name} › {dbf.filename}", _first_line(text), header[29] if len(header) > 29 else None)


def _first_line(data: bytes | None) -> str | None:
    if data is None:
        return None
    line = data.decode("utf-8", "replace").lstrip("\ufeff").splitlines()
    return line[0].strip() if line else ""

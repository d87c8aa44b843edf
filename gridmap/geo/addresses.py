"""Offline fuzzy search over the building register for Chinese addresses typed loosely.

Every address is normalised once, at build (:func:`normalise`): NFKC (full-width digits and
letters become ASCII), traditional forms of the common address characters become simplified
(:data:`VARIANTS`), synonyms of the building unit become one (:data:`SYNONYMS`), Chinese numerals
before an address unit become digits (十二号 → 12号), spaces and punctuation go. The same function
normalises the query, so both sides meet in one spelling.

A query then runs in two steps:

1. **Prefilter.** An inverted index of character unigrams and bigrams, weighted by inverse
   document frequency, scores every record by the grams it shares with the query; the best
   :data:`PREFILTER` go on. Rare grams (a road's name) outweigh common ones (市, 号).
2. **Score** (0–100) each candidate:

   - 100 when the query equals the address, or the address with its leading administrative
     parts (city, district, street/town) cut at a boundary: "湾里路12号3栋" is exactly
     "大连市金州区湾里街道湾里路12号3栋" typed without its prefix.
   - otherwise at most 99: ``70 × covered + 30 × specific``, where ``covered`` is the share of the
     query's characters found in order in the full address (a typo or a wrong district costs),
     and ``specific`` the share of the address's own part after the administrative prefix that
     the query matched (a query that stops at the house number scores below one that names the
     building too); both from the longest common subsequence.
   - minus :data:`NUMBER_PENALTY` for each house-number component of the query (号, 栋, 单元, 室 …)
     that the address gives differently: "湾里路12号" puts every "湾里路12号…" above "湾里路21号"
     and "湾里路1号", whose text is almost as close.

   A building's name (e.g. 外滩18号) is scored the same way, and the better of the two counts.
"""
from __future__ import annotations

import hashlib
import json
import math
import re
import unicodedata
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
from rapidfuzz.distance import LCSseq

from .errors import InvalidInput, N_

__all__ = ["AddressIndex", "normalise", "parse_numbers", "VARIANTS", "SYNONYMS", "MAX_QUERY_CHARS",
           "MAX_LIMIT"]

MAX_QUERY_CHARS = 100
MAX_LIMIT = 100
PREFILTER = 300

#: Traditional (and a few old) forms of characters common in addresses → the simplified form
#: stored in the register. A small table, not a converter: addresses use few characters.
VARIANTS = str.maketrans({
    "號": "号", "棟": "栋", "區": "区", "門": "门", "單": "单", "樓": "楼", "層": "层", "園": "园",
    "鎮": "镇", "縣": "县", "鄉": "乡", "裡": "里", "裏": "里", "灣": "湾", "連": "连", "東": "东",
    "興": "兴", "華": "华", "莊": "庄", "長": "长", "寧": "宁", "陽": "阳", "濱": "滨", "廣": "广",
    "慶": "庆", "豐": "丰", "榮": "荣", "勝": "胜", "濟": "济", "寶": "宝", "蘭": "兰", "錦": "锦",
    "臺": "台", "國": "国", "業": "业", "學": "学", "醫": "医", "衛": "卫", "體": "体", "廳": "厅",
    "館": "馆", "廠": "厂", "場": "场", "蘇": "苏", "滬": "沪", "陸": "陆", "環": "环", "龍": "龙",
    "鳳": "凤", "義": "义", "黃": "黄", "雲": "云", "萬": "万", "聖": "圣", "後": "后", "誌": "志",
    "橋": "桥", "滿": "满", "舊": "旧", "涼": "凉", "嶺": "岭", "島": "岛", "灘": "滩",
    "濤": "涛", "壽": "寿", "匯": "汇", "條": "条", "邊": "边", "韓": "韩", "鐵": "铁", "銀": "银",
    "紅": "红", "線": "线", "綠": "绿", "團": "团", "結": "结", "際": "际", "會": "会", "為": "为",
    "車": "车", "軍": "军", "農": "农", "開": "开", "發": "发", "陳": "陈", "戶": "户",
    "＃": "#",
})

#: Different words for one thing, replaced after :data:`VARIANTS` (longest first).
#: "3号楼", "3幢" and "3座" all name building 3 of a compound, as "3栋" does; "#" is typed for 号.
SYNONYMS = (("号楼", "栋"), ("幢", "栋"), ("座", "栋"), ("#", "号"), ("衚衕", "胡同"))

_UNITS = ("单元", "号", "栋", "楼", "层", "室", "弄", "巷", "门", "户")
_UNIT_RE = "|".join(_UNITS)
_CN_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6,
              "七": 7, "八": 8, "九": 9}
_CN_NUMBER = re.compile(rf"([零〇一二两三四五六七八九十百]+)(?=(?:{_UNIT_RE}))")
_PUNCT = re.compile(r"[^\w\-]|_", re.UNICODE)
_DASHES = str.maketrans({"—": "-", "–": "-", "－": "-", "~": "-", "～": "-"})
# administrative parts at the start of an address; each cut point is a boundary for exact matches
# (a lookahead keeps road names such as 新镇路 or 城区街 whole)
_ADMIN = re.compile(r"(.{1,7}?省)?(.{1,7}?市(?!路|街))?(.{1,7}?(?:区|县|旗)(?!路|街|道))?"
                    r"(.{1,9}?(?:街道|镇|乡)(?!路|街))?")
_NUMBER = re.compile(rf"(\d+)(?:-(\d+))?([a-z甲乙丙丁]?)({_UNIT_RE})?")

#: Score taken off per house-number component the address gives differently; the house number
#: itself (号) weighs most because it names the building's plot on the road.
NUMBER_PENALTY = {"号": 30.0, "弄": 30.0}
_DEFAULT_PENALTY = 20.0
# a bare trailing number ("湾里路12") takes the next unit not yet given, in this order
_BARE_ORDER = ("号", "栋", "单元", "室")


def normalise(text):
    """Return ``text`` in the one spelling both the register and queries are compared in.

    Parameters
    ----------
    text : str
        An address, a building name or a query.

    Returns
    -------
    str
        NFKC, lower case, simplified address characters, unit synonyms merged, Chinese numerals
        before a unit as digits, without spaces or punctuation (``-`` in ranges is kept).

    Examples
    --------
    >>> normalise("大連市金州區 灣里路十二號３棟")
    '大连市金州区湾里路12号3栋'
    """
    s = unicodedata.normalize("NFKC", str(text)).lower().translate(VARIANTS).translate(_DASHES)
    for old, new in SYNONYMS:
        s = s.replace(old, new)
    s = _PUNCT.sub("", s)
    return _CN_NUMBER.sub(lambda m: str(_cn_to_int(m.group(1))), s)


def parse_numbers(norm):
    """House-number components of a normalised address, keyed by unit.

    Parameters
    ----------
    norm : str
        Output of :func:`normalise`.

    Returns
    -------
    dict
        ``{unit: (low, high, suffix)}``, e.g. ``"628弄4-7号"`` → ``{"弄": (628, 628, ""),
        "号": (4, 7, "")}``. A number without a unit takes the next of 号, 栋, 单元, 室 not given.
    """
    out = {}
    bare = []
    for m in _NUMBER.finditer(norm):
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) else lo
        value = (min(lo, hi), max(lo, hi), m.group(3))
        if m.group(4):
            out.setdefault(m.group(4), value)
        elif m.end() == len(norm):
            bare.append(value)
    for value in bare:
        unit = next((u for u in _BARE_ORDER if u not in out), None)
        if unit is not None:
            out[unit] = value
    return out


@dataclass(frozen=True)
class _Record:
    building_id: object
    address: str
    name: str
    lon: float
    lat: float
    community: str
    norm: str           # normalised full address
    suffixes: tuple     # norm and what follows each leading administrative part
    tail: str           # after the whole administrative prefix
    name_norm: str
    numbers: dict


class AddressIndex:
    """The building register, normalised and indexed once for fuzzy address search.

    Build with :meth:`from_records`, then :meth:`search`.
    """

    def __init__(self, records, postings, idf, exact, community_of):
        self._records = records
        self._postings = postings          # gram -> int32 array of record positions
        self._idf = idf                    # gram -> weight
        self._exact = exact                # normalised spelling -> record positions
        self._community = community_of     # (n,) object array
        self._lonlat = None                # (n, 2) float array, made by the first nearest()

    def __len__(self):
        return len(self._records)

    @classmethod
    def from_records(cls, records):
        """Normalise and index building records.

        Parameters
        ----------
        records : iterable of dict
            Each with ``building_id`` and ``address``; optional ``name``, ``lon``, ``lat``,
            ``community_code``.

        Returns
        -------
        AddressIndex

        Raises
        ------
        InvalidInput
            When a record lacks ``building_id`` or a non-empty ``address``.
        """
        recs = []
        grams = defaultdict(list)
        exact = defaultdict(list)
        for i, r in enumerate(records):
            address = r.get("address")
            if r.get("building_id") is None or not isinstance(address, str) or not address.strip():
                raise InvalidInput(N_("Record %(i)s has no building_id or no address: %(r)s."),
                                   fix=N_("Give every record a building_id and a non-empty address."),
                                   params={"i": i, "r": repr(r)})
            norm = normalise(address)
            name = r.get("name") or ""
            name_norm = normalise(name) if isinstance(name, str) else ""
            suffixes = _admin_suffixes(norm)
            pos = len(recs)
            recs.append(_Record(
                building_id=r["building_id"], address=address, name=name if isinstance(name, str) else "",
                lon=_float(r.get("lon")), lat=_float(r.get("lat")),
                community=str(r.get("community_code") or ""), norm=norm, suffixes=tuple(suffixes),
                tail=suffixes[-1],
                name_norm=name_norm, numbers=parse_numbers(suffixes[-1])))
            for s in suffixes:
                exact[s].append(pos)
            if name_norm:
                exact[name_norm].append(pos)
            for g in _grams(norm) | _grams(name_norm):
                grams[g].append(pos)
        n = len(recs)
        postings = {g: np.asarray(p, dtype=np.int32) for g, p in grams.items()}
        idf = {g: math.log(1.0 + n / len(p)) for g, p in postings.items()}
        community = np.array([r.community for r in recs], dtype=object)
        return cls(recs, postings, idf, dict(exact), community)

    # -- flat arrays, for a snapshot file ---------------------------------------------------
    def to_arrays(self):
        """The index as flat arrays (name → ndarray) and a JSON-able dict; :meth:`from_arrays` over
        them (memory-mapped, say) searches exactly as this index does, decoding only the records a
        query scores. Unpickled, the index of a 60,000-building register is ~190 MB per process."""
        if isinstance(self._postings, _FlatPostings):  # already flat (from a file): the same arrays
            return self._flat
        recs = list(self._records)
        parts = [json.dumps([_plain(r.building_id), r.address, r.name, r.lon, r.lat, r.community, r.norm,
                             list(r.suffixes), r.tail, r.name_norm, {k: list(v) for k, v in r.numbers.items()}],
                            ensure_ascii=False).encode() for r in recs]
        rec_o = np.zeros(len(parts) + 1, dtype=np.int64)
        np.cumsum([len(b) for b in parts], out=rec_o[1:])
        grams = sorted(self._postings)
        gram_ptr = np.zeros(len(grams) + 1, dtype=np.int64)
        np.cumsum([len(self._postings[g]) for g in grams], out=gram_ptr[1:])
        keys = {}
        for spelling, where in self._exact.items():  # spellings by a 64-bit hash; a match is re-checked
            keys.setdefault(_hash64(spelling), []).extend(where)
        hashes = np.array(sorted(keys), dtype=np.uint64)
        exact_ptr = np.zeros(len(hashes) + 1, dtype=np.int64)
        np.cumsum([len(keys[h]) for h in hashes.tolist()], out=exact_ptr[1:])
        names, codes = np.unique(np.array([r.community for r in recs], dtype=str), return_inverse=True) if recs \
            else (np.zeros(0, dtype=str), np.zeros(0, dtype=np.int64))
        lonlat = np.array([(r.lon, r.lat) for r in recs], dtype=float).reshape(-1, 2)
        arrays = {"rec.o": rec_o, "rec.b": np.frombuffer(b"".join(parts), dtype=np.uint8).copy(),
                  "gram": np.array(grams, dtype="<U2").reshape(-1), "gram.ptr": gram_ptr,
                  "gram.pos": np.concatenate([self._postings[g] for g in grams]).astype(np.int32)
                  if grams else np.zeros(0, dtype=np.int32),
                  "gram.idf": np.array([self._idf[g] for g in grams], dtype=float),
                  "exact.hash": hashes, "exact.ptr": exact_ptr,
                  "exact.pos": np.array([p for h in hashes.tolist() for p in sorted(set(keys[h]))], dtype=np.int32),
                  "community": codes.ravel().astype(np.int32), "lonlat": lonlat}
        exact_ptr[1:] = np.cumsum([len(set(keys[h])) for h in hashes.tolist()])
        return arrays, {"communities": names.tolist()}

    @classmethod
    def from_arrays(cls, arrays, meta):
        """The index :meth:`to_arrays` wrote, searching the given (read-only, mapped) arrays in place."""
        records = _PackedRecords(arrays["rec.o"], arrays["rec.b"])
        postings = _FlatPostings(arrays["gram"], arrays["gram.ptr"], arrays["gram.pos"], arrays["gram.idf"])
        self = cls(records, postings, postings.idf, _FlatExact(arrays["exact.hash"], arrays["exact.ptr"],
                                                               arrays["exact.pos"], records),
                   _Codes(arrays["community"], meta["communities"]))
        self._lonlat = arrays["lonlat"]
        self._flat = (arrays, meta)
        return self

    def nearest(self, lon, lat, *, max_m):
        """The building nearest a WGS84 point within ``max_m`` metres, as :meth:`search` gives one
        (``score`` is the distance in metres), or None: the address of a spot picked on a map."""
        if self._lonlat is None:  # built on the first call: most indexes only ever search text
            self._lonlat = np.array([(r.lon, r.lat) for r in self._records], dtype=float).reshape(-1, 2)
        if not len(self._lonlat) or not (math.isfinite(lon) and math.isfinite(lat)):
            return None
        # metres on a local tangent plane: exact enough at the few tens of metres this is asked for
        dx = (self._lonlat[:, 0] - lon) * 111_320.0 * math.cos(math.radians(lat))
        dy = (self._lonlat[:, 1] - lat) * 110_540.0
        d = np.hypot(dx, dy)
        d[~np.isfinite(d)] = np.inf
        i = int(np.argmin(d))
        return _result(self._records[i], round(float(d[i]), 1)) if d[i] <= max_m else None

    def search(self, q, *, community=None, limit=10):
        """Ranked candidates for an address typed loosely.

        Parameters
        ----------
        q : str
            The query, e.g. "湾里路12号3栋", "灣里路十二號", "湾里路１２号".
        community : str, optional
            Only buildings of this community code.
        limit : int, default 10
            At most this many candidates (1–100).

        Returns
        -------
        list of dict
            Best first: ``address``, ``building_id``, ``lon``, ``lat``, ``score`` (0–100; 100 for
            an exact match after normalisation), ``name``, ``community_code``. Candidates scoring
            under 40 are left out.

        Raises
        ------
        InvalidInput
            For an empty query, one over :data:`MAX_QUERY_CHARS` characters, or a bad ``limit``.
        """
        if not isinstance(q, str) or not q.strip():
            raise InvalidInput(N_("The address query is empty."), fix=N_("Type part of an address, e.g. 湾里路12号."))
        if len(q) > MAX_QUERY_CHARS:
            raise InvalidInput(N_("The address query has %(q)s characters; the limit is %(MAX_QUERY_CHARS)s."),
                               fix=N_("Shorten it to at most %(MAX_QUERY_CHARS)s characters."),
                               params={"q": len(q), "MAX_QUERY_CHARS": MAX_QUERY_CHARS})
        if isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or not 1 <= limit <= MAX_LIMIT:
            raise InvalidInput(N_("`limit` was %(limit)s but must be an integer in 1..%(MAX_LIMIT)s."),
                               fix=N_("Ask for fewer candidates."),
                               params={"limit": repr(limit), "MAX_LIMIT": MAX_LIMIT})
        qn = normalise(q)
        if not qn or not self._records:
            return []
        candidates = self._prefilter(qn, community)
        qtail = _admin_suffixes(qn)[-1]
        query = (qn, qtail, qn[: len(qn) - len(qtail)], parse_numbers(qtail))
        scored = [(self._score(query, self._records[i]), i) for i in candidates]
        scored = [(s, i) for s, i in scored if s >= 40.0]
        recs = self._records
        scored.sort(key=lambda si: (-si[0], len(recs[si[1]].address), recs[si[1]].address))
        return [_result(recs[i], s) for s, i in scored[:limit]]

    # -- internals --------------------------------------------------------------------------
    def _prefilter(self, qn, community):
        allowed = None
        if community is not None:
            allowed = self._community == str(community)
        hits = set()
        for p in self._exact.get(qn, ()):
            if allowed is None or allowed[p]:
                hits.add(p)
        grams = [g for g in _grams(qn) if g in self._postings]
        if grams:
            pos = np.concatenate([self._postings[g] for g in grams])
            w = np.concatenate([np.full(len(self._postings[g]), self._idf[g]) for g in grams])
            score = np.bincount(pos, weights=w, minlength=len(self._records))
            if allowed is not None:
                score[~allowed] = 0.0
            k = min(PREFILTER, len(score))
            top = np.argpartition(-score, k - 1)[:k]
            hits.update(top[score[top] > 0].tolist())
        return hits

    @staticmethod
    def _score(query, rec):
        qn, qtail, qprefix, qnum = query
        # the same building typed with only some of its administrative parts is still exact
        exact = qn in rec.suffixes or (
            qtail == rec.tail and LCSseq.similarity(qprefix, rec.norm[: len(rec.norm) - len(rec.tail)])
            == len(qprefix))
        best = _text_score(qn, rec.norm, rec.tail, exact)
        if rec.name_norm:
            best = max(best, _text_score(qn, rec.name_norm, rec.name_norm, qn == rec.name_norm))
            if best == 100.0:
                return best
        if best == 100.0:
            return best
        penalty = 0.0
        for unit, value in qnum.items():
            have = rec.numbers.get(unit)
            if have is None or not (have[0] <= value[0] and value[1] <= have[1] and have[2] == value[2]):
                penalty += NUMBER_PENALTY.get(unit, _DEFAULT_PENALTY)
        return max(0.0, round(best - penalty, 1))


# -- helpers ------------------------------------------------------------------------------------
def _text_score(qn, full, tail, exact):
    if exact:
        return 100.0
    lcs_full = LCSseq.similarity(qn, full)
    covered = lcs_full / len(qn)
    specific = LCSseq.similarity(qn, tail) / len(tail) if tail else covered
    return min(99.0, round(70.0 * covered + 30.0 * specific, 1))


def _admin_suffixes(norm):
    """The address and what is left after each leading administrative part; last = the tail."""
    m = _ADMIN.match(norm)
    out = [norm]
    cut = 0
    for g in range(1, 5):
        if m.group(g):
            cut = m.end(g)
            if cut < len(norm):
                out.append(norm[cut:])
    return out


def _plain(v):
    return v.item() if isinstance(v, np.generic) else v


def _hash64(text):
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


class _PackedRecords:
    """Records as JSON texts in one byte array: ``records[i]`` decodes one :class:`_Record`."""

    def __init__(self, offsets, blob):
        self._o, self._b = offsets, blob

    def __len__(self):
        return len(self._o) - 1

    def __getitem__(self, i):
        i = int(i)
        (bid, address, name, lon, lat, community, norm, suffixes, tail, name_norm,
         numbers) = json.loads(self._b[self._o[i]:self._o[i + 1]].tobytes())
        return _Record(building_id=bid, address=address, name=name, lon=lon, lat=lat, community=community,
                       norm=norm, suffixes=tuple(suffixes), tail=tail, name_norm=name_norm,
                       numbers={k: tuple(v) for k, v in numbers.items()})

    def __iter__(self):
        return (self[i] for i in range(len(self)))


class _FlatPostings:
    """gram → record positions over sorted grams and CSR positions (``in``, ``[gram]``); ``idf[gram]``."""

    def __init__(self, grams, ptr, pos, idf):
        self._g, self._ptr, self._pos, self._idf = grams, ptr, pos, idf
        self.idf = _FlatIdf(self)

    def _slot(self, gram):
        i = int(np.searchsorted(self._g, gram)) if len(self._g) else 0
        return i if i < len(self._g) and self._g[i] == gram else -1

    def __contains__(self, gram):
        return len(gram) <= 2 and self._slot(gram) >= 0

    def __getitem__(self, gram):
        i = self._slot(gram)
        if i < 0:
            raise KeyError(gram)
        return self._pos[self._ptr[i]:self._ptr[i + 1]]


class _FlatIdf:
    def __init__(self, postings):
        self._p = postings

    def __getitem__(self, gram):
        i = self._p._slot(gram)
        if i < 0:
            raise KeyError(gram)
        return float(self._p._idf[i])


class _FlatExact:
    """normalised spelling → record positions (``.get``) by a 64-bit hash, each re-checked on its record."""

    def __init__(self, hashes, ptr, pos, records):
        self._h, self._ptr, self._pos, self._records = hashes, ptr, pos, records

    def get(self, spelling, default=()):
        h = np.uint64(_hash64(spelling))
        i = int(np.searchsorted(self._h, h))
        if i >= len(self._h) or self._h[i] != h:
            return default
        out = []
        for p in self._pos[self._ptr[i]:self._ptr[i + 1]].tolist():
            rec = self._records[p]
            if spelling in rec.suffixes or spelling == rec.name_norm:
                out.append(p)
        return out or default


class _Codes:
    """The community code of each record as small ints: ``codes == "C1"`` is a boolean array."""

    def __init__(self, codes, names):
        self._codes, self._names = codes, {n: i for i, n in enumerate(names)}

    def __eq__(self, other):
        i = self._names.get(other)
        return self._codes == i if i is not None else np.zeros(len(self._codes), dtype=bool)

    __hash__ = None


def _grams(s):
    if not s:
        return set()
    return set(s) | {s[i:i + 2] for i in range(len(s) - 1)}


def _cn_to_int(text):
    """一..九百九十九 and digit-by-digit forms (一〇二) as an int."""
    if "十" not in text and "百" not in text:
        return int("".join(str(_CN_DIGITS[c]) for c in text))
    total, digit = 0, 0
    for c in text:
        if c == "百":
            total += (digit or 1) * 100
            digit = 0
        elif c == "十":
            total += (digit or 1) * 10
            digit = 0
        else:
            digit = _CN_DIGITS[c]
    return total + digit


def _float(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def _result(rec, score):
    return {"address": rec.address, "building_id": rec.building_id, "lon": rec.lon, "lat": rec.lat,
            "score": float(score), "name": rec.name, "community_code": rec.community}

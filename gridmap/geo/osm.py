"""Read an OpenStreetMap extract (.osm XML or .osm.pbf) without losing what the file holds.

An extract cut from a bigger map holds ways whose nodes lie partly outside it. A road keeps every
run of two or more consecutive nodes that the file has (one feature per run, numbered by
``osm_part``); a building cannot be partial, so a building whose outline leaves the file is
rejected with the reason "clipped by the extract". Buildings come from closed ways and from
multipolygon relations (outer and inner rings assembled by osmium's area handler).

A road's ``barrier=*`` nodes (bollards, gates …) that close it to some travel mode are named in a
``barriers`` column by their index in the feature's line, for the road graph to cut there.

Addresses are written the way the locale writes them: ``addr:full`` when given, else a Latin
street, a space and the number ("Kangaskatu 12"), a Chinese street and the number without a space
with 号 added to a bare number ("城志街1号"); a building without ``addr:*`` of its own takes the
address points (nodes with ``addr:housenumber``) that lie on or in it — the way Finnish and many
other maps record them — and then its ``name``. ``building:levels`` becomes ``floors``.

Every source object read is counted in a :class:`SourceCount`: kept whole, kept clipped (as how
many parts) or rejected (with the reason), and ``read == whole + clipped + rejected``.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np
import osmium
import pandas as pd
import shapely

from .errors import N_, Said
from .roads import barrier_closes, barrier_words

__all__ = ["SourceCount", "LAYERS", "read_roads", "read_buildings", "compose_address", "floors_from_levels"]

LAYERS = {
    "buildings": ("osm_id", "osm_type", "name", "osm_address", "addr:full", "addr:street", "addr:housenumber",
                  "building:levels", "floors"),
    # oneway, junction (roundabouts), layer, tunnel and bridge: the road graph's per-mode direction and levels
    "roads": ("osm_id", "osm_part", "name", "highway", "oneway", "junction", "layer", "tunnel", "bridge",
              # who may use it (gridmap.geo.roads.ACCESS_TAGS): per-mode graphs drop what these close
              "access", "foot", "bicycle", "vehicle", "motor_vehicle", "motorcar", "oneway:bicycle"),
}

CLIPPED = "clipped by the extract"
ADDRESS_LIMIT = 256  # characters of gridmap.store.models.Building.address
_CJK = re.compile(r"[\u2e80-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f]")
# a bare house number ("12", "12A", "4-7") takes 号 in a Chinese address; "12号" or "甲12" stay as written
_BARE_NUMBER = re.compile(r"[0-9]+[A-Za-z]?(?:[-–][0-9]+[A-Za-z]?)?")


@dataclass
class SourceCount:
    """What the reader found of one kind of source object and what became of each.

    ``read == whole + clipped + rejected`` always; ``parts`` is how many features the clipped
    objects became (each run of nodes present in the file is one).
    """

    what: str
    read: int = 0
    whole: int = 0
    clipped: int = 0
    parts: int = 0
    rejected: dict = field(default_factory=dict)  # reason -> ["way 123", …]

    @property
    def n_rejected(self) -> int:
        return sum(len(v) for v in self.rejected.values())

    @property
    def features(self) -> int:
        """Features handed on for validation: one per whole object plus one per part."""
        return self.whole + self.parts

    def reject(self, reason: str, label: str) -> None:
        self.rejected.setdefault(reason, []).append(label)

    def to_dict(self) -> dict:
        return {"what": self.what, "read": self.read, "kept_whole": self.whole, "kept_clipped": self.clipped,
                "clipped_parts": self.parts, "rejected": self.n_rejected,
                "reasons": {r: {"count": len(ids), "examples": ids[:10]} for r, ids in self.rejected.items()}}

    def line(self) -> str:
        text = (f"read {self.read} {self.what}: {self.whole} kept whole, {self.clipped} kept clipped"
                f" (as {self.parts} parts), {self.n_rejected} rejected")
        if self.rejected:
            text += " (" + "; ".join(f"{reason}: {len(ids)}, e.g. {', '.join(ids[:3])}"
                                     for reason, ids in sorted(self.rejected.items())) + ")"
        return text


def compose_address(tags) -> str:
    """The address ``tags`` (an OSM tag list or dict) give, as the locale writes it; "" if none."""
    full = (tags.get("addr:full") or "").strip()
    if full:
        return full
    street = (tags.get("addr:street") or tags.get("addr:place") or "").strip()
    number = (tags.get("addr:housenumber") or "").strip()
    if not (street and number):
        return ""
    if _CJK.search(street):
        return street + (number + "号" if _BARE_NUMBER.fullmatch(number) else number)
    return f"{street} {number}"


def floors_from_levels(value):
    """``building:levels`` as whole floors: "6" → 6, "2.5" → 3 (a half storey is a storey); else None."""
    try:
        levels = float(str(value).strip())
    except (TypeError, ValueError):
        return None
    if not math.isfinite(levels) or levels < 0 or levels > 300:
        return None
    return int(math.ceil(levels))


def read_roads(path: str):
    """Every ``highway`` way as one feature per run of ≥ 2 nodes present in the file.

    Returns ``(frame, counts)``: a DataFrame with :data:`LAYERS` ``["roads"]`` columns plus a
    ``geometry`` column of shapely LineStrings and ``barriers``, and a list with one :class:`SourceCount`.

    ``barriers`` names the ``barrier=*`` nodes of the feature that close it to some mode, by their
    index in the line (:func:`gridmap.geo.roads.barrier_words`, e.g. "barrier@3=car" for a
    bollard at the fourth point; "" for none): the road graph cuts each mode's routes there.
    """
    count = SourceCount("road ways")
    records, lines, stops = [], [], []
    gates = _barrier_nodes(path)
    processor = (
        osmium.FileProcessor(path, osmium.osm.NODE | osmium.osm.WAY)
        .with_locations()
        .with_filter(osmium.filter.EntityFilter(osmium.osm.WAY))
        .with_filter(osmium.filter.KeyFilter("highway"))
    )
    for way in processor:
        count.read += 1
        runs, run, missing = [], [], 0
        marks, mark = [], []  # per run: (index in the run, modes closed) of its barrier nodes
        for node in way.nodes:
            if node.location.valid():
                point = (node.location.lon, node.location.lat)
                if not run or run[-1] != point:  # a node repeated in place adds nothing to the line
                    run.append(point)
                if node.ref in gates:
                    mark.append((len(run) - 1, gates[node.ref]))
            else:
                missing += 1
                runs.append(run)
                marks.append(mark)
                run, mark = [], []
        runs.append(run)
        marks.append(mark)
        marks = [k for r, k in zip(runs, marks) if len(r) >= 2]
        runs = [r for r in runs if len(r) >= 2]
        label = f"way {way.id}"
        if not runs:
            if missing:
                count.reject(CLIPPED, f"{label} ({len(way.nodes) - missing} of its {len(way.nodes)} nodes in the file)")
            else:
                count.reject("fewer than two distinct points", label)
            continue
        tags = way.tags
        values = tuple(tags.get(key) for key in LAYERS["roads"][2:])
        if missing:
            count.clipped += 1
            count.parts += len(runs)
            parts = range(1, len(runs) + 1)
        else:
            count.whole += 1
            parts = [0]
        for part, run, mark in zip(parts, runs, marks):
            records.append((way.id, part, *values))
            lines.append(shapely.linestrings(run))
            stops.append(barrier_words(mark))
    frame = pd.DataFrame.from_records(records, columns=list(LAYERS["roads"]))
    frame["barriers"] = stops
    frame["geometry"] = lines
    return frame, [count]


def _barrier_nodes(path):
    """Node id → the modes it closes, for every ``barrier=*`` node some mode cannot pass
    (:func:`gridmap.geo.roads.barrier_closes`): a pass over the nodes filtered by osmium itself."""
    out = {}
    for node in osmium.FileProcessor(path, osmium.osm.NODE).with_filter(osmium.filter.KeyFilter("barrier")):
        closes = barrier_closes(node.tags)
        if closes:
            out[node.id] = closes
    return out


def read_buildings(path: str):
    """Every ``building`` closed way and multipolygon relation as one (Multi)Polygon.

    Returns ``(frame, counts, notes)``: a DataFrame with :data:`LAYERS` ``["buildings"]`` columns
    plus ``geometry``, one :class:`SourceCount` for ways and one for relations, and notes for the
    import report (e.g. how many buildings took their address from address points).
    """
    ways, relations = SourceCount("building ways"), SourceCount("building relations")
    factory = osmium.geom.WKBFactory()
    way_state = {}  # way id -> True when every node is in the file (for relation members)
    candidates_w, candidates_r = {}, {}  # id -> reason it cannot be an area, or None
    areas = {}  # ("way"|"relation", id) -> (wkb, tags)
    addr_points = []  # (lon, lat, address) of address nodes
    processor = osmium.FileProcessor(path).with_areas(osmium.filter.KeyFilter("building"))
    for obj in processor:
        if obj.is_node():
            if "addr:housenumber" in obj.tags and "building" not in obj.tags:
                address = compose_address(obj.tags)
                if address and obj.location.valid():
                    # street and number kept apart, so that a building's points join as "Street 12, 14"
                    street = "" if obj.tags.get("addr:full") else (
                        obj.tags.get("addr:street") or obj.tags.get("addr:place") or "").strip()
                    number = obj.tags.get("addr:housenumber", "").strip()
                    addr_points.append((obj.location.lon, obj.location.lat, (address, street, number)))
        elif obj.is_way():
            refs = obj.nodes
            missing = sum(not n.location.valid() for n in refs)
            way_state[obj.id] = missing == 0
            if "building" in obj.tags:
                if missing:
                    candidates_w[obj.id] = (CLIPPED, f" ({missing} of its {len(refs)} nodes outside the file)")
                elif len(refs) < 4 or refs[0].ref != refs[-1].ref:
                    candidates_w[obj.id] = ("not closed, so it has no area", "")
                else:
                    candidates_w[obj.id] = None
        elif obj.is_relation():
            if "building" in obj.tags and obj.tags.get("type") in ("multipolygon", "boundary"):
                members = [m.ref for m in obj.members if m.type == "w"]
                absent = [r for r in members if r not in way_state]
                partial = [r for r in members if r in way_state and not way_state[r]]
                if absent or partial:
                    candidates_r[obj.id] = (CLIPPED, f" ({len(absent)} member ways outside the file, "
                                                     f"{len(partial)} cut)")
                else:
                    candidates_r[obj.id] = None
        elif obj.is_area():
            try:
                wkb = factory.create_multipolygon(obj)
            except (osmium.InvalidLocationError, RuntimeError):
                continue
            key = ("way" if obj.from_way() else "relation", obj.orig_id())
            areas[key] = (wkb, {k: v for k, v in obj.tags})
    records, wkbs = [], []
    for osm_type, count, candidates in (("way", ways, candidates_w), ("relation", relations, candidates_r)):
        for osm_id in sorted(candidates):
            count.read += 1
            reason = candidates[osm_id]
            found = areas.get((osm_type, osm_id))
            if reason is None and found is None:
                reason = ("its rings do not close into a polygon", "")
            if reason is not None:
                # a relation assembled although a member is missing would lack a ring: not the building
                count.reject(reason[0], f"{osm_type} {osm_id}{reason[1]}")
                continue
            count.whole += 1
            wkb, tags = found
            wkbs.append(wkb)
            records.append((osm_id, osm_type, tags.get("name"), compose_address(tags), tags.get("addr:full"),
                            tags.get("addr:street"), tags.get("addr:housenumber"), tags.get("building:levels"),
                            floors_from_levels(tags.get("building:levels"))))
    frame = pd.DataFrame.from_records(records, columns=list(LAYERS["buildings"]))
    geoms = shapely.from_wkb(np.array(wkbs, dtype=object)) if wkbs else np.array([], dtype=object)
    if len(geoms):
        # Most buildings are one polygon; a single-part MultiPolygon would fail Polygon-only checks.
        single = shapely.get_num_geometries(geoms) == 1
        geoms[single] = shapely.get_geometry(geoms[single], 0)
    frame["geometry"] = list(geoms)
    notes = []
    from_points = _addresses_from_points(frame, addr_points)
    if from_points:
        notes.append(Said(N_("%(count)s buildings without addr:* of their own took the address points on or in "
                             "them"), count=from_points))
    unreadable = frame["building:levels"].notna() & frame["floors"].isna()
    if unreadable.any():
        example = frame.loc[unreadable, "building:levels"].iloc[0]
        notes.append(Said(N_("%(count)s buildings have a building:levels that is not a number of floors (e.g. "
                             "%(example)s); their floors are left empty"), count=int(unreadable.sum()),
                          example=repr(example)))
    frame["osm_address"] = frame["osm_address"].where(frame["osm_address"] != "", frame["name"].fillna(""))
    return frame, [ways, relations], notes


def _addresses_from_points(frame, points) -> int:
    """Fill empty ``osm_address`` from address nodes covered by the footprint; how many were filled."""
    empty = np.flatnonzero((frame["osm_address"] == "").to_numpy())
    if not len(points) or not len(empty):
        return 0
    xy = np.array([(x, y) for x, y, _ in points])
    texts = [t for _, _, t in points]
    tree = shapely.STRtree(shapely.points(xy))
    polys = frame["geometry"].to_numpy()[empty]
    poly_idx, point_idx = tree.query(polys, predicate="intersects")  # an entrance on the outline counts
    found = {}
    for p, q in zip(poly_idx, point_idx):
        found.setdefault(int(empty[p]), []).append(texts[q])
    for row, addresses in found.items():
        frame.iat[row, frame.columns.get_loc("osm_address")] = _join_addresses(addresses)
    return len(found)


def _join_addresses(addresses) -> str:
    """Several address points of one building as one address: "Kangaskatu 12, 14; Sturenkatu 5".

    ``addresses`` are ``(address, street, number)``; Latin numbers on one street join after it, every
    other address (addr:full, Chinese) is kept whole.
    """
    by_street = {}
    for address, street, number in sorted(set(addresses), key=lambda a: _natural(a[0])):
        if not street or _CJK.search(street):
            by_street.setdefault(address, [])
        else:
            by_street.setdefault(street, []).append(number)
    parts = [f"{street} {', '.join(numbers)}" if numbers else street for street, numbers in by_street.items()]
    text = "; ".join(parts)
    while len(text) > ADDRESS_LIMIT and len(parts) > 1:  # the register's address holds 256 characters
        parts.pop()
        text = "; ".join(parts) + " …"
    return text[:ADDRESS_LIMIT]


def _natural(text):
    return [(0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", text) if t]

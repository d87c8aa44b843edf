"""Shortest road distances in metres over imported roads: build a compact graph once, answer many queries.

The graph is built once from a GeoDataFrame of WGS84 road lines (one projection into a local
transverse Mercator CRS, then everything is metres) and kept for the life of a snapshot:

- **Nodes** are the roads' vertices after *noding*. Vertices closer than ``snap_m``
  (0.5 m by default) are one node: OSM-style data shares the junction vertex exactly, and roads
  cut at vector-tile edges meet at ends that coincide or miss by a few centimetres. A piece's
  dangling end that lies within ``snap_m`` of another road's segment (a T-junction drawn
  without a shared vertex) is joined to that segment at its nearest point.
- **Two segments that cross without a shared vertex are not joined** (``node_crossings=False``,
  the default): in OSM data that is a bridge, a tunnel or a flyover, and joining them would let a
  route jump off a viaduct. Pass ``node_crossings=True`` for hand-drawn data whose junctions are
  mere crossings.
- **Edges** are the segments between consecutive vertices, weighted by their length. Each travel
  mode (walk, e-bike, car) has its own graph over the same nodes: the road classes
  :data:`ROAD_CLASSES` lets it use, directed where a vehicle meets a one-way street (``oneway``
  yes/-1, implied on motorways and roundabouts), with a travel time per edge from the class's
  speed. A road's OSM access tags (``motorcar=no``, ``foot=no``, ``access=private`` …, stored as
  one ``access`` code, :func:`access_value`) take it out of the graphs of the modes they close,
  and ``oneway:bicycle`` sets the e-bike's direction. A ``barrier=*`` node on it (a bollard, a
  locked gate: :data:`BARRIERS`, named in the same code by its vertex) cuts the graphs of the
  modes it closes at that node: routes reach it from every side and pass it on none.
  ``mode=None`` is every kept road, both ways, distance only.

Queries snap each point to the nearest point on the nearest segment (a uniform grid of cells
listing the segments that cross them, searched ring by ring: flat arrays, so a snapshot file
holds each mode's finished graph and every process maps it rather than building it, where an
STRtree of LineStrings cost ~140 private bytes a segment in each), walk the straight line to it, go along the
partial segment to either of its end nodes, and run Dijkstra over the CSR adjacency from those
ends. The search stops as soon as every target's end nodes are settled, so one incident's
responders nearby cost the few hundred nodes around it, not the whole city; and it touches only
those: its distance array lives with the graph (one per thread) and only the entries it set are
reset afterwards, where :func:`scipy.sparse.csgraph.dijkstra` allocates and fills arrays the
size of the whole graph on every call (~0.3 ms at city size, more than the search itself). The
loop is compiled by numba on first use and cached on disk like ``geo.pointindex``'s kernels
(see ``bench/routing_bench.py``).
"""
from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import numpy as np
import shapely
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from .errors import InvalidInput, N_
from .crs import metric_for
from .jit import compiled

__all__ = ["ACCESS_TAGS", "BARRIERS", "EXCLUDED_KINDS", "MODES", "ROAD_CLASSES", "SPEEDS_MPS", "RoadGraph", "access_codes",
           "access_value", "barrier_closes", "barrier_words", "eta_s", "oneway_value", "road_layer"]

#: Road kinds nobody walks or drives along, with the reason; ``from_lines(kinds=None)`` drops them.
EXCLUDED_KINDS = {
    "rail": "a railway: no walking or driving along the tracks",
    "ferry": "a ferry line: a timetabled boat, not a road",
}

#: Mean travel speeds in metres per second, the figures :func:`eta_s` uses where no route is known.
#: 1.2 m/s is a brisk adult walk (~4.3 km/h); 4 m/s an e-bike in traffic (~14 km/h); 8 m/s a car
#: in city traffic with lights (~29 km/h). Routes use :data:`ROAD_CLASSES` per road instead.
SPEEDS_MPS = {"walk": 1.2, "ebike": 4.0, "car": 8.0}

#: The travel modes, in the order of :data:`ROAD_CLASSES`' columns.
MODES = ("walk", "ebike", "car")

#: Which road classes (OSM ``highway`` values, the road's ``kind``) each mode may use and at what
#: mean speed there, km/h including stops and lights; ``None``: the mode may not use it. One table,
#: so a change of policy is one line. A kind that is not here is walked only (a car is never sent
#: down a road nobody said it may drive on); roads imported without a kind ("") are usable by
#: every mode at :data:`SPEEDS_MPS` (the file says nothing to tell them apart).
ROAD_CLASSES = {
    #                  walk  e-bike  car
    "motorway":       (None, None, 60.0),
    "motorway_link":  (None, None, 40.0),
    "trunk":          (4.3, 16.0, 45.0),
    "trunk_link":     (4.3, 16.0, 30.0),
    "primary":        (4.3, 16.0, 35.0),
    "primary_link":   (4.3, 16.0, 25.0),
    "secondary":      (4.3, 16.0, 30.0),
    "secondary_link": (4.3, 16.0, 25.0),
    "tertiary":       (4.3, 15.0, 25.0),
    "tertiary_link":  (4.3, 15.0, 20.0),
    "unclassified":   (4.3, 15.0, 20.0),
    "residential":    (4.3, 15.0, 20.0),
    "road":           (4.3, 15.0, 20.0),
    "living_street":  (4.3, 10.0, 10.0),
    "service":        (4.3, 12.0, 10.0),
    "track":          (4.3, 10.0, 10.0),
    "busway":         (4.3, None, None),
    "cycleway":       (4.3, 16.0, None),
    "path":           (4.3, 10.0, None),
    "bridleway":      (4.3, None, None),
    "pedestrian":     (4.3, None, None),
    "footway":        (4.3, None, None),
    "corridor":       (4.3, None, None),
    "platform":       (4.3, None, None),
    "crossing":       (4.3, None, None),
    "elevator":       (4.3, None, None),
    "steps":          (2.0, None, None),
    "construction":   (None, None, None),
    "proposed":       (None, None, None),
    "abandoned":      (None, None, None),
    "disused":        (None, None, None),
    "razed":          (None, None, None),
    "raceway":        (None, None, None),
}
_WALK_ONLY = (4.3, None, None)

#: Modes that keep to one-way streets: vehicles. Walkers go both ways along every road.
ONEWAY_MODES = frozenset({"ebike", "car"})
#: Road classes that are one-way without an ``oneway`` tag (OSM's convention); roundabouts are
#: made one-way at import (:func:`oneway_value`), since the class does not say so.
IMPLIED_ONEWAY = frozenset({"motorway"})
#: The straight walks between a point and its road (a door to the kerb) are at this speed whatever
#: the mode: a responder parks and walks.
OFF_ROAD_MPS = 1.2

_ONEWAY_TAGS = {"yes": "yes", "true": "yes", "1": "yes", "-1": "-1", "reverse": "-1",
                "no": "no", "false": "no", "0": "no"}


def oneway_value(oneway=None, junction=None):
    """The stored ``oneway`` of a road from its OSM-style ``oneway`` and ``junction`` tags.

    Returns ``"yes"`` (along the line's drawing direction only), ``"-1"`` (against it), ``"no"``
    (both ways, said explicitly) or ``""`` (not said: the class decides, see
    :data:`IMPLIED_ONEWAY`). A roundabout (``junction=roundabout`` or ``circular``) is one-way
    unless its ``oneway`` says otherwise. Values such as ``reversible`` (the direction changes by
    the hour) count as both ways: a route may not rely on either.
    """
    text = "" if oneway is None or (isinstance(oneway, float) and math.isnan(oneway)) else str(oneway)
    text = text.strip().lower()
    if text in _ONEWAY_TAGS:
        return _ONEWAY_TAGS[text]
    if text:
        return "no"
    j = "" if junction is None or (isinstance(junction, float) and math.isnan(junction)) else str(junction)
    return "yes" if j.strip().lower() in ("roundabout", "circular") else ""


#: The OSM access tags read for each road. For each mode the most specific tag it has decides
#: (OSM's hierarchy): ``foot`` then ``access`` for walkers; ``bicycle``, ``vehicle``, ``access`` for
#: e-bikes; ``motorcar``, ``motor_vehicle``, ``vehicle``, ``access`` for cars. ``oneway:bicycle``
#: overrides ``oneway`` for e-bikes (``no`` lifts it: a contraflow cycle lane).
ACCESS_TAGS = ("access", "foot", "bicycle", "vehicle", "motor_vehicle", "motorcar", "oneway:bicycle")
_ACCESS_CHAIN = {"walk": ("foot", "access"), "ebike": ("bicycle", "vehicle", "access"),
                 "car": ("motorcar", "motor_vehicle", "vehicle", "access")}
#: Values that close a road to the mode. Everything else is open: yes, designated, permissive,
#: destination (a responder's destination is there), delivery, customers … — a route to an incident
#: may use them.
CLOSING_ACCESS = frozenset({"no", "private"})
_BIKE_ONEWAY = "ebike-oneway="


def access_value(tags) -> str:
    """The stored ``access`` of a road from its OSM access tags (a dict or OSM tag list).

    A comma-separated code: the modes the road is closed to (in :data:`MODES` order), then
    ``ebike-oneway=yes|-1|no`` where ``oneway:bicycle`` says how e-bikes may go. ``""``: nothing
    said, the class and ``oneway`` decide. E.g. ``motorcar=no`` → ``"car"``; ``access=private`` with
    ``foot=yes`` → ``"ebike,car"``; ``oneway:bicycle=no`` → ``"ebike-oneway=no"``.
    """
    words = []
    for mode in MODES:
        for key in _ACCESS_CHAIN[mode]:
            value = _text(tags.get(key))
            if value:
                if value.split(";")[0].strip() in CLOSING_ACCESS:
                    words.append(mode)
                break
    bike = _ONEWAY_TAGS.get(_text(tags.get("oneway:bicycle")))
    if bike:
        words.append(_BIKE_ONEWAY + bike)
    return ",".join(words)


#: What a ``barrier=*`` node on a road closes when its own tags say nothing more: the modes that
#: cannot pass it (OSRM's profiles and the OSM wiki's defaults). A node's access tags, read down
#: :data:`ACCESS_TAGS`' chain per mode as a road's are, decide for the modes they name: a gate is
#: open, ``access=private`` on it closes it, ``foot=yes`` opens a fence's stile to walkers;
#: ``locked=yes`` closes it to every mode they do not name. A value not listed closes it to vehicles.
#: Only plain tags are read: ``access:conditional`` and the other ``*:conditional`` (a time or a
#: vehicle weight) are not evaluated, so neither a conditional closing nor a conditional opening
#: changes a route; nor is ``emergency=yes`` (a responder is routed as any car is).
BARRIERS = {
    # nothing stops anyone who may use the road: opened for them, or nothing across it
    "gate": (), "lift_gate": (), "swing_gate": (), "sliding_gate": (), "entrance": (), "border_control": (),
    "toll_booth": (), "cattle_grid": (), "height_restrictor": (), "sally_port": (), "kerb": (), "no": (),
    # cars kept out; walkers and bikes pass beside or through
    "bollard": ("car",), "block": ("car",), "bus_trap": ("car",), "sump_buster": ("car",),
    "cycle_barrier": ("car",), "jersey_barrier": ("car",),
    # walkers only: one steps over, squeezes or turns through
    "kissing_gate": ("ebike", "car"), "stile": ("ebike", "car"), "turnstile": ("ebike", "car"),
    "full-height_turnstile": ("ebike", "car"), "motorcycle_barrier": ("ebike", "car"), "chain": ("ebike", "car"),
    # nobody
    "fence": MODES, "wall": MODES, "hedge": MODES, "city_wall": MODES, "retaining_wall": MODES, "ditch": MODES,
}
_UNKNOWN_BARRIER = ("ebike", "car")
_BARRIER = "barrier@"
#: The longest stored ``access`` code (gridmap.store.models.Road.access); barriers beyond it are dropped.
ACCESS_CODE_MAX = 1024


def barrier_closes(tags):
    """The modes (in :data:`MODES` order) a node tagged ``barrier=*`` closes, from its tags (a dict
    or OSM tag list); () for a node that is no barrier or that every mode may pass. See :data:`BARRIERS`."""
    kind = _text(tags.get("barrier"))
    if not kind:
        return ()
    closed = set(MODES if _text(tags.get("locked")) == "yes" else BARRIERS.get(kind, _UNKNOWN_BARRIER))
    for mode in MODES:
        for key in _ACCESS_CHAIN[mode]:
            value = _text(tags.get(key))
            if value:
                (closed.add if value.split(";")[0].strip() in CLOSING_ACCESS else closed.discard)(mode)
                break
    return tuple(m for m in MODES if m in closed)


def barrier_words(stops):
    """The ``access`` code's words for barriers on a line: ``stops`` is ``(vertex index, modes)``
    pairs, the index into the line's coordinates; e.g. ``[(3, ("car",))]`` → ``"barrier@3=car"``.
    A barrier every mode passes leaves no word."""
    return ",".join(f"{_BARRIER}{int(i)}={'+'.join(modes)}" for i, modes in stops if modes)


def _is_barrier_word(word):
    head, _, modes = word.partition("=")
    return (head.startswith(_BARRIER) and head[len(_BARRIER):].isdigit()
            and bool(modes) and all(m in MODES for m in modes.split("+")))


def _is_code(text):
    return all(w in MODES or (w.startswith(_BIKE_ONEWAY) and w[len(_BIKE_ONEWAY):] in ("yes", "-1", "no"))
               or _is_barrier_word(w) for w in text.split(","))


def _barriers_of(code):
    """``(vertex index, closed-mode bits)`` of the barrier words in a stored code."""
    out = []
    for word in filter(None, code.split(",")):
        if word.startswith(_BARRIER) and _is_barrier_word(word):
            head, _, modes = word.partition("=")
            out.append((int(head[len(_BARRIER):]), sum(1 << MODES.index(m) for m in set(modes.split("+")))))
    return out


def access_codes(frame):
    """The stored ``access`` code of every row of ``frame`` (a DataFrame), from whichever columns
    it has: the OSM tags of :data:`ACCESS_TAGS`, or an ``access`` column that already holds codes
    (the store's, an export's). A value of ``access`` that is not a code is the OSM tag."""
    columns = [c for c in ACCESS_TAGS if c in getattr(frame, "columns", ())]
    has_barriers = "barriers" in getattr(frame, "columns", ())
    if not columns and not has_barriers:
        return [""] * len(frame)
    values = [frame[c].tolist() for c in columns]
    barriers = frame["barriers"].tolist() if has_barriers else [None] * len(frame)
    out = []
    for row, stops in zip(zip(*values) if columns else [()] * len(frame), barriers):
        tags = dict(zip(columns, row))
        text = _text(tags.get("access"))
        if text and _is_code(text) and not any(_text(v) for k, v in tags.items() if k != "access"):
            code = text
        else:
            code = access_value(tags)
        stops = _text(stops)
        if stops and _is_code(stops):  # the reader's barrier words (gridmap.geo.osm ``barriers``)
            code = ",".join(filter(None, [code, stops]))
        out.append(_bounded(code))
    return out


def _bounded(code):
    """``code`` cut, at a word, to :data:`ACCESS_CODE_MAX` characters (only a way with some sixty
    barriers is that long: its last barriers are dropped rather than the import refused)."""
    while len(code) > ACCESS_CODE_MAX:
        code = code.rsplit(",", 1)[0]
    return code


def _closed_bits(code):
    """Bit ``i`` set where ``MODES[i]`` may not use the road; and e-bike's own oneway ("" if none)."""
    bits, bike = 0, ""
    for word in filter(None, code.split(",")):
        if word in MODES:
            bits |= 1 << MODES.index(word)
        elif word.startswith(_BIKE_ONEWAY):
            bike = word[len(_BIKE_ONEWAY):]
    return bits, bike


def road_layer(layer=None, tunnel=None, bridge=None):
    """The level a road runs at, from OSM's ``layer``, ``tunnel`` and ``bridge`` tags.

    ``layer`` when it is a whole number; else -1 in a tunnel (``tunnel`` yes, culvert …; not a
    ``building_passage``, which is at street level), 1 on a bridge, 0 on the ground. Roads of
    different levels meet only at a shared vertex, never by mere closeness (see
    :meth:`RoadGraph.from_lines`' ``snap_m``).
    """
    text = _text(layer)
    try:
        return int(float(text)) if text else _implied_layer(_text(tunnel), _text(bridge))
    except ValueError:
        return _implied_layer(_text(tunnel), _text(bridge))


def _implied_layer(tunnel, bridge):
    if tunnel not in ("", "no", "building_passage"):
        return -1
    return 1 if bridge not in ("", "no") else 0


def _text(value):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value).strip().lower()


def _direction(oneway, kind):
    """+1 along the drawing only, -1 against it only, 0 both ways."""
    value = oneway_value(oneway) if oneway not in ("yes", "-1", "no", "") else oneway
    if value == "yes" or (value == "" and kind in IMPLIED_ONEWAY):
        return 1
    return -1 if value == "-1" else 0


def _speeds_mps(kind, mode):
    """Metres per second of ``mode`` on a road of ``kind``; NaN where the mode may not go."""
    if mode is None:
        return 1.0  # the mode-less graph measures distance only
    if kind == "":
        return SPEEDS_MPS[mode]
    kmh = ROAD_CLASSES.get(kind, _WALK_ONLY)[MODES.index(mode)]
    return float("nan") if kmh is None else kmh / 3.6


DEFAULT_SNAP_M = 0.5
DEFAULT_MIN_ISLAND_M = 300.0


@dataclass(frozen=True)
class _Snap:
    seg: np.ndarray     # nearest segment per point
    frac: np.ndarray    # position of the snap point along it, 0 at end u, 1 at end v
    walk: np.ndarray    # straight walk from the point to the snap point, metres
    x: np.ndarray       # snap point, metric
    y: np.ndarray


class _Net:
    """One mode's view of the noded roads: the segments it may use, its adjacency in both search
    directions, its components and its snapping tree."""

    def __init__(self, seg_xy, seg_u, seg_v, seg_len, seg_dir, seg_speed, min_island_m):
        n_nodes = int(max(seg_u.max(initial=-1), seg_v.max(initial=-1)) + 1)
        fwd = _directed_csr(seg_u, seg_v, seg_len, seg_speed, seg_dir, n_nodes)
        labels = _weak_labels(fwd, n_nodes)
        if min_island_m > 0 and len(seg_len):
            piece_m = np.bincount(labels[seg_u], weights=seg_len, minlength=labels.max() + 1)
            keep_piece = (piece_m >= min_island_m) | (np.arange(len(piece_m)) == piece_m.argmax())
            if not keep_piece.all():
                keep = keep_piece[labels[seg_u]]
                seg_xy, seg_u, seg_v = seg_xy[keep], seg_u[keep], seg_v[keep]
                seg_len, seg_dir, seg_speed = seg_len[keep], seg_dir[keep], seg_speed[keep]
                used, inverse = np.unique(np.r_[seg_u, seg_v], return_inverse=True)
                seg_u = inverse[: len(seg_u)].astype(np.int32)
                seg_v = inverse[len(seg_u):].astype(np.int32)
                n_nodes = len(used)
                fwd = _directed_csr(seg_u, seg_v, seg_len, seg_speed, seg_dir, n_nodes)
                labels = _weak_labels(fwd, n_nodes)
        self.seg_xy, self.seg_u, self.seg_v, self.seg_len = seg_xy, seg_u, seg_v, seg_len
        self.seg_dir, self.seg_speed = seg_dir, seg_speed
        self.fwd = fwd
        # the search from a point towards those who travel to it runs over the edges reversed
        self.rev = fwd if not seg_dir.any() else _directed_csr(seg_v, seg_u, seg_len, seg_speed, seg_dir, n_nodes)
        self.labels = labels.astype(np.int32)
        self.n_nodes = n_nodes
        self.grid, self.grid_frame = _segment_grid(seg_xy)
        self.scratch = threading.local()

    _ARRAYS = ("seg_xy", "seg_u", "seg_v", "seg_len", "seg_dir", "seg_speed", "labels")
    _CSR = ("indptr", "indices", "length", "seconds")

    def to_arrays(self):
        """This mode's finished graph as flat arrays and a small JSON-able dict (see :meth:`from_arrays`)."""
        arrays = {k: getattr(self, k) for k in self._ARRAYS}
        arrays.update({f"fwd.{k}": a for k, a in zip(self._CSR, self.fwd)})
        if self.rev is not self.fwd:
            arrays.update({f"rev.{k}": a for k, a in zip(self._CSR, self.rev)})
        arrays["grid.ptr"], arrays["grid.seg"] = self.grid
        return arrays, {"n_nodes": int(self.n_nodes), "grid": list(self.grid_frame), "rev": self.rev is not self.fwd}

    @classmethod
    def from_arrays(cls, arrays, meta):
        """The graph :meth:`to_arrays` wrote, over the given arrays (memory-mapped ones stay mapped:
        nothing here copies or builds anything the size of the graph)."""
        self = cls.__new__(cls)
        for k in cls._ARRAYS:
            setattr(self, k, arrays[k])
        self.fwd = tuple(arrays[f"fwd.{k}"] for k in cls._CSR)
        self.rev = tuple(arrays[f"rev.{k}"] for k in cls._CSR) if meta["rev"] else self.fwd
        self.n_nodes = int(meta["n_nodes"])
        self.grid = (arrays["grid.ptr"], arrays["grid.seg"])
        x0, y0, cs, nx, ny = meta["grid"]
        self.grid_frame = (float(x0), float(y0), float(cs), int(nx), int(ny))
        self.scratch = threading.local()
        return self

    def nearest_segments(self, x, y):
        """Index of the nearest segment to each metric point (of equidistant ones the lowest)."""
        out = np.empty(len(x), dtype=np.int64)
        x0, y0, cs, nx, ny = self.grid_frame
        _nearest_kernel()(self.seg_xy, self.grid[0], self.grid[1], x0, y0, cs, nx, ny,
                          np.ascontiguousarray(x, dtype=float), np.ascontiguousarray(y, dtype=float), out)
        return out

    def nbytes(self):
        arrays = [self.seg_xy, self.seg_u, self.seg_v, self.seg_len, self.seg_dir, self.seg_speed, self.labels,
                  *self.grid]
        for csr in {id(self.fwd): self.fwd, id(self.rev): self.rev}.values():
            arrays += list(csr)
        return int(sum(a.nbytes for a in arrays))


class RoadGraph:
    """A road network in metres: noded, projected once, queried many times, per travel mode.

    Build with :meth:`from_lines`; never rebuild per request. Every query takes a ``mode``:
    ``None`` (the default) routes over every kept road both ways and measures distance only;
    ``"walk"``, ``"ebike"`` and ``"car"`` keep to the road classes :data:`ROAD_CLASSES` lets the
    mode use, vehicles keep to one-way streets, and routes carry a travel time from the classes'
    speeds. Each mode's graph is built on its first use (or by :meth:`prepare`) and kept.

    Attributes
    ----------
    crs : pyproj.CRS
        The local metric CRS every length is measured in (centred on the roads' bounds).
    n_nodes, n_edges : int
        Nodes after noding and undirected edges of the mode-less graph (parallel segments between
        the same two nodes count once, with the shortest length).
    """

    def __init__(self, *, metric, seg_xy, seg_u, seg_v, seg_len, seg_kind, seg_dir, min_island_m,
                 seg_closed=None, seg_bike_dir=None, barrier_nodes=None, barrier_bits=None):
        self.metric = metric
        # nodes a barrier stands on and the modes it closes (bits as the access code's): a mode's
        # graph cuts them, so a route reaches the barrier from either side but never passes it
        self._barrier_nodes = np.zeros(0, dtype=np.int64) if barrier_nodes is None else barrier_nodes
        self._barrier_bits = np.zeros(0, dtype=np.uint8) if barrier_bits is None else barrier_bits
        self.crs = metric.crs
        self._base_parts = (seg_xy, seg_u, seg_v, seg_len, seg_kind, seg_dir)
        self._closed = np.zeros(len(seg_len), dtype=np.uint8) if seg_closed is None else seg_closed
        self._bike_dir = seg_dir if seg_bike_dir is None else seg_bike_dir
        self._min_island_m = min_island_m
        self._nets = {}
        self._nets_lock = threading.Lock()
        net = self._net(None)
        self.n_nodes = net.n_nodes
        self.n_edges = int(net.fwd[1].shape[0] // 2)

    @property
    def _base(self):
        """The noded segments before any mode's choice: only building a mode's graph reads them
        (a graph from :meth:`from_arrays` decodes its road kinds here, if ever)."""
        if self._base_parts is None:
            with self._base_lock:  # not _nets_lock: a mode's build (holding it) reads these
                if self._base_parts is None:
                    self._base_parts = self._base_loader()
        return self._base_parts

    # -- flat arrays, for a snapshot file ---------------------------------------------------
    def to_arrays(self, modes=(None, *MODES)):
        """Everything the graph answers from as flat arrays (name → ndarray) and a JSON-able dict:
        the noded segments and, per mode of ``modes``, its finished graph (built now if not yet).

        :meth:`from_arrays` over the same arrays (memory-mapped from a file, say) answers exactly as
        this graph does without building anything."""
        seg_xy, seg_u, seg_v, seg_len, seg_kind, seg_dir = self._base
        kinds, codes = np.unique(np.asarray(seg_kind).astype(str), return_inverse=True)
        arrays = {"seg_xy": seg_xy, "seg_u": seg_u, "seg_v": seg_v, "seg_len": seg_len,
                  "seg_kind": codes.ravel().astype(np.int32), "seg_dir": seg_dir, "seg_closed": self._closed,
                  "seg_bike_dir": self._bike_dir, "barrier_nodes": self._barrier_nodes,
                  "barrier_bits": self._barrier_bits}
        nets = {}
        for mode in modes:
            net = self._net(mode)
            name = mode or "all"
            if net is None:
                nets[name] = None
                continue
            net_arrays, nets[name] = net.to_arrays()
            arrays.update({f"net.{name}.{k}": v for k, v in net_arrays.items()})
        meta = {"kinds": kinds.tolist(), "min_island_m": self._min_island_m, "nets": nets,
                "n_nodes": int(self.n_nodes), "n_edges": int(self.n_edges)}
        return {k: np.asarray(v) for k, v in arrays.items()}, meta

    @classmethod
    def from_arrays(cls, metric, arrays, meta):
        """The graph :meth:`to_arrays` wrote, answering from ``arrays`` as they are (read-only
        memory maps stay shared: each mode's adjacency, components and snapping grid are used in
        place). A mode not stored is built from the segments on its first use, as ever."""
        self = cls.__new__(cls)
        self.metric = metric
        self.crs = metric.crs
        self._barrier_nodes, self._barrier_bits = arrays["barrier_nodes"], arrays["barrier_bits"]
        self._closed, self._bike_dir = arrays["seg_closed"], arrays["seg_bike_dir"]
        self._min_island_m = meta["min_island_m"]
        self._nets_lock = threading.Lock()
        self._base_lock = threading.Lock()
        self._base_parts = None

        def base():
            kinds = np.asarray(meta["kinds"], dtype=object)
            return (arrays["seg_xy"], arrays["seg_u"], arrays["seg_v"], arrays["seg_len"],
                    kinds[arrays["seg_kind"]], arrays["seg_dir"])
        self._base_loader = base
        self._nets = {}
        for name, net_meta in meta.get("nets", {}).items():
            mode = None if name == "all" else name
            if net_meta is None:
                self._nets[mode] = None
            else:
                prefix = f"net.{name}."
                self._nets[mode] = _Net.from_arrays({k[len(prefix):]: v for k, v in arrays.items()
                                                     if k.startswith(prefix)}, net_meta)
        net = self._net(None)
        self.n_nodes = net.n_nodes
        self.n_edges = int(net.fwd[1].shape[0] // 2)
        return self

    # the mode-less graph's arrays under their former names (bench/routing_bench.py reads them)
    @property
    def _seg_u(self):
        return self._net(None).seg_u

    @property
    def _seg_v(self):
        return self._net(None).seg_v

    @property
    def _seg_len(self):
        return self._net(None).seg_len

    @property
    def _csr(self):
        indptr, indices, data, _ = self._net(None).fwd
        return csr_matrix((data, indices, indptr), shape=(len(indptr) - 1, len(indptr) - 1))

    # -- construction -----------------------------------------------------------------------
    @classmethod
    def from_lines(cls, roads, *, kinds=None, snap_m=DEFAULT_SNAP_M, node_crossings=False,
                   min_island_m=DEFAULT_MIN_ISLAND_M):
        """Build the graph from road lines in WGS84.

        Parameters
        ----------
        roads : geopandas.GeoDataFrame or geopandas.GeoSeries
            LineStrings and MultiLineStrings in WGS84 (a GeoDataFrame with another CRS is
            converted). A ``kind`` column (the OSM ``highway`` class), when present, is filtered
            by ``kinds`` and decides which modes may use the road (:data:`ROAD_CLASSES`); a
            ``oneway`` column (``yes``/``-1``/``no``/empty, see :func:`oneway_value`) makes it
            one-way for vehicles. An ``access`` column (the stored code, or OSM's tag) and the other
            :data:`ACCESS_TAGS` columns close roads to modes (see :func:`access_value`).
        kinds : iterable of str, optional
            The road kinds to keep. By default every kind except those in
            :data:`EXCLUDED_KINDS` (rail, ferry).
        snap_m : float, default 0.5
            Vertices closer than this are one node, and a dangling end this close to another
            road's segment is joined to it.
        node_crossings : bool, default False
            Also join segments that cross without a shared vertex (see the module docstring for
            why OSM data should not). The lines are re-cut, so their kinds and one-way tags are
            not kept: every piece is usable by every mode, both ways.
        min_island_m : float, default 300
            Drop connected pieces of network whose roads add up to less than this, unless the
            piece is the largest (per mode). Real extracts are full of them (a footpath cut off at
            the data's edge, a park path drawn without its junction); left in, they catch the
            snap of a nearby point and make every route from it "unreachable". ``0`` keeps all.

        Returns
        -------
        RoadGraph

        Raises
        ------
        InvalidInput
            When no line of a kept kind remains, or ``snap_m`` is negative.
        """
        if not (snap_m >= 0 and math.isfinite(snap_m)):
            raise InvalidInput(N_("snap_m was %(snap_m)s but must be a finite number of metres ≥ 0."),
                               fix=N_("Use the default 0.5 m unless the data's ends miss by more."),
                               params={"snap_m": repr(snap_m)})
        geoms, kind, oneway, layer, access = _kept_geometries(roads, kinds)
        lines = shapely.get_parts(geoms)
        n_parts = shapely.get_num_geometries(geoms)
        line_kind = np.repeat(kind, n_parts)
        line_oneway = np.repeat(oneway, n_parts)
        line_layer = np.repeat(layer, n_parts)
        line_access = np.repeat(access, n_parts)
        ok = ~shapely.is_empty(lines) & (shapely.get_type_id(lines) == 1)
        lines, line_kind, line_oneway, line_layer = lines[ok], line_kind[ok], line_oneway[ok], line_layer[ok]
        line_access = line_access[ok]
        if not len(lines):
            kept = sorted(kinds) if kinds is not None else f"all but {sorted(EXCLUDED_KINDS)}"
            raise InvalidInput(N_("No road line to route on."),
                               fix=N_("Import LineString roads; kinds kept: %(kept)s."),
                               params={"kept": kept})
        metric = metric_for(lines)
        xy, part = shapely.get_coordinates(lines, return_index=True)
        x, y = metric.xy(xy[:, 0], xy[:, 1])
        xy = np.column_stack([x, y])
        line_dir = np.array([_direction(o, k) for o, k in zip(line_oneway.tolist(), line_kind.tolist())],
                            dtype=np.int8)
        stops = _barrier_points(geoms, access, metric)
        closed = [_closed_bits(a) for a in line_access.tolist()]
        line_closed = np.array([c[0] for c in closed], dtype=np.uint8)
        # e-bikes follow oneway:bicycle where it is said, else the road's own direction
        line_bike_dir = np.array([_direction(b, k) if b else d for (_, b), k, d
                                  in zip(closed, line_kind.tolist(), line_dir.tolist())], dtype=np.int8)
        if node_crossings:
            # unary_union splits every line at every crossing; run in metres so the result is exact
            in_metres = shapely.linestrings(xy, indices=part)
            lines = shapely.get_parts(shapely.line_merge(shapely.unary_union(in_metres)))
            xy, part = shapely.get_coordinates(lines, return_index=True)
            line_kind = np.full(len(lines), "", dtype=object)
            line_dir = np.zeros(len(lines), dtype=np.int8)
            line_layer = np.zeros(len(lines), dtype=np.int64)
            line_closed = np.zeros(len(lines), dtype=np.uint8)
            line_bike_dir = line_dir
        seg_xy, seg_part = _segments(xy, part)
        seg_xy, seg_part = _split_at_t_junctions(seg_xy, seg_part, snap_m, line_layer)
        node_of_vertex, _ = _cluster_vertices(seg_xy.reshape(-1, 2), snap_m, np.repeat(line_layer[seg_part], 2))
        seg_u = node_of_vertex[0::2].astype(np.int32)
        seg_v = node_of_vertex[1::2].astype(np.int32)
        seg_len = np.hypot(seg_xy[:, 2] - seg_xy[:, 0], seg_xy[:, 3] - seg_xy[:, 1])
        barrier_nodes, barrier_bits = _barrier_node_bits(stops, seg_xy.reshape(-1, 2), node_of_vertex)
        loop = seg_u == seg_v
        seg_xy, seg_u, seg_v, seg_len, seg_part = (seg_xy[~loop], seg_u[~loop], seg_v[~loop], seg_len[~loop],
                                                   seg_part[~loop])
        return cls(metric=metric, seg_xy=seg_xy, seg_u=seg_u, seg_v=seg_v, seg_len=seg_len,
                   seg_kind=np.asarray(line_kind, dtype=object)[seg_part], seg_dir=line_dir[seg_part],
                   seg_closed=line_closed[seg_part], seg_bike_dir=line_bike_dir[seg_part],
                   min_island_m=min_island_m, barrier_nodes=barrier_nodes, barrier_bits=barrier_bits)

    def prepare(self, modes=MODES):
        """Build the graphs of ``modes`` now rather than on their first query."""
        for mode in modes:
            self._net(mode)
        return self

    def _net(self, mode):
        try:
            return self._nets[mode]
        except KeyError:
            _check_mode(mode)
            with self._nets_lock:
                if mode not in self._nets:
                    self._nets[mode] = self._build_net(mode)
            return self._nets[mode]

    def _build_net(self, mode):
        seg_xy, seg_u, seg_v, seg_len, seg_kind, seg_dir = self._base
        kinds, inverse = np.unique(seg_kind.astype(str), return_inverse=True)
        speed = np.array([_speeds_mps(k, mode) for k in kinds.tolist()], dtype=float)[inverse.ravel()]
        keep = np.isfinite(speed)
        if mode is not None:
            keep &= (self._closed & (1 << MODES.index(mode))) == 0  # the road's access tags close it
        if not keep.any():
            return None  # the mode may use none of the roads: every route is unreachable
        if mode == "ebike":
            seg_dir = self._bike_dir
        direction = seg_dir[keep] if mode in ONEWAY_MODES else np.zeros(int(keep.sum()), dtype=np.int8)
        seg_u, seg_v = seg_u[keep], seg_v[keep]
        if mode is not None and len(self._barrier_nodes):
            blocked = self._barrier_nodes[(self._barrier_bits & (1 << MODES.index(mode))) != 0]
            first_free = int(max(self._base[2].max(initial=-1), self._base[3].max(initial=-1))) + 1
            seg_u, seg_v = _cut_nodes(seg_u, seg_v, blocked, first_free)
        return _Net(seg_xy[keep], seg_u, seg_v, seg_len[keep], direction, speed[keep], self._min_island_m)

    # -- queries ----------------------------------------------------------------------------
    def distance_m(self, lon1, lat1, lon2, lat2, mode=None):
        """Shortest road distance in metres from one WGS84 point to another.

        Each end walks straight to the nearest point on the nearest road the mode may use, then
        along that segment to whichever of its ends gives the shorter route (two points on the
        same segment may also go straight along it, where its direction allows).

        Parameters
        ----------
        lon1, lat1, lon2, lat2 : float
            WGS84 degrees: from (lon1, lat1) to (lon2, lat2).
        mode : {None, "walk", "ebike", "car"}
            See the class docstring.

        Returns
        -------
        float
            Metres, including both straight walks; ``math.inf`` when no route exists.
        """
        return float(self.distances_m(lon2, lat2, [(lon1, lat1)], mode=mode)[0])

    def distances_m(self, lon, lat, targets_lonlat, mode=None, *, inbound=True):
        """Road distances in metres between one point and many (one bounded Dijkstra search).

        Parameters
        ----------
        lon, lat : float
            The point, WGS84 degrees.
        targets_lonlat : array_like of shape (n, 2)
            Targets as ``(lon, lat)`` pairs.
        mode : {None, "walk", "ebike", "car"}
            See the class docstring.
        inbound : bool, default True
            Measure each target's route *to* the point (responders travelling to an incident);
            False measures from the point to the targets. The same without one-way streets.

        Returns
        -------
        numpy.ndarray of float, shape (n,)
            Metres per target, ``inf`` for unreachable ones.
        """
        return self.routes(lon, lat, targets_lonlat, mode=mode, inbound=inbound)[0]

    def routes(self, lon, lat, targets_lonlat, mode=None, *, inbound=True):
        """Shortest road distances (as :meth:`distances_m`) and the travel time along each route.

        Returns
        -------
        (numpy.ndarray, numpy.ndarray)
            Metres and seconds per target, ``inf`` for unreachable ones. The time is the route's
            roads at the mode's speed per class (:data:`ROAD_CLASSES`) plus the straight walks
            to and from the road at :data:`OFF_ROAD_MPS`; with ``mode=None``, NaN.
        """
        net = self._net(mode)
        targets = np.asarray(targets_lonlat, dtype=float).reshape(-1, 2)
        pts = np.vstack([[float(lon), float(lat)], targets])
        _check_lonlat(pts)
        if net is None:
            return np.full(len(targets), np.inf), np.full(len(targets), np.inf)
        snap = self._snap(pts[:, 0], pts[:, 1], net)
        dist, time = self._from_snap(net, snap, inbound)
        if mode is None:
            time = np.full(len(dist), np.nan)
        return dist, time

    def snap(self, lon, lat, mode=None):
        """The nearest point on the road network (of ``mode``) and the straight walk to it.

        Parameters
        ----------
        lon, lat : float
            WGS84 degrees.

        Returns
        -------
        dict
            ``lon``, ``lat`` of the snap point and ``walk_m``, the straight distance to it.
        """
        pts = np.array([[float(lon), float(lat)]])
        _check_lonlat(pts)
        net = self._net(mode)
        if net is None:
            raise InvalidInput(N_("No imported road may be used by mode %(mode)s."),
                               fix=N_("Import roads of the classes the mode may use (see ROAD_CLASSES) or pick another."),
                               params={"mode": repr(mode)})
        s = self._snap(pts[:, 0], pts[:, 1], net)
        slon, slat = self.metric.lonlat(s.x[0], s.y[0])
        return {"lon": float(slon), "lat": float(slat), "walk_m": float(s.walk[0])}

    def nbytes(self):
        """Estimated bytes held: the segment arrays, and per mode built its graph and snapping tree."""
        parts = self._base_parts or ()
        base = sum(a.nbytes for a in parts if a.dtype != object) + (len(parts[4]) * 8 if parts else 0)
        return int(base + sum(net.nbytes() for net in list(self._nets.values()) if net is not None))

    # -- internals --------------------------------------------------------------------------
    def _snap(self, lon, lat, net=None):
        net = self._net(None) if net is None else net
        x, y = self.metric.xy(lon, lat)
        x, y = np.atleast_1d(np.asarray(x, dtype=float)), np.atleast_1d(np.asarray(y, dtype=float))
        far = ~(np.isfinite(x) & np.isfinite(y))
        if far.any():
            # the STRtree finds nothing for such a point, and the answers of the others would shift
            i = np.flatnonzero(far)[0]
            lon_i, lat_i = np.atleast_1d(lon)[i], np.atleast_1d(lat)[i]
            raise InvalidInput(N_("Point lon=%(lon_i)s, lat=%(lat_i)s is too far from the roads to measure a distance."),
                               fix=N_("Give points in the area whose roads were imported."),
                               params={"lon_i": lon_i, "lat_i": lat_i})
        seg = net.nearest_segments(x, y)
        ax, ay, bx, by = net.seg_xy[seg].T
        dx, dy = bx - ax, by - ay
        ll = dx * dx + dy * dy
        with np.errstate(invalid="ignore", divide="ignore"):
            t = np.where(ll > 0, ((x - ax) * dx + (y - ay) * dy) / ll, 0.0)
        t = np.clip(t, 0.0, 1.0)
        sx, sy = ax + t * dx, ay + t * dy
        return _Snap(seg=seg, frac=t, walk=np.hypot(x - sx, y - sy), x=sx, y=sy)

    def _from_snap(self, net, snap, inbound):
        """Distances and times between snap point 0 and snap points 1..n.

        Outbound (0 → j) the search runs forward from point 0; inbound (j → 0) it runs over the
        reversed edges from point 0. Either way point 0 is the search's source ``S`` and each j a
        target ``T``, and the route is ``S``'s partial segment, nodes, ``T``'s partial segment;
        a partial segment may be taken only in a direction its road allows.
        """
        s, tseg = snap.seg[0], snap.seg[1:]
        n = len(tseg)
        length, speed, direction = net.seg_len, net.seg_speed, net.seg_dir
        # along the drawing (a → b) allowed where direction >= 0, against it where direction <= 0
        ab_s, ba_s = direction[s] >= 0, direction[s] <= 0
        ab_t, ba_t = direction[tseg] >= 0, direction[tseg] <= 0
        if inbound:
            # T → … → node → S: S is entered from u along a→b, from v along b→a
            src_ok = np.array([ab_s, ba_s])
            # T leaves towards u against the drawing, towards v along it
            dst_ok = np.column_stack([ba_t, ab_t])
        else:
            src_ok = np.array([ba_s, ab_s])
            dst_ok = np.column_stack([ab_t, ba_t])
        src_nodes = np.array([net.seg_u[s], net.seg_v[s]], dtype=np.int32)
        src_off = np.array([snap.frac[0], 1.0 - snap.frac[0]]) * length[s]
        # a point on a node is at it whichever way its segment runs
        src_off = np.where(src_ok | (src_off == 0), src_off, np.inf)
        dst_nodes = np.column_stack([net.seg_u[tseg], net.seg_v[tseg]])           # (n, 2)
        dst_off = np.column_stack([snap.frac[1:], 1.0 - snap.frac[1:]]) * length[tseg, None]
        dst_off = np.where(dst_ok | (dst_off == 0), dst_off, np.inf)
        along = np.full(n, np.inf)
        along_t = np.full(n, np.inf)
        reachable = net.labels[dst_nodes[:, 0]] == net.labels[src_nodes[0]]
        # two points on one segment may go straight along it, without touching a node, where
        # its direction allows: towards b when the traveller's end lies before the other's
        same = tseg == s
        if same.any():
            start = np.where(inbound, snap.frac[1:][same], snap.frac[0])
            end = np.where(inbound, snap.frac[0], snap.frac[1:][same])
            ok = np.where(end >= start, ab_s, ba_s)
            along[same] = np.where(ok, np.abs(end - start) * length[s], np.inf)
            along_t[same] = along[same] / speed[s]
        if reachable.any():
            d, t = self._node_distances(net, net.rev if inbound else net.fwd, src_nodes, dst_nodes[reachable])
            src_t = src_off / speed[s]
            dst_t = dst_off[reachable] / speed[tseg[reachable], None]
            total = src_off[:, None, None] + d + dst_off[reachable][None]            # (2, p, 2)
            total_t = src_t[:, None, None] + t + dst_t[None]
            flat = total.transpose(1, 0, 2).reshape(len(d[0]), 4)
            pick = flat.argmin(axis=1)
            best = flat[np.arange(len(pick)), pick]
            best_t = total_t.transpose(1, 0, 2).reshape(len(d[0]), 4)[np.arange(len(pick)), pick]
            sub = np.flatnonzero(reachable)
            better = best < along[sub]
            along[sub[better]] = best[better]
            along_t[sub[better]] = best_t[better]
        walk = snap.walk[0] + snap.walk[1:]
        return walk + along, walk / OFF_ROAD_MPS + along_t

    def _node_distances(self, net, csr, sources, targets):
        """Shortest distances (and the times along those routes) from each source node to each
        target node over ``csr``.

        Returns two arrays of shape ``sources.shape + targets.shape``; one Dijkstra search a
        source, stopped once every target is settled.
        """
        key = "fwd" if csr is net.fwd else "rev"
        work = net.scratch.__dict__.get(key)
        if work is None:
            n, m = net.n_nodes, len(csr[1])
            # the heap holds at most one entry per edge relaxed plus the source; untouched pages of
            # np.empty cost no memory
            work = (np.full(n, np.inf), np.zeros(n), np.zeros(n, dtype=np.uint8), np.empty(n, dtype=np.int32),
                    np.empty(m + 1), np.empty(m + 1, dtype=np.int32))
            setattr(net.scratch, key, work)
        flat = np.ascontiguousarray(targets, dtype=np.int32).ravel()
        src = np.ascontiguousarray(sources, dtype=np.int32).ravel()
        out = np.empty((len(src), len(flat)))
        out_t = np.empty((len(src), len(flat)))
        indptr, indices, data, times = csr
        _search_kernel()(indptr, indices, data, times, src, flat, *work, out, out_t)
        shape = np.shape(sources) + np.shape(targets)
        return out.reshape(shape), out_t.reshape(shape)


def eta_s(distance_m, mode="walk"):
    """Travel time in seconds for a road distance at the mode's mean speed.

    Parameters
    ----------
    distance_m : float or array_like
        Metres; ``inf`` (unreachable) gives ``inf``.
    mode : str, default "walk"
        A key of :data:`SPEEDS_MPS`: ``"walk"`` (1.2 m/s), ``"ebike"`` (4 m/s), ``"car"`` (8 m/s).

    Returns
    -------
    float or numpy.ndarray
        Seconds.

    Raises
    ------
    InvalidInput
        For an unknown mode.
    """
    if mode not in SPEEDS_MPS:
        raise InvalidInput(N_('`mode` was "%(mode)s" but is expected to be in %(SPEEDS_MPS)s.'),
                           fix=N_("Pick one of the listed modes."),
                           params={"mode": mode, "SPEEDS_MPS": ", ".join(map(str, sorted(SPEEDS_MPS)))})
    if np.ndim(distance_m) == 0:
        return float(distance_m) / SPEEDS_MPS[mode]
    return np.asarray(distance_m, dtype=float) / SPEEDS_MPS[mode]


# -- helpers ------------------------------------------------------------------------------------
def _kept_geometries(roads, kinds):
    """The kept lines with their kind ("" where unknown), stored ``oneway`` ("" where absent), layer
    and ``access`` code (see :func:`access_codes`)."""
    frame = roads
    if getattr(frame, "crs", None) is not None and not frame.crs.equals(4326):
        frame = frame.to_crs(4326)
    geom = frame.geometry if hasattr(frame, "geometry") else frame
    columns = getattr(frame, "columns", ())
    keep = np.ones(len(frame), dtype=bool)
    kind = np.full(len(frame), "", dtype=object)
    oneway = np.full(len(frame), "", dtype=object)
    if "kind" in columns:
        kind = frame["kind"].fillna("").astype(str).str.strip().str.lower().to_numpy(dtype=object)
        if kinds is None:
            keep = ~np.isin(kind, list(EXCLUDED_KINDS))
        else:
            keep = np.isin(kind, list(kinds))
    if "oneway" in columns:
        junction = frame["junction"].tolist() if "junction" in columns else [None] * len(frame)
        oneway = np.array([oneway_value(o, j) for o, j in zip(frame["oneway"].tolist(), junction)], dtype=object)
    geoms = np.asarray(geom.values, dtype=object)
    present = keep & ~shapely.is_missing(geoms)
    layer = np.zeros(len(frame), dtype=np.int64)
    if {"layer", "tunnel", "bridge"} & set(columns):
        col = [frame[c].tolist() if c in columns else [None] * len(frame) for c in ("layer", "tunnel", "bridge")]
        layer = np.array([road_layer(*v) for v in zip(*col)], dtype=np.int64)
    access = np.array(access_codes(frame), dtype=object) if len(frame) else np.zeros(0, dtype=object)
    return geoms[present], kind[present], oneway[present], layer[present], access[present]


def _barrier_points(geoms, access, metric):
    """Metric ``(x, y)`` and closed-mode bits of every barrier the kept lines' codes name (each at a
    vertex of its line: the code's index into the line's coordinates)."""
    xy, bits = [], []
    for geom, code in zip(geoms.tolist(), access.tolist()):
        if _BARRIER not in code:
            continue
        coords = shapely.get_coordinates(geom)
        for i, b in _barriers_of(code):
            if i < len(coords):  # an index past the line's end is a code from another drawing: ignored
                xy.append(coords[i])
                bits.append(b)
    if not xy:
        return np.zeros((0, 2)), np.zeros(0, dtype=np.uint8)
    xy = np.asarray(xy, dtype=float)
    x, y = metric.xy(xy[:, 0], xy[:, 1])
    return np.column_stack([x, y]), np.asarray(bits, dtype=np.uint8)


def _barrier_node_bits(stops, vertex_xy, node_of_vertex):
    """The graph nodes the barriers stand on (the node of the vertex at their very position) and
    the modes each closes, a node's barriers' bits combined."""
    xy, bits = stops
    if not len(xy) or not len(vertex_xy):
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.uint8)
    gap, nearest = cKDTree(vertex_xy).query(xy)
    on = gap < 1e-6  # the same projected float: its own vertex
    nodes = node_of_vertex[nearest[on]].astype(np.int64)
    merged = {}
    for node, b in zip(nodes.tolist(), bits[on].tolist()):
        merged[node] = merged.get(node, 0) | b
    return np.fromiter(merged, dtype=np.int64, count=len(merged)), np.fromiter(merged.values(), dtype=np.uint8,
                                                                              count=len(merged))


def _cut_nodes(seg_u, seg_v, blocked, first_free):
    """Each segment end at a ``blocked`` node moved to a node of its own (numbered from
    ``first_free``): routes reach a barrier from every side and pass it on none."""
    if not len(blocked):
        return seg_u, seg_v
    at_u, at_v = np.isin(seg_u, blocked), np.isin(seg_v, blocked)
    n_u, n_v = int(at_u.sum()), int(at_v.sum())
    if not n_u + n_v:
        return seg_u, seg_v
    seg_u, seg_v = seg_u.copy(), seg_v.copy()
    seg_u[at_u] = np.arange(first_free, first_free + n_u, dtype=seg_u.dtype)
    seg_v[at_v] = np.arange(first_free + n_u, first_free + n_u + n_v, dtype=seg_v.dtype)
    return seg_u, seg_v


def _check_mode(mode):
    if mode is not None and mode not in MODES:
        raise InvalidInput(N_('`mode` was "%(mode)s" but is expected to be in %(MODES)s.'),
                           fix=N_("Pick one of the listed modes."),
                           params={"mode": mode, "MODES": ", ".join(map(str, list(MODES)))})


def _check_lonlat(pts):
    bad = ~(np.isfinite(pts).all(axis=1) & (np.abs(pts[:, 0]) <= 180) & (np.abs(pts[:, 1]) <= 90))
    if bad.any():
        lon, lat = pts[np.flatnonzero(bad)[0]]
        raise InvalidInput(N_("Point lon=%(lon)s, lat=%(lat)s is not a WGS84 position."),
                           fix=N_("Give longitude in -180..180 and latitude in -90..90 degrees."),
                           params={"lon": lon, "lat": lat})


def _segments(xy, part):
    """Consecutive vertex pairs within each line: (m, 4) coordinates and the line of each."""
    same = part[:-1] == part[1:]
    i = np.flatnonzero(same)
    return np.column_stack([xy[i], xy[i + 1]]), part[i]


def _split_at_t_junctions(seg_xy, seg_part, tol, line_layer):
    """Insert a vertex where a line's dangling end lies within ``tol`` of another line's segment.

    An end is joined only to a segment of its own ``layer``: joining a street's end to a line
    that merely passes beneath it (a service tunnel under a street, common in OSM city centres)
    would let routes drop into the tunnel.
    """
    if tol <= 0 or not len(seg_xy):
        return seg_xy, seg_part
    first = np.r_[True, seg_part[1:] != seg_part[:-1]]
    last = np.r_[seg_part[1:] != seg_part[:-1], True]
    ends = np.vstack([seg_xy[first, :2], seg_xy[last, 2:]])
    end_part = np.r_[seg_part[first], seg_part[last]]
    tree = shapely.STRtree(shapely.linestrings(seg_xy.reshape(-1, 2, 2)))
    e, s = tree.query(shapely.points(ends), predicate="dwithin", distance=tol)
    keep = (end_part[e] != seg_part[s]) & (line_layer[end_part[e]] == line_layer[seg_part[s]])
    e, s = e[keep], s[keep]
    if not len(e):
        return seg_xy, seg_part
    ax, ay, bx, by = seg_xy[s].T
    dx, dy = bx - ax, by - ay
    ll = dx * dx + dy * dy
    t = np.clip(((ends[e, 0] - ax) * dx + (ends[e, 1] - ay) * dy) / np.where(ll > 0, ll, 1), 0, 1)
    # an end within tol of the segment's own end vertex is joined by vertex clustering instead
    interior = ((np.hypot(ends[e, 0] - ax, ends[e, 1] - ay) > tol)
                & (np.hypot(ends[e, 0] - bx, ends[e, 1] - by) > tol))
    if not interior.any():
        return seg_xy, seg_part
    s, t = s[interior], t[interior]
    cuts = {}
    for si, ti in zip(s.tolist(), t.tolist()):
        cuts.setdefault(si, set()).add(ti)
    out, out_part = [], []
    prev = 0
    for si in sorted(cuts):
        out.append(seg_xy[prev:si])
        out_part.append(seg_part[prev:si])
        a, b = seg_xy[si, :2], seg_xy[si, 2:]
        pts = [a] + [a + ti * (b - a) for ti in sorted(cuts[si])] + [b]
        out.append(np.array([np.r_[p, q] for p, q in zip(pts[:-1], pts[1:])]))
        out_part.append(np.full(len(pts) - 1, seg_part[si]))
        prev = si + 1
    out.append(seg_xy[prev:])
    out_part.append(seg_part[prev:])
    return np.vstack(out), np.concatenate(out_part)


def _cluster_vertices(xy, tol, layer=None):
    """Node id per vertex: vertices at one position share one whatever their layer (OSM's shared
    nodes: a bridge meets its street); vertices of one ``layer`` within ``tol`` of each other
    (transitively) too, but not a street's and a tunnel's that merely lie one above the other."""
    uniq, inverse = np.unique(xy, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    if tol > 0 and len(uniq) > 1:
        if layer is None or not np.any(layer):
            owner, pts = np.arange(len(uniq)), uniq
        else:
            # one point per (position, layer), the layers set 10,000 km apart so no pair spans two
            rows = np.unique(np.column_stack([inverse, layer]), axis=0)
            owner = rows[:, 0]
            pts = uniq[owner] + np.column_stack([rows[:, 1] * 1e7, np.zeros(len(rows))])
        pairs = owner[cKDTree(pts).query_pairs(tol, output_type="ndarray")]
        pairs = pairs[pairs[:, 0] != pairs[:, 1]] if len(pairs) else pairs
        if len(pairs):
            n = len(uniq)
            link = csr_matrix((np.ones(len(pairs), dtype=np.int8), (pairs[:, 0], pairs[:, 1])),
                              shape=(n, n))
            n_nodes, cluster = connected_components(link, directed=False)
            return cluster[inverse], int(n_nodes)
    return inverse, len(uniq)


def _directed_csr(u, v, length, speed, direction, n):
    """The adjacency ``(indptr, indices, lengths, seconds)``: a → b where ``direction`` >= 0, b → a
    where it is <= 0. Parallel edges keep the shortest length (of equal ones the fastest)."""
    fwd, bwd = direction >= 0, direction <= 0
    a = np.r_[u[fwd], v[bwd]].astype(np.int64)
    b = np.r_[v[fwd], u[bwd]].astype(np.int64)
    w = np.r_[length[fwd], length[bwd]]
    t = w / np.r_[speed[fwd], speed[bwd]]
    order = np.lexsort((t, w, b, a))  # of two as long, the faster (a street drawn twice, two classes)
    a, b, w, t = a[order], b[order], w[order], t[order]
    first = np.r_[True, (a[1:] != a[:-1]) | (b[1:] != b[:-1])] if len(a) else np.zeros(0, dtype=bool)
    a, b, w, t = a[first], b[first], w[first], t[first]
    # ends this close were clustered; a zero weight would also read as "no edge" to scipy
    w = np.maximum(w, 1e-9)
    indptr = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(np.bincount(a, minlength=n), out=indptr[1:])
    return indptr, b.astype(np.int32), w, t


def _weak_labels(csr, n):
    indptr, indices, data, _ = csr
    _, labels = connected_components(csr_matrix((data, indices, indptr), shape=(n, n)), directed=True,
                                     connection="weak")
    return labels


# -- nearest segment: a grid of cells over flat arrays ------------------------------------------

def _segment_grid(seg_xy):
    """Cells of a uniform grid over the segments (about two segments a cell) and the segments
    whose bounding box touches each: ``(cell pointers, segment ids)`` (CSR, ids ascending within a
    cell) and the frame ``(x0, y0, cell size, nx, ny)``."""
    m = len(seg_xy)
    if not m:
        return (np.zeros(2, dtype=np.int64), np.zeros(0, dtype=np.int32)), (0.0, 0.0, 1.0, 1, 1)
    lo_x = np.minimum(seg_xy[:, 0], seg_xy[:, 2])
    hi_x = np.maximum(seg_xy[:, 0], seg_xy[:, 2])
    lo_y = np.minimum(seg_xy[:, 1], seg_xy[:, 3])
    hi_y = np.maximum(seg_xy[:, 1], seg_xy[:, 3])
    x0, y0 = float(lo_x.min()), float(lo_y.min())
    w, h = float(hi_x.max()) - x0, float(hi_y.max()) - y0
    cs = max(math.sqrt(max(w * h, 1.0) / m) * 1.5, 1.0)
    nx, ny = int(w // cs) + 1, int(h // cs) + 1
    while nx * ny > 4 * m + 64:  # long, thin networks (one road along a coast): few cells, not a 1 m mesh
        cs *= 2
        nx, ny = int(w // cs) + 1, int(h // cs) + 1
    i0 = np.clip(((lo_x - x0) // cs).astype(np.int64), 0, nx - 1)
    i1 = np.clip(((hi_x - x0) // cs).astype(np.int64), 0, nx - 1)
    j0 = np.clip(((lo_y - y0) // cs).astype(np.int64), 0, ny - 1)
    j1 = np.clip(((hi_y - y0) // cs).astype(np.int64), 0, ny - 1)
    span = i1 - i0 + 1
    counts = span * (j1 - j0 + 1)
    seg = np.repeat(np.arange(m, dtype=np.int32), counts)
    k = np.arange(int(counts.sum()), dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
    span_r = np.repeat(span, counts)
    cell = (np.repeat(j0, counts) + k // span_r) * nx + np.repeat(i0, counts) + k % span_r
    order = np.argsort(cell, kind="stable")
    ptr = np.zeros(nx * ny + 1, dtype=np.int64)
    np.cumsum(np.bincount(cell, minlength=nx * ny), out=ptr[1:])
    return (ptr, seg[order]), (x0, y0, cs, nx, ny)


def _nearest_kernel():
    return compiled(_nearest_in_grid)[0]


def _nearest_in_grid(seg_xy, ptr, segs, x0, y0, cs, nx, ny, px, py, out):
    """``out[k]`` = the segment nearest to ``(px[k], py[k])`` (compiled by numba); ties → lowest id.

    Rings of cells around the point's cell are read outwards until the nearest segment found is
    closer than any cell not yet read can be (a segment is listed in every cell its box touches).
    The distance is the one ``RoadGraph._snap`` measures: to the clamped projection.
    """
    eps = 1e-9 * cs
    for k in range(len(px)):
        x = px[k]
        y = py[k]
        ci = int(math.floor((x - x0) / cs))
        cj = int(math.floor((y - y0) / cs))
        ci = min(max(ci, 0), nx - 1)
        cj = min(max(cj, 0), ny - 1)
        best = np.inf
        best_s = -1
        r = 0
        while True:
            lo_i, hi_i, lo_j, hi_j = ci - r, ci + r, cj - r, cj + r
            for j in range(max(lo_j, 0), min(hi_j, ny - 1) + 1):
                edge_row = j == lo_j or j == hi_j
                for i in range(max(lo_i, 0), min(hi_i, nx - 1) + 1):
                    if not edge_row and i != lo_i and i != hi_i:
                        continue
                    c = j * nx + i
                    for e in range(ptr[c], ptr[c + 1]):
                        s = segs[e]
                        ax = seg_xy[s, 0]
                        ay = seg_xy[s, 1]
                        dx = seg_xy[s, 2] - ax
                        dy = seg_xy[s, 3] - ay
                        ll = dx * dx + dy * dy
                        t = ((x - ax) * dx + (y - ay) * dy) / ll if ll > 0 else 0.0
                        t = min(max(t, 0.0), 1.0)
                        d = math.hypot(x - (ax + t * dx), y - (ay + t * dy))
                        if d < best or (d == best and s < best_s):
                            best = d
                            best_s = s
            bound = np.inf
            if hi_i < nx - 1:
                bound = min(bound, max(0.0, x0 + (hi_i + 1) * cs - x))
            if lo_i > 0:
                bound = min(bound, max(0.0, x - (x0 + lo_i * cs)))
            if hi_j < ny - 1:
                bound = min(bound, max(0.0, y0 + (hi_j + 1) * cs - y))
            if lo_j > 0:
                bound = min(bound, max(0.0, y - (y0 + lo_j * cs)))
            if bound == np.inf or best < bound - eps:
                break
            r += 1
        out[k] = best_s


# -- compiled search ----------------------------------------------------------------------------

def _search_kernel():
    return compiled(_dijkstra_to_targets)[0]


def _dijkstra_to_targets(indptr, indices, weights, times, sources, targets, dist, tdist, mark, touched, heap_d, heap_n,
                         out, out_t):
    """``out[i, j]`` = shortest distance from ``sources[i]`` to ``targets[j]`` (compiled by numba).

    Dijkstra with a binary heap and lazy deletion, one search a source, stopped when every target
    is settled or nothing is left to settle (unreachable targets stay ``inf``). ``dist`` (all
    ``inf``), ``tdist``, ``mark`` (all 0), ``touched``, ``heap_d`` and ``heap_n`` are working arrays
    sized for the graph; ``dist`` and ``mark`` are handed back as they came. ``out_t[i, j]`` is
    the sum of ``times`` along the shortest-distance route found. A node's distance is its
    best predecessor's plus the edge weight, the same sums in the same order as scipy's Dijkstra,
    so the results are identical to it.
    """
    inf = np.inf
    for i in range(len(sources)):
        remaining = 0
        for t in targets:
            if mark[t] == 0:
                mark[t] = 1
                remaining += 1
        s = sources[i]
        dist[s] = 0.0
        tdist[s] = 0.0
        touched[0] = s
        n_touched = 1
        heap_d[0] = 0.0
        heap_n[0] = s
        size = 1
        while size > 0 and remaining > 0:
            d = heap_d[0]
            u = heap_n[0]
            # pop: move the last entry to the root and sift it down
            size -= 1
            if size > 0:
                ld, ln = heap_d[size], heap_n[size]
                k = 0
                while True:
                    c = 2 * k + 1
                    if c >= size:
                        break
                    if c + 1 < size and heap_d[c + 1] < heap_d[c]:
                        c += 1
                    if heap_d[c] >= ld:
                        break
                    heap_d[k] = heap_d[c]
                    heap_n[k] = heap_n[c]
                    k = c
                heap_d[k] = ld
                heap_n[k] = ln
            if d > dist[u]:
                continue  # a stale entry: u was reached more cheaply since
            if mark[u] == 1:
                mark[u] = 2
                remaining -= 1
            for e in range(indptr[u], indptr[u + 1]):
                v = indices[e]
                nd = d + weights[e]
                if nd < dist[v]:
                    if dist[v] == inf:
                        touched[n_touched] = v
                        n_touched += 1
                    dist[v] = nd
                    tdist[v] = tdist[u] + times[e]
                    # push: append and sift up
                    k = size
                    size += 1
                    while k > 0:
                        p = (k - 1) // 2
                        if heap_d[p] <= nd:
                            break
                        heap_d[k] = heap_d[p]
                        heap_n[k] = heap_n[p]
                        k = p
                    heap_d[k] = nd
                    heap_n[k] = v
        for j in range(len(targets)):
            out[i, j] = dist[targets[j]]
            out_t[i, j] = tdist[targets[j]] if dist[targets[j]] < inf else inf
        for j in range(n_touched):
            dist[touched[j]] = inf
        for t in targets:
            mark[t] = 0

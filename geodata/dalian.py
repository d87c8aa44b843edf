"""Build the fictional Dalian demo (five real communities) as frames, deterministically from a seed."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import geopandas
import numpy as np
import pandas as pd
import pyproj
import shapely

from gridmap.geo.codes import grid_code, grid_name, number_west_east_north_south

__all__ = ["build", "load_config", "CONFIG_PATH", "COLUMNS"]

CONFIG_PATH = Path(__file__).with_name("dalian_communities.json")
WGS84 = "EPSG:4326"

# The importer relies on these names and this order; a test pins them.
COLUMNS = {
    "communities": ["code", "name", "street_code", "street_name", "district_code", "district_name",
                    "service_centre", "service_address", "service_phone", "geometry"],
    "grids": ["community_code", "seq", "code", "name", "geometry"],
    "roads": ["name", "kind", "geometry"],
    "courtyards": ["community_code", "name", "geometry"],
    "buildings": ["community_code", "address", "name", "households", "floors", "courtyard", "geometry"],
    "households": ["building_address", "unit", "size"],
    "residents": ["building_address", "unit", "name", "phone", "vulnerable"],
    "party_orgs": ["key", "kind", "name", "parent_key", "community_code", "grid_code", "building_address"],
    "party_members": ["name", "phone", "building_address", "in_service", "employer", "org_key", "geometry"],
    "workers": ["name", "phone", "community_code", "grids", "geometry"],
    "volunteers": ["name", "phone", "community_code", "skills", "available", "geometry"],
    "responders": ["name", "kind", "phone", "skills", "available", "geometry"],
    "cameras": ["name", "channel", "courtyard", "community_code", "bearing", "fov", "range_m", "geometry"],
}

# --- rules as data -------------------------------------------------------------------------

# Residential building types: floors, units (staircases), flats per floor per unit, footprint (m).
BUILDING_TYPES = {
    "midrise": {"floors": [5, 6, 7], "units": [2, 3, 4], "per_floor": [2], "length": (40, 52), "depth": (12, 14)},
    "highrise": {"floors": [11, 14, 18], "units": [1, 2], "per_floor": [2, 3], "length": (30, 44), "depth": (15, 17)},
}
MIN_HOUSEHOLDS, MAX_HOUSEHOLDS = 20, 120

SLOT_LENGTH, SLOT_DEPTH = 52.0, 17.0  # every footprint fits a slot
SLOT_GAP_X, SLOT_GAP_Y = 12.0, 20.0  # gables apart, sunlight spacing between rows
BUILDING_SETBACK_M = 10.0  # from the street edge of a grid
COURTYARD_WALL_M = 6.0  # a courtyard is its grid minus this strip along the streets

HOUSEHOLD_SIZE_P = [0.18, 0.32, 0.28, 0.15, 0.07]  # 1..5 persons
SECOND_RESIDENT_P = 0.45  # a household of 2+ lists a second resident this often
VULNERABLE_P = {"alone": 0.12, "other": 0.015}  # elderly living alone etc.; about 3 % overall
PARTY_OUTSIDE_SHARE = 0.05
PARTY_IN_SERVICE_P = 0.40
VOLUNTEER_AVAILABLE_P = 0.75
RESPONDER_AVAILABLE_P = 0.8
# Camera roles in an inward-looking courtyard: (field of view range in degrees, reach range in metres).
CAMERA_VIEWS = {"long": ((55, 75), (50, 60)), "short": ((40, 60), (20, 30)),
                "corner": ((90, 110), (55, 60)), "gate": ((70, 90), (35, 45))}
TWO_GRID_WORKER_P = 0.25

VOLUNTEER_SKILLS = ["理发", "磨刀", "维修", "义诊", "家电维修", "法律咨询", "心理疏导", "助老", "代购", "陪诊", "课业辅导", "文艺"]
EMPLOYERS = ["大连港集团", "大连市第二人民医院", "大连理工大学", "大连地铁运营公司", "金普新区税务局", "大连银行",
             "国网大连供电公司", "大连市实验小学", "大连重工集团", "中国移动大连分公司", "大连海事大学", "大连市公安局",
             "大连市自来水集团", "大连万达商业管理公司", "辽宁师范大学", "大连船舶重工"]

# Where responders of each kind sit relative to a community, how many, and what they do.
RESPONDERS = {
    "police": {"count": 3, "base": "police_station", "skills": ["治安巡逻", "案件受理", "户籍"]},
    "auxiliary_police": {"count": 3, "base": "police_station", "skills": ["巡逻", "交通疏导", "反诈宣传"]},
    "mediator": {"count": 2, "base": "service_centre", "skills": ["邻里纠纷调解", "家庭矛盾调解", "物业纠纷调解"]},
    "property_management": {"count": 3, "base": "courtyard_gate", "skills": ["水电维修", "开锁", "保洁", "电梯报修"]},
    "utility": {"count": 2, "base": "utility_depot", "skills": ["供电抢修", "供水抢修", "燃气抢修", "供暖维修"]},
    "medical": {"count": 2, "base": "clinic", "skills": ["急救", "慢病随访", "上门护理"]},
    "legal": {"count": 1, "base": "service_centre", "skills": ["法律咨询", "合同审查", "法律援助"]},
    "fire": {"count": 2, "base": "fire_station", "skills": ["灭火", "应急救援", "消防检查"]},
}
# Distance of off-site bases beyond the community's half-diagonal (metres, uniform range).
BASE_DISTANCE_M = {"police_station": (150, 600), "utility_depot": (300, 900), "fire_station": (900, 1800)}
OUTSIDE_MEMBER_DISTANCE_M = (600, 2500)

SURNAMES = list("王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕苏卢蒋蔡贾丁魏薛叶阎余潘杜戴夏钟汪田任姜范方石姚谭廖邹熊金陆郝孔白崔康毛邱秦江史顾侯邵孟龙万段雷钱汤尹黎易常武乔贺赖龚文")
GIVEN_CHARS = list("伟强磊军洋勇杰涛明超刚平辉鹏华飞鑫波斌宇浩凯健俊帆旭宁龙林欢阳建国志海文博晨宏亮成东峰"
                   "芳娜敏静丽艳娟霞燕玲桂英秀兰萍红梅琳雪婷慧颖洁丹倩淑珍凤莉佳欣怡悦晶玉春秋德福喜")
MOBILE_PREFIXES = ["130", "131", "132", "133", "135", "136", "137", "138", "139",
                   "150", "151", "152", "155", "156", "157", "158", "159",
                   "180", "181", "182", "183", "185", "186", "187", "188", "189"]

ALLOWED_SIDES = ("north", "south", "east", "west")


def load_config(path: Path | str = CONFIG_PATH) -> dict:
    """Read the committed community inputs (real names and codes, fictional layout)."""
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def build(seed: int = 2026) -> dict[str, pd.DataFrame]:
    """Generate the Dalian demo: five real communities with fictional grids, buildings and people.

    Pure: reads only ``dalian_communities.json`` next to this module, writes nothing.
    The same seed gives identical frames; all randomness comes from
    ``numpy.random.default_rng(seed)``.

    Parameters
    ----------
    seed : int
        Seed of the random generator.

    Returns
    -------
    dict of str to pandas.DataFrame or geopandas.GeoDataFrame
        Frames named and shaped as in :data:`COLUMNS`; geometry in WGS84 (EPSG:4326).
    """
    config = load_config()
    rng = np.random.default_rng(seed)
    people_rng, *community_rngs = rng.spawn(1 + len(config["communities"]))
    built = [_build_community(cfg, config["city"], crng) for cfg, crng in zip(config["communities"], community_rngs)]
    frames = {name: [rec for b in built for rec in b.rows[name]] for name in COLUMNS}
    _fill_people(frames, people_rng)
    return {name: _finish(name, frames[name]) for name in COLUMNS}


# --- one community ---------------------------------------------------------------------------


@dataclass
class _Lattice:
    """A jittered street lattice in lattice metres (x east, y north, before rotation)."""

    nodes: np.ndarray  # (R+1, C+1, 2)
    h_pts: dict  # (i, j) -> (k, 2) points strictly between nodes[i, j] and nodes[i, j+1]
    v_pts: dict  # (i, j) -> (k, 2) points strictly between nodes[i, j] and nodes[i+1, j]
    mask: np.ndarray  # (R, C) bool: the cell is one of the community's grids


@dataclass
class _Built:
    rows: dict = field(default_factory=lambda: {name: [] for name in COLUMNS})


def _build_community(cfg: dict, city: dict, rng: np.random.Generator) -> _Built:
    _check_config(cfg)
    out = _Built()
    theta = math.radians(cfg["rotation_deg"] + rng.uniform(-0.5, 0.5))
    to_wgs = _to_wgs84(cfg["centre"], theta)
    lattice = _make_lattice(cfg, rng)
    cells = _cells(lattice)  # (r, c) -> Polygon, row-major
    keys = list(cells)
    polys = np.array([cells[k] for k in keys], dtype=object)

    seq = number_west_east_north_south(_rotate(polys, theta))
    if not np.array_equal(seq, np.arange(1, len(keys) + 1)):
        raise ValueError(
            f"Grids of {cfg['name']} do not number row by row ({seq.tolist()}); "
            "reduce rotation_deg or the natural_edge amplitude in dalian_communities.json."
        )
    grid_of_seq = {s: keys[s - 1] for s in range(1, len(keys) + 1)}
    code = cfg["code"]
    grid_codes = {k: grid_code(code, i + 1) for i, k in enumerate(keys)}
    community = shapely.union_all(polys)
    if community.geom_type != "Polygon" or len(community.interiors):
        raise ValueError(f"The layout of {cfg['name']} must make one polygon without holes: {cfg['layout']}.")

    rows = out.rows
    for i, k in enumerate(keys):
        rows["grids"].append({"community_code": code, "seq": i + 1, "code": grid_codes[k],
                              "name": grid_name(cfg["name"], grid_codes[k]), "geometry": cells[k]})
    rows["roads"].extend(_roads(cfg, lattice))

    courtyards, courtyard_keys = {}, {}
    for cy in cfg["courtyards"]:
        courtyard_keys[cy["name"]] = grid_of_seq[cy["grid"]]
        poly = cells[grid_of_seq[cy["grid"]]].buffer(-COURTYARD_WALL_M, join_style="mitre")
        courtyards[cy["name"]] = poly
        rows["courtyards"].append({"community_code": code, "name": cy["name"], "geometry": poly})

    gates = {k: _gate(cfg, lattice, k, rng) for k in keys}
    buildings = _place_buildings(cfg, cells, keys, grid_of_seq, courtyards, gates, rng)
    _address_buildings(cfg, city, buildings, gates, rng)
    service = next(b for b in buildings if b["kind"] == "service_centre")
    for b in buildings:
        rows["buildings"].append({"community_code": code, "address": b["address"], "name": b["name"],
                                  "households": b["households"], "floors": b["floors"],
                                  "courtyard": b["courtyard"], "geometry": b["geometry"]})
    rows["communities"].append({
        "code": code, "name": cfg["name"], "street_code": cfg["street_code"], "street_name": cfg["street_name"],
        "district_code": cfg["district_code"], "district_name": cfg["district_name"],
        "service_centre": cfg["service_centre"]["name"], "service_address": service["address"],
        "service_phone": cfg["service_centre"]["phone"], "geometry": community,
    })

    residents = _households_and_residents(buildings, rows, rng)
    _party(cfg, buildings, residents, grid_codes, community, rows, rng)
    _workers(cfg, keys, cells, grid_codes, rows, rng)
    _volunteers(cfg, buildings, residents, rows, rng)
    _responders(cfg, community, buildings, courtyards, courtyard_keys, gates, rows, rng)
    _cameras(cfg, buildings, courtyards, courtyard_keys, gates, rows, rng)

    for rec in rows["cameras"]:  # turning the lattice by theta turns every view the other way
        rec["bearing"] = round((rec.pop("_bearing_lattice") - math.degrees(theta)) % 360.0, 2) % 360.0
    for records in rows.values():
        for rec in records:
            if "geometry" in rec:
                rec["geometry"] = to_wgs(rec["geometry"])
    return out


def _check_config(cfg: dict) -> None:
    layout = cfg["layout"]
    n_cells = sum(row.count("X") for row in layout)
    if n_cells != cfg["grids"]:
        raise ValueError(f"{cfg['name']}: layout has {n_cells} grids but 'grids' is {cfg['grids']}; "
                         "make the X count of 'layout' equal 'grids'.")
    if len({len(row) for row in layout}) != 1:
        raise ValueError(f"{cfg['name']}: every row of 'layout' must have the same length.")
    edge = cfg.get("natural_edge")
    if edge and edge["side"] not in ALLOWED_SIDES:
        raise ValueError(f"{cfg['name']}: natural_edge side was {edge['side']!r} but is expected in {ALLOWED_SIDES}.")
    streets = cfg["streets"]
    if len(streets["rows"]) != len(layout) + 1 or len(streets["cols"]) != len(layout[0]) + 1:
        raise ValueError(f"{cfg['name']}: give one street name (or null) per lattice line: "
                         f"{len(layout) + 1} rows and {len(layout[0]) + 1} cols.")


def _to_wgs84(centre, theta: float):
    """Return a function mapping lattice-metre geometries to WGS84 (rotate, then inverse local TM)."""
    lon0, lat0 = centre
    local = pyproj.CRS.from_proj4(f"+proj=tmerc +lat_0={lat0} +lon_0={lon0} +k=1 +x_0=0 +y_0=0 +ellps=WGS84 +units=m +no_defs")
    tr = pyproj.Transformer.from_crs(local, WGS84, always_xy=True)
    c, s = math.cos(theta), math.sin(theta)

    def xy_to_lonlat(xy):
        x, y = xy[:, 0], xy[:, 1]
        lon, lat = tr.transform(x * c - y * s, x * s + y * c)
        return np.column_stack([lon, lat])

    return lambda geom: shapely.transform(geom, xy_to_lonlat)


def _rotate(geoms, theta: float):
    c, s = math.cos(theta), math.sin(theta)
    return shapely.transform(geoms, lambda xy: np.column_stack([xy[:, 0] * c - xy[:, 1] * s, xy[:, 0] * s + xy[:, 1] * c]))


# --- streets and grids -----------------------------------------------------------------------


def _make_lattice(cfg: dict, rng: np.random.Generator) -> _Lattice:
    w, h = cfg["block_m"]
    mask = np.array([[ch == "X" for ch in row] for row in cfg["layout"]])
    n_rows, n_cols = mask.shape
    xs = np.arange(n_cols + 1) * w - n_cols * w / 2
    ys = n_rows * h / 2 - np.arange(n_rows + 1) * h
    nodes = np.empty((n_rows + 1, n_cols + 1, 2))
    nodes[..., 0] = xs[None, :] + rng.uniform(-0.06, 0.06, (n_rows + 1, n_cols + 1)) * w
    nodes[..., 1] = ys[:, None] + rng.uniform(-0.06, 0.06, (n_rows + 1, n_cols + 1)) * h

    edge = cfg.get("natural_edge")
    wave = None
    if edge:
        amp, length = edge["amplitude_m"], edge["wavelength_m"]
        ph1, ph2 = rng.uniform(0, 2 * math.pi, 2)

        def wave(s):
            return amp * (0.75 * np.sin(2 * np.pi * s / length + ph1) + 0.25 * np.sin(2 * np.pi * s / (0.41 * length) + ph2))

        line = {"north": (0, None), "south": (n_rows, None), "west": (None, 0), "east": (None, n_cols)}[edge["side"]]
        if line[0] is not None:
            base = nodes[line[0], :, 1].copy()
            nodes[line[0], :, 1] += wave(nodes[line[0], :, 0])
        else:
            base = nodes[:, line[1], 0].copy()
            nodes[:, line[1], 0] += wave(nodes[:, line[1], 1])

    h_pts, v_pts = {}, {}
    for i in range(n_rows + 1):
        for j in range(n_cols):
            a, b = nodes[i, j], nodes[i, j + 1]
            if edge and edge["side"] in ("north", "south") and i == line[0]:
                h_pts[i, j] = _wavy(a, b, base[j], base[j + 1], wave, along=0)
            else:
                h_pts[i, j] = _kink(a, b, rng)
    for i in range(n_rows):
        for j in range(n_cols + 1):
            a, b = nodes[i, j], nodes[i + 1, j]
            if edge and edge["side"] in ("west", "east") and j == line[1]:
                v_pts[i, j] = _wavy(a, b, base[i], base[i + 1], wave, along=1)
            else:  # straight: a bend halfway up a grid would pull its point_on_surface off-centre
                v_pts[i, j] = np.empty((0, 2))
    return _Lattice(nodes=nodes, h_pts=h_pts, v_pts=v_pts, mask=mask)


def _kink(a, b, rng):
    """Half the east-west streets bend slightly once between two crossings."""
    if rng.random() < 0.5:
        return np.empty((0, 2))
    t = rng.uniform(0.35, 0.65)
    d = b - a
    normal = np.array([-d[1], d[0]]) / np.hypot(*d)
    return (a + t * d + rng.uniform(-5, 5) * normal)[None, :]


def _wavy(a, b, base_a, base_b, wave, along):
    """Points every ~15 m along a natural edge (hill foot, river bank) between two crossings."""
    across = 1 - along
    s0, s1 = a[along], b[along]
    n = max(int(abs(s1 - s0) // 15), 1)
    s = np.linspace(s0, s1, n + 1)[1:-1]
    pts = np.empty((len(s), 2))
    pts[:, along] = s
    pts[:, across] = base_a + (s - s0) / (s1 - s0) * (base_b - base_a) + wave(s)
    return pts


def _cells(lat: _Lattice) -> dict:
    """Grid polygons from the lattice; neighbours share exactly the same vertices along their street."""
    n = lat.nodes
    cells = {}
    for r, c in zip(*np.nonzero(lat.mask)):
        r, c = int(r), int(c)
        ring = np.vstack([
            n[r, c][None], lat.h_pts[r, c], n[r, c + 1][None], lat.v_pts[r, c + 1], n[r + 1, c + 1][None],
            lat.h_pts[r + 1, c][::-1], n[r + 1, c][None], lat.v_pts[r, c][::-1],
        ])
        poly = shapely.Polygon(ring[::-1])  # counter-clockwise exterior
        if not poly.is_valid:
            raise ValueError(f"Grid cell {(r, c)} is invalid; lower the jitter or natural_edge amplitude.")
        cells[r, c] = poly
    return cells


def _line_runs(flags):
    """Runs of consecutive True as (start, stop) index pairs."""
    runs, start = [], None
    for k, f in enumerate(list(flags) + [False]):
        if f and start is None:
            start = k
        elif not f and start is not None:
            runs.append((start, k))
            start = None
    return runs


def _roads(cfg: dict, lat: _Lattice) -> list[dict]:
    mask = lat.mask
    n_rows, n_cols = mask.shape
    streets = cfg["streets"]
    padded = np.pad(mask, 1)
    out = []

    def kind(name):
        return "primary" if name in streets["primary"] else "secondary" if name in streets["secondary"] else "residential"

    for i, name in enumerate(streets["rows"]):
        if name is None:
            continue
        used = padded[i, 1:-1] | padded[i + 1, 1:-1]  # a cell above or below the edge
        for j0, j1 in _line_runs(used):
            pts = [lat.nodes[i, j0][None]]
            for j in range(j0, j1):
                pts += [lat.h_pts[i, j], lat.nodes[i, j + 1][None]]
            out.append({"name": name, "kind": kind(name), "geometry": shapely.LineString(_extend(np.vstack(pts)))})
    for j, name in enumerate(streets["cols"]):
        if name is None:
            continue
        used = padded[1:-1, j] | padded[1:-1, j + 1]
        for i0, i1 in _line_runs(used):
            pts = [lat.nodes[i0, j][None]]
            for i in range(i0, i1):
                pts += [lat.v_pts[i, j], lat.nodes[i + 1, j][None]]
            out.append({"name": name, "kind": kind(name), "geometry": shapely.LineString(_extend(np.vstack(pts)))})
    return out


def _extend(pts, metres=35.0):
    """Let a street run on a little past the community's last crossing."""
    def unit(v):
        return v / np.hypot(*v)
    head = pts[0] + unit(pts[0] - pts[1]) * metres
    tail = pts[-1] + unit(pts[-1] - pts[-2]) * metres
    return np.vstack([head[None], pts, tail[None]])


def _gate(cfg: dict, lat: _Lattice, key, rng) -> dict:
    """Pick the street a grid's compound opens on (its address road) and where the gate is."""
    r, c = key
    n = lat.nodes
    streets = cfg["streets"]
    # side -> (street name, edge end points, parity of house numbers on that side, axis along road)
    sides = [
        ("south", streets["rows"][r + 1], n[r + 1, c], n[r + 1, c + 1], 1, 0),
        ("north", streets["rows"][r], n[r, c], n[r, c + 1], 0, 0),
        ("west", streets["cols"][c], n[r, c], n[r + 1, c], 0, 1),
        ("east", streets["cols"][c + 1], n[r, c + 1], n[r + 1, c + 1], 1, 1),
    ]
    named = [s for s in sides if s[1] is not None]
    weights = np.array([4.0 if s[0] == "south" else 2.0 if s[0] == "north" else 1.0 for s in named])
    side = named[rng.choice(len(named), p=weights / weights.sum())]
    return {"side": side[0], "road": side[1], "edge_mid": (side[2] + side[3]) / 2, "odd": side[4] == 1,
            "axis": side[5]}


# --- buildings -------------------------------------------------------------------------------


def _slots(cell):
    """Disjoint building slots (lattice-aligned boxes) inside the grid's setback, as many as fit."""
    inset = cell.buffer(-BUILDING_SETBACK_M, join_style="mitre")
    shapely.prepare(inset)
    minx, miny, maxx, maxy = inset.bounds
    px, py = SLOT_LENGTH + SLOT_GAP_X, SLOT_DEPTH + SLOT_GAP_Y
    best = np.empty(0, dtype=object)
    for fx in np.linspace(0, 1, 6, endpoint=False):  # slide the pattern; keep the fullest
        for fy in np.linspace(0, 1, 4, endpoint=False):
            xs = np.arange(minx + fx * px, maxx - SLOT_LENGTH + 1e-9, px)
            ys = np.arange(maxy - SLOT_DEPTH - fy * py, miny - 1e-9, -py)
            gx, gy = (a.ravel() for a in np.meshgrid(xs, ys))  # rows north -> south, west -> east
            boxes = shapely.box(gx, gy, gx + SLOT_LENGTH, gy + SLOT_DEPTH)
            boxes = boxes[shapely.contains_properly(inset, boxes)]
            if len(boxes) > len(best):
                best = boxes
    return best


def _footprint(slot, length, depth, rng):
    minx, miny, maxx, maxy = slot.bounds
    x = minx + rng.uniform(0, SLOT_LENGTH - length)
    y = miny + rng.uniform(0, SLOT_DEPTH - depth)
    return shapely.box(x, y, x + length, y + depth)


def _residential(cfg, rng) -> dict:
    kind = "highrise" if rng.random() < cfg["highrise_share"] else "midrise"
    t = BUILDING_TYPES[kind]
    floors, units, per_floor = int(rng.choice(t["floors"])), int(rng.choice(t["units"])), int(rng.choice(t["per_floor"]))
    while floors * units * per_floor > MAX_HOUSEHOLDS:
        units -= 1
    capacity = floors * units * per_floor
    households = max(MIN_HOUSEHOLDS, capacity - int(rng.integers(0, max(1, capacity // 10))))
    return {"kind": "residential", "floors": floors, "units": units, "per_floor": per_floor,
            "households": min(households, capacity), "length": round(float(rng.uniform(*t["length"])), 1),
            "depth": round(float(rng.uniform(*t["depth"])), 1), "name": ""}


def _place_buildings(cfg, cells, keys, grid_of_seq, courtyards, gates, rng) -> list[dict]:
    slots = {k: list(rng.permutation(_slots(cells[k]))) for k in keys}
    buildings = []

    def take(key, spec):
        if not slots[key]:
            raise ValueError(f"{cfg['name']}: grid {keys.index(key) + 1} has no room left for another building; "
                             "lower 'households' or enlarge 'block_m'.")
        slot = slots[key].pop(0)
        geom = _footprint(slot, spec["length"], spec["depth"], rng)
        court = next((name for name, poly in courtyards.items() if poly.contains_properly(geom)), "")
        spec.update(grid=key, geometry=geom, courtyard=court)
        buildings.append(spec)
        return spec

    sc = cfg["service_centre"]
    take(grid_of_seq[sc["grid"]], {"kind": "service_centre", "name": sc["name"], "floors": sc["floors"],
                                   "households": 0, "length": 40.0, "depth": 16.0})
    for f in cfg["facilities"]:
        take(grid_of_seq[f["grid"]], {"kind": f["kind"], "name": f["name"], "floors": f["floors"],
                                      "households": 0, "length": 50.0, "depth": 16.0})

    fixed = {grid_of_seq[cy["grid"]]: cy["buildings"] for cy in cfg["courtyards"] if "buildings" in cy}
    fixed_total = 0
    for key, count in fixed.items():
        for _ in range(count):
            fixed_total += take(key, _residential(cfg, rng))["households"]

    busy = {grid_of_seq[cfg["service_centre"]["grid"]]} | {grid_of_seq[f["grid"]] for f in cfg["facilities"]}
    free = [k for k in keys if k not in fixed]
    weights = rng.uniform(0.75, 1.25, len(free)) * np.array([0.6 if k in busy else 1.0 for k in free])
    targets = _apportion(cfg["households"] - fixed_total, weights)
    per_grid = {key: [] for key in free}
    spill = 0  # households a full grid could not take move on to the next grid
    for key, target in zip(free, targets):
        target += spill
        while _total(per_grid[key]) < target and slots[key]:
            per_grid[key].append(take(key, _residential(cfg, rng)))
        spill = max(0, target - _total(per_grid[key]))
        _trim(per_grid[key], _total(per_grid[key]) - target)
    for key in free:  # a second round for what no grid could take on its turn
        while spill > 0 and slots[key]:
            per_grid[key].append(take(key, _residential(cfg, rng)))
            spill -= per_grid[key][-1]["households"]
        _trim(per_grid[key], -spill)
        spill = max(spill, 0)
    if spill:
        raise ValueError(f"{cfg['name']}: {spill} households did not fit in any grid; "
                         "lower 'households', raise 'highrise_share' or enlarge 'block_m'.")
    return buildings


def _total(buildings) -> int:
    return sum(b["households"] for b in buildings)


def _trim(buildings, excess: int) -> None:
    """Take an overshoot off the last buildings placed, keeping every one at 20+ households."""
    for b in reversed(buildings):
        if excess <= 0:
            return
        cut = min(excess, b["households"] - MIN_HOUSEHOLDS)
        b["households"] -= cut
        excess -= cut


def _apportion(total: int, weights) -> list[int]:
    """Split an integer total in proportion to weights (largest remainders)."""
    raw = total * np.asarray(weights) / np.sum(weights)
    base = np.floor(raw).astype(int)
    order = np.argsort(-(raw - base), kind="stable")
    base[order[: total - base.sum()]] += 1
    return base.tolist()


def _address_buildings(cfg, city, buildings, gates, rng) -> None:
    """House numbers per road (odd on one side, even on the other, rising along it), 栋 within a compound."""
    prefix = f"{city['name']}{cfg['district_name']}{cfg['street_name']}"
    units = {}  # (grid, None) is a grid's residential compound; (grid, i) a non-residential building
    for i, b in enumerate(buildings):
        units.setdefault((b["grid"], None if b["kind"] == "residential" else i), []).append(b)
    by_road = {}
    for (key, _), members in units.items():
        gate = gates[key]
        centre = shapely.centroid(shapely.union_all([m["geometry"] for m in members]))
        pos = centre.x if gate["axis"] == 0 else -centre.y  # west -> east, north -> south
        by_road.setdefault((gate["road"], gate["odd"]), []).append((pos, members))
    for (road, odd), entries in by_road.items():
        number = 1 if odd else 2
        for pos, members in sorted(entries, key=lambda e: e[0]):
            if members[0]["kind"] == "residential":
                members.sort(key=lambda m: (-round(m["geometry"].centroid.y), m["geometry"].centroid.x))
                for k, m in enumerate(members, 1):
                    m["address"] = f"{prefix}{road}{number}号{k}栋"
            else:
                members[0]["address"] = f"{prefix}{road}{number}号"
            number += 2 * int(rng.choice([1, 1, 1, 2, 3]))


# --- people ----------------------------------------------------------------------------------


def _offsite(cfg, half, distance, rng):
    """A point beyond the community, on its landward side (``land_bearings_deg``, clockwise from north)."""
    lo, hi = cfg.get("land_bearings_deg", [0, 360])
    bearing = math.radians(rng.uniform(lo, hi) + cfg["rotation_deg"])  # in lattice axes, turned by the rotation
    dist = half + rng.uniform(*distance)
    return shapely.Point(dist * math.sin(bearing), dist * math.cos(bearing))


def _households_and_residents(buildings, rows, rng) -> pd.DataFrame:
    """Occupied flats per building and one or two listed residents per household."""
    hh_addr, hh_unit, hh_size, hh_building = [], [], [], []
    for bi, b in enumerate(buildings):
        n = b["households"]
        if n == 0:
            continue
        u, f, d = np.meshgrid(np.arange(1, b["units"] + 1), np.arange(1, b["floors"] + 1),
                              np.arange(1, b["per_floor"] + 1), indexing="ij")
        flats = np.column_stack([u.ravel(), f.ravel(), d.ravel()])
        chosen = flats[np.sort(rng.choice(len(flats), n, replace=False))]
        hh_unit += [f"{uu}单元{ff}{dd:02d}" for uu, ff, dd in chosen]
        hh_addr += [b["address"]] * n
        hh_building += [bi] * n
    sizes = rng.choice(np.arange(1, 6), len(hh_unit), p=HOUSEHOLD_SIZE_P)
    hh_size = sizes.tolist()
    rows["households"].extend({"building_address": a, "unit": u, "size": s} for a, u, s in zip(hh_addr, hh_unit, hh_size))

    listed = 1 + ((sizes > 1) & (rng.random(len(sizes)) < SECOND_RESIDENT_P))
    idx = np.repeat(np.arange(len(sizes)), listed)
    alone = sizes[idx] == 1
    vulnerable = rng.random(len(idx)) < np.where(alone, VULNERABLE_P["alone"], VULNERABLE_P["other"])
    residents = pd.DataFrame({
        "building_address": np.asarray(hh_addr, dtype=object)[idx],
        "unit": np.asarray(hh_unit, dtype=object)[idx],
        "vulnerable": vulnerable,
        "_building": np.asarray(hh_building)[idx],
    })
    records = residents.drop(columns="_building").to_dict("records")
    rows["residents"].extend(records)
    residents["_record"] = records  # volunteers and party members point at their resident's record
    return residents


def _point_in(geom, rng):
    minx, miny, maxx, maxy = geom.bounds
    for _ in range(100):
        p = shapely.Point(rng.uniform(minx, maxx), rng.uniform(miny, maxy))
        if geom.contains_properly(p):
            return p
    return geom.point_on_surface()


def _party(cfg, buildings, residents, grid_codes, community, rows, rng) -> None:
    code = cfg["code"]
    committee = f"C{code}"
    rows["party_orgs"].append({"key": committee, "kind": "committee", "name": f"{cfg['name']}党委", "parent_key": "",
                               "community_code": code, "grid_code": "", "building_address": ""})
    for i, (key, gcode) in enumerate(grid_codes.items(), 1):
        rows["party_orgs"].append({"key": f"B{gcode}", "kind": "grid_branch", "name": f"{cfg['name']}第{i}网格党支部",
                                   "parent_key": committee, "community_code": code, "grid_code": gcode,
                                   "building_address": ""})
    n = cfg["party_members"]
    n_out = max(1, round(PARTY_OUTSIDE_SHARE * n))
    inside = residents.iloc[np.sort(rng.choice(len(residents), n - n_out, replace=False))]
    per_building = inside.groupby("_building").size()
    groups = {}
    for bi, count in per_building.items():
        b = buildings[bi]
        if count >= 3:
            gcode = grid_codes[b["grid"]]
            key = f"G{gcode}-{len([g for g in groups.values() if g[1] == gcode]) + 1:02d}"
            groups[bi] = (key, gcode)
            label = b["address"].split(cfg["street_name"], 1)[1]
            rows["party_orgs"].append({"key": key, "kind": "group", "name": f"{label}党小组", "parent_key": f"B{gcode}",
                                       "community_code": code, "grid_code": gcode, "building_address": b["address"]})
    half = math.hypot(*np.subtract(community.bounds[2:], community.bounds[:2])) / 2
    in_service = rng.random(n) < PARTY_IN_SERVICE_P
    employers = rng.choice(EMPLOYERS, n)
    for k in range(n):
        if k < len(inside):
            res = inside.iloc[k]
            b = buildings[int(res["_building"])]
            rec = {"_resident": res["_record"], "building_address": b["address"],
                   "org_key": f"B{grid_codes[b['grid']]}", "geometry": _point_in(b["geometry"], rng)}
        else:  # lives elsewhere in the city, reports to the community (双报到)
            rec = {"_resident": None, "building_address": "", "org_key": "",
                   "geometry": _offsite(cfg, half, OUTSIDE_MEMBER_DISTANCE_M, rng)}
        rec.update(in_service=bool(in_service[k]), employer=str(employers[k]) if in_service[k] else "")
        rows["party_members"].append(rec)


def _workers(cfg, keys, cells, grid_codes, rows, rng) -> None:
    """One grid worker per grid, some covering two neighbouring grids."""
    k = 0
    while k < len(keys):
        serve = keys[k:k + 2] if k + 1 < len(keys) and rng.random() < TWO_GRID_WORKER_P else keys[k:k + 1]
        station = cells[serve[0]].point_on_surface()  # 网格工作站 in the first grid served
        rows["workers"].append({"community_code": cfg["code"], "grids": ";".join(grid_codes[g] for g in serve),
                                "geometry": station})
        k += len(serve)


def _volunteers(cfg, buildings, residents, rows, rng) -> None:
    pool = residents[~residents["vulnerable"]]
    chosen = pool.iloc[np.sort(rng.choice(len(pool), cfg["volunteers"], replace=False))]
    for _, res in chosen.iterrows():
        skills = rng.choice(VOLUNTEER_SKILLS, int(rng.integers(1, 4)), replace=False)
        rows["volunteers"].append({
            "_resident": res["_record"], "community_code": cfg["code"],
            "skills": ";".join(skills.tolist()), "available": bool(rng.random() < VOLUNTEER_AVAILABLE_P),
            "geometry": _point_in(buildings[int(res["_building"])]["geometry"], rng),
        })


def _responders(cfg, community, buildings, courtyards, courtyard_keys, gates, rows, rng) -> None:
    half = math.hypot(*np.subtract(community.bounds[2:], community.bounds[:2])) / 2
    by_kind = {b["kind"]: b for b in buildings}
    bases = {}
    for base, distance in BASE_DISTANCE_M.items():
        bases[base] = [_offsite(cfg, half, distance, rng)]
    bases["service_centre"] = [by_kind["service_centre"]["geometry"].centroid]
    bases["clinic"] = [by_kind.get("clinic", by_kind["service_centre"])["geometry"].centroid]
    bases["courtyard_gate"] = [_courtyard_gate(poly, gates[courtyard_keys[name]])[0]
                               for name, poly in courtyards.items()] or bases["service_centre"]
    for kind, spec in RESPONDERS.items():
        for i in range(spec["count"]):
            base = bases[spec["base"]][i % len(bases[spec["base"]])]
            p = shapely.Point(base.x + rng.uniform(-8, 8), base.y + rng.uniform(-8, 8))
            skills = rng.choice(spec["skills"], int(rng.integers(0, 3)), replace=False)
            rows["responders"].append({"kind": kind, "skills": ";".join(skills.tolist()),
                                       "available": bool(rng.random() < RESPONDER_AVAILABLE_P), "geometry": p})


def _courtyard_gate(poly, gate):
    """A courtyard's gate: the point of its wall nearest the middle of the grid's address street."""
    mid = shapely.Point(gate["edge_mid"])
    return poly.exterior.interpolate(poly.exterior.project(mid)), poly.centroid


def _bearing(dx, dy) -> float:
    return math.degrees(math.atan2(dx, dy)) % 360.0


def _cameras(cfg, buildings, courtyards, courtyard_keys, gates, rows, rng) -> None:
    code = cfg["code"]
    for cy in cfg["courtyards"]:
        poly = courtyards[cy["name"]]
        gate, centre = _courtyard_gate(poly, gates[courtyard_keys[cy["name"]]])
        inward = _toward(gate, centre, 2.5)
        cams = []
        if cy.get("camera_layout") == "inward":
            # Pinwheel round each building: every corner camera looks along one face, so every face is seen.
            for bld in (bld for bld in buildings if bld["courtyard"] == cy["name"]):
                x0, y0, x1, y1 = bld["geometry"].bounds
                o = 1.5
                cams += [((x0 - o, y1 + o), 90.0, "long"), ((x1 + o, y1 + o), 180.0, "short"),
                         ((x1 + o, y0 - o), 270.0, "long"), ((x0 - o, y0 - o), 0.0, "short")]
            # The four courtyard corners look at its middle, the gate looks in.
            ring = np.asarray(poly.exterior.coords)[:-1]
            for sx, sy in ((-1, 1), (1, 1), (1, -1), (-1, -1)):
                p = _toward(shapely.Point(ring[np.argmax(sx * ring[:, 0] + sy * ring[:, 1])]), centre, 3.0)
                cams.append(((p.x, p.y), _bearing(centre.x - p.x, centre.y - p.y), "corner"))
            cams.append(((inward.x, inward.y), _bearing(centre.x - inward.x, centre.y - inward.y), "gate"))
            if len(cams) != cy["cameras"]:
                raise ValueError(f"{cy['name']}: the inward layout gives {len(cams)} cameras, config says {cy['cameras']}; "
                                 "set 'buildings' so that 4 × buildings + 5 equals 'cameras'.")
            for k, ((x, y), bearing, role) in enumerate(cams, 1):
                fov, reach = CAMERA_VIEWS[role]
                rows["cameras"].append(_camera(f"{cy['name']}-{k:02d}", k, cy["name"], code, bearing,
                                               rng.uniform(*fov), rng.uniform(*reach), shapely.Point(x, y)))
        else:
            outward = _toward(gate, centre, 1.0)
            b_in = _bearing(centre.x - gate.x, centre.y - gate.y)
            rows["cameras"].append(_camera(f"{cy['name']}大门-入", 1, cy["name"], code, b_in,
                                           float(rng.uniform(70, 90)), float(rng.uniform(30, 45)), inward))
            rows["cameras"].append(_camera(f"{cy['name']}大门-出", 2, cy["name"], code, (b_in + 180.0) % 360.0,
                                           float(rng.uniform(60, 80)), float(rng.uniform(20, 35)), outward))
    # Two cameras at the door of the service centre, looking out to the street.
    sc = next(b for b in buildings if b["kind"] == "service_centre")
    x0, y0, x1, y1 = sc["geometry"].bounds
    for k, (x, bearing) in enumerate(((x0 + 4, 160.0), (x1 - 4, 200.0)), 1):
        rows["cameras"].append(_camera(f"{cfg['service_centre']['name']}-{k:02d}", k, "", code, bearing,
                                       float(rng.uniform(70, 100)), float(rng.uniform(25, 40)), shapely.Point(x, y0 - 1.5)))


def _camera(name, channel, courtyard, code, bearing_lattice, fov, range_m, point):
    return {"name": name, "channel": f"CH-{channel:02d}", "courtyard": courtyard, "community_code": code,
            "_bearing_lattice": float(bearing_lattice), "fov": round(float(fov), 1), "range_m": round(float(range_m), 1),
            "geometry": point}


def _toward(p, q, metres):
    d = np.array([q.x - p.x, q.y - p.y])
    d = d / np.hypot(*d) * metres
    return shapely.Point(p.x + d[0], p.y + d[1])


# --- assembling frames -----------------------------------------------------------------------


def _fill_people(frames, rng) -> None:
    """Names and unique phone numbers; volunteers and resident party members reuse their resident's."""
    new_people = list(frames["residents"])
    new_people += [rec for rec in frames["party_members"] if rec["_resident"] is None]
    new_people += frames["workers"] + frames["responders"]
    for rec, name, phone in zip(new_people, _names(len(new_people), rng), _phones(len(new_people), rng)):
        rec["name"], rec["phone"] = name, phone
    for rec in frames["party_members"] + frames["volunteers"]:
        if rec["_resident"] is not None:
            rec["name"], rec["phone"] = rec["_resident"]["name"], rec["_resident"]["phone"]


def _names(n, rng):
    surnames = rng.choice(SURNAMES, n)
    two = rng.random(n) < 0.6
    g1 = rng.choice(GIVEN_CHARS, n)
    g2 = rng.choice(GIVEN_CHARS, n)
    return [s + a + (b if t else "") for s, a, b, t in zip(surnames, g1, g2, two)]


def _phones(n, rng):
    prefixes = rng.choice(MOBILE_PREFIXES, n)
    suffixes = rng.choice(10**8, n, replace=False)
    return [f"{p}{s:08d}" for p, s in zip(prefixes, suffixes)]


def _finish(name, records):
    cols = COLUMNS[name]
    frame = pd.DataFrame.from_records(records) if records else pd.DataFrame(columns=cols)
    if "geometry" in cols:
        return geopandas.GeoDataFrame(frame[cols], geometry="geometry", crs=WGS84)
    return frame[cols].reset_index(drop=True)

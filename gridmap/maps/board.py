"""Printable grid notice boards drawn with matplotlib: data in (``pages.board.board_data``), PNG or PDF bytes out.

Drawn in a local metric CRS, so the grid keeps its true shape, with a CJK font found through
fontconfig. No Flask, no queries.
"""
from __future__ import annotations

import datetime as dt
import io
import subprocess
from functools import lru_cache

import numpy as np
import shapely
from matplotlib import rc_context
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.patches import PathPatch, Rectangle
from matplotlib.path import Path

from ..errors import GridmapError
from ..geo.crs import metric_for

#: A4 portrait in inches, and the PNG's resolution: 1240 × 1754 pixels, sharp enough to print.
PAGE_INCHES = (8.27, 11.69)
PNG_DPI = 150
#: Font families tried in turn (fontconfig names); Debian's fonts-noto-cjk provides the first.
CJK_FONTS = ("Noto Sans CJK SC", "Source Han Sans SC", "WenQuanYi Micro Hei", "Noto Sans SC")

#: The board's words. Chinese: the board hangs in a Chinese courtyard whatever the planner's UI language.
LABELS = {"title": "网格公示牌", "code": "网格编码", "community": "所属社区", "workers": "网格员",
          "branch": "网格党支部", "centre": "社区服务中心", "none": "暂无", "call": "有事请拨打网格员电话",
          "scale": "米", "this_grid": "本网格", "printed": "制表日期"}

GRID_FILL, GRID_EDGE = "#fde68a", "#b45309"
NEIGHBOUR_EDGE, BUILDING_FILL, ROAD = "#64748b", "#94a3b8", "#cbd5e1"


class FontMissing(GridmapError):
    """No CJK font: the board would print boxes instead of names."""
    status = 500
    code = "font_missing"


def board_png(data, labels=None):
    """A board (:func:`gridmap.pages.board.board_data`) as PNG bytes."""
    return _render(data, "png", labels)


def board_pdf(data, labels=None):
    """A board as a one-page A4 PDF (fonts embedded, text searchable)."""
    return _render(data, "pdf", labels)


@lru_cache(maxsize=4)
def cjk_font(bold=False):
    """Path of a CJK font file, found with fc-match; FontMissing says how to install one."""
    for family in CJK_FONTS:
        try:
            out = subprocess.run(["fc-match", "-f", "%{file}\n%{family}", f"{family}:{'bold' if bold else 'regular'}"],
                                 capture_output=True, text=True, timeout=10, check=True).stdout
        except (OSError, subprocess.SubprocessError):
            break
        path, _, found = out.partition("\n")
        if path and family.split()[0].lower() in found.lower() and ("CJK" in found or "SC" in found or "Hei" in found):
            return path
    raise FontMissing("No Chinese (CJK) font was found, so a notice board would print empty boxes.",
                      fix="Install one: apt-get install fonts-noto-cjk (Debian/Ubuntu), then retry.")


def _render(data, fmt, labels):
    t = {**LABELS, **(labels or {})}
    regular, bold = FontProperties(fname=cjk_font()), FontProperties(fname=cjk_font(bold=True))
    fig = Figure(figsize=PAGE_INCHES)
    FigureCanvasAgg(fig)
    fig.patch.set_facecolor("white")

    # header band
    fig.patches.append(Rectangle((0, 0.905), 1, 0.095, transform=fig.transFigure,
                                                    facecolor="#b91c1c", edgecolor="none"))
    fig.text(0.5, 0.952, t["title"], ha="center", va="center", color="white", fontproperties=bold, size=34)
    fig.text(0.06, 0.875, data["name"], ha="left", va="center", fontproperties=bold, size=24)
    fig.text(0.06, 0.842, f"{t['code']}  {data['code']}", ha="left", va="center", fontproperties=regular, size=15)
    fig.text(0.94, 0.842, f"{t['community']}  {data['community']['name']}", ha="right", va="center",
             fontproperties=regular, size=15)

    ax = fig.add_axes((0.06, 0.38, 0.88, 0.44))
    _draw_map(ax, data, regular, t)

    y = 0.34
    y = _section(fig, y, t["workers"], [f"{name}    {phone or t['none']}" for name, phone in data["workers"]]
                 or [t["none"]], regular, bold, big=True)
    y = _section(fig, y, t["branch"], [data["branch"] or t["none"]], regular, bold)
    c = data["community"]
    centre = [line for line in ("    ".join(x for x in (c["centre"], c["phone"]) if x), c["address"]) if line]
    _section(fig, y, t["centre"], centre or [t["none"]], regular, bold)
    fig.text(0.5, 0.035, t["call"], ha="center", va="center", fontproperties=bold, size=16, color="#b91c1c")
    fig.text(0.94, 0.012, f"{t['printed']} {dt.date.today().isoformat()}", ha="right", va="bottom",
             fontproperties=regular, size=8, color="#64748b")

    buf = io.BytesIO()
    if fmt == "png":
        fig.savefig(buf, format="png", dpi=PNG_DPI)
    else:
        # Type 42 embeds the font's outlines with a Unicode map: names are searchable and copyable.
        with rc_context({"pdf.fonttype": 42}):
            fig.savefig(buf, format="pdf", metadata={"Title": f"{t['title']} {data['code']} {data['name']}",
                                                      "Subject": data["code"]})
    return buf.getvalue()


def _section(fig, y, title, lines, regular, bold, big=False):
    fig.text(0.06, y, title, ha="left", va="top", fontproperties=bold, size=16, color="#1e3a8a")
    y -= 0.032
    for line in lines[:6]:
        fig.text(0.09, y, line, ha="left", va="top", fontproperties=bold if big else regular, size=18 if big else 14)
        y -= 0.034 if big else 0.028
    return y - 0.012


def _draw_map(ax, data, font, t):
    metric = metric_for(data["geometry"])

    def proj(g):
        return metric.project([g])[0]

    def patch(geom, **style):
        for poly in shapely.get_parts(geom):
            if not isinstance(poly, shapely.Polygon):
                continue
            rings = [poly.exterior, *poly.interiors]
            verts = np.concatenate([np.asarray(r.coords)[:, :2] for r in rings])
            codes = np.concatenate([[Path.MOVETO] + [Path.LINETO] * (len(r.coords) - 2) + [Path.CLOSEPOLY]
                                    for r in rings])
            ax.add_patch(PathPatch(Path(verts, codes), **style))

    grid = proj(data["geometry"])
    x0, y0, x1, y1 = grid.bounds
    pad = max(x1 - x0, y1 - y0) * 0.18
    # Widen the padded grid to the axes' own shape, so one metre is as long across as up.
    w_in, h_in = (ax.get_position().width * PAGE_INCHES[0], ax.get_position().height * PAGE_INCHES[1])
    cx, cy, w, h = (x0 + x1) / 2, (y0 + y1) / 2, x1 - x0 + 2 * pad, y1 - y0 + 2 * pad
    w, h = max(w, h * w_in / h_in), max(h, w * h_in / w_in)
    ax.set_xlim(cx - w / 2, cx + w / 2)
    ax.set_ylim(cy - h / 2, cy + h / 2)
    view = shapely.box(cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
    ax.set_facecolor("#f8fafc")

    for road in data["roads"]:
        r = shapely.intersection(proj(road), view)
        for line in shapely.get_parts(r):
            if isinstance(line, shapely.LineString) and not line.is_empty:
                xy = np.asarray(line.coords)
                ax.plot(xy[:, 0], xy[:, 1], color=ROAD, linewidth=5, solid_capstyle="round", zorder=1)
    patch(grid, facecolor=GRID_FILL, edgecolor="none", zorder=2)
    for b in data["buildings"]:
        if shapely.get_type_id(b) in (3, 6):
            patch(proj(b), facecolor=BUILDING_FILL, edgecolor="#475569", linewidth=0.4, zorder=3)
    for code, geom in data["neighbours"]:
        g = proj(geom)
        patch(g, facecolor="none", edgecolor=NEIGHBOUR_EDGE, linewidth=1, linestyle="--", zorder=4)
        inside = shapely.intersection(g, shapely.buffer(view, -pad * 0.2))
        if not inside.is_empty and inside.area > 0:
            p = inside.representative_point()
            ax.text(p.x, p.y, code[-3:], ha="center", va="center", fontproperties=font, size=10,
                    color=NEIGHBOUR_EDGE, zorder=5)
    patch(grid, facecolor="none", edgecolor=GRID_EDGE, linewidth=3.5, zorder=6)
    label = grid.representative_point()
    ax.text(label.x, label.y, f"{t['this_grid']}\n{data['code'][-3:]}", ha="center", va="center",
            fontproperties=font, size=16, color=GRID_EDGE, zorder=7,
            bbox={"facecolor": "white", "edgecolor": GRID_EDGE, "alpha": 0.85, "boxstyle": "round,pad=0.3"})
    _scale_bar(ax, font, t)
    ax.annotate("N", xy=(0.95, 0.95), xytext=(0.95, 0.86), xycoords="axes fraction", ha="center",
                arrowprops={"arrowstyle": "-|>", "color": "#1f2937"}, fontproperties=font, size=14)
    ax.set_xticks([])
    ax.set_yticks([])


def _scale_bar(ax, font, t):
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    span = (x1 - x0) / 4
    length = next(v for v in (10, 20, 50, 100, 200, 500, 1000, 2000, 5000) if v >= span * 0.6)
    bx, by = x0 + (x1 - x0) * 0.05, y0 + (y1 - y0) * 0.05
    ax.plot([bx, bx + length], [by, by], color="#1f2937", linewidth=3, zorder=8)
    ax.text(bx + length / 2, by + (y1 - y0) * 0.015, f"{length} {t['scale']}", ha="center", va="bottom",
            fontproperties=font, size=10, zorder=8)

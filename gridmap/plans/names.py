"""The names gridmap gives plans it makes (a copy, a draft from a partition, an import) as catalogue templates.

Plans store their name as text. Those gridmap generated are English sentences of a known shape;
:func:`generated` reads one back into its ``N_`` template and parameters, so each page says it in
its own language ("copy of plan 7" · "计划 7 的副本"). A name a person typed matches none of the
shapes and is shown as typed. Reading at display time also covers every plan stored before.
"""
from __future__ import annotations

import re

from ..errors import N_

#: (shape of a generated name, its template): the producers below and these shapes go together.
_SHAPES = (
    (re.compile(r"copy of plan (?P<id>\d+)"), N_("copy of plan %(id)s")),
    (re.compile(r"partition seed (?P<seed>-?\d+) \((?P<grids>\d+) grids\)"), N_("partition seed %(seed)s (%(grids)s grids)")),
    (re.compile(r"partition seed (?P<seed>-?\d+) \((?P<grids>\d+) grids, estimated households\)"),
     N_("partition seed %(seed)s (%(grids)s grids, estimated households)")),
    (re.compile(r"import (?P<date>\d{4}-\d{2}-\d{2})"), N_("import %(date)s")),
)


def copy_name(plan_id):
    return N_("copy of plan %(id)s") % {"id": plan_id}


def partition_name(seed, grids, *, estimated=False):
    template = (N_("partition seed %(seed)s (%(grids)s grids, estimated households)") if estimated
                else N_("partition seed %(seed)s (%(grids)s grids)"))
    return template % {"seed": seed, "grids": grids}


def import_name(day):
    return N_("import %(date)s") % {"date": day.isoformat()}


def generated(name):
    """``(template, params)`` of a name gridmap generated, or None for a name a person gave."""
    for shape, template in _SHAPES:
        found = shape.fullmatch(name or "")
        if found:
            return template, found.groupdict()
    return None

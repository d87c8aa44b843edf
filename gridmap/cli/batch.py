"""City-wide batch work on Dask: `gridmap assign --all` in batches of communities, `gridmap join` of a point file.

Dask (``dask.distributed``) is imported inside the functions that use it, so `gridmap --help`
and every other command start without it.

Who writes
----------
Workers only read. Each task opens its own read-only transaction on the store (its URL is sent
with the task), computes a batch of communities' assignments (:func:`gridmap.assign.compute_at`)
and sends the rows back; the client writes each batch as it arrives, in a transaction of its own,
one at a time. SQLite admits one writer at a time (workers writing at once would queue on its
lock and time out under load), and on PostGIS this keeps the connections at workers + 1; the
writes are bulk inserts, a small share of the work. Reading is safe alongside: no task reads the
tables an assignment writes. A batch that fails leaves the batches already written in place;
running the command again replaces every plan's rows.
"""
from __future__ import annotations

import contextlib
import math
import os
import resource
import sys
import time

import click

#: batches per worker: enough to even out the workers' ends, few enough that each batch's fixed cost
#: stays small (every batch reads the city's grids, party members and entities and places them all:
#: the same answer in each batch, computed again)
BATCHES_PER_WORKER = 2
SCHEDULER_TIMEOUT_S = 10


@contextlib.contextmanager
def dask_client(workers, scheduler):
    """A ``distributed.Client``: on the cluster at ``scheduler``, else on a LocalCluster of ``workers`` processes."""
    import logging

    from distributed import Client, LocalCluster
    if scheduler:
        try:
            client = Client(scheduler, timeout=SCHEDULER_TIMEOUT_S)
        except (OSError, TimeoutError, ValueError) as err:
            from ..errors import InvalidInput, N_
            raise InvalidInput(N_("The Dask scheduler %(value)s does not answer (%(reason)s)."),
                               fix=N_("Start it (dask scheduler) or give its address as tcp://HOST:PORT; "
                                      "drop --scheduler to use this machine's cores."),
                               params={"value": scheduler, "reason": type(err).__name__}) from None
        with client:
            yield client
        return
    # the cluster's chatter (a busy port, a worker killed at shutdown) is not the user's business
    logging.getLogger("distributed").setLevel(logging.ERROR)
    # one thread a worker: the jobs are compiled loops and GEOS calls, one process a core
    with LocalCluster(n_workers=workers or os.cpu_count() or 1, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        yield client


def assign_all(store, capacity, *, workers=None, scheduler=None, batch_size=None, progress=None):
    """Assign every published plan on Dask: workers compute batches of communities, this process writes.

    Returns the summaries, in community order, as :func:`gridmap.assign.run` does.
    """
    from distributed import as_completed
    from sqlalchemy import select

    from .. import assign
    from ..store import models as m

    t0 = time.perf_counter()
    with store.session() as session:
        ids = session.scalars(select(m.GridPlan.id).where(m.GridPlan.status == "published")
                              .order_by(m.GridPlan.community_code, m.GridPlan.id)).all()
    url = store.url.render_as_string(hide_password=False)
    summaries = []
    with dask_client(workers, scheduler) as client:
        n = max(1, len(client.scheduler_info().get("workers", {})) or workers or 1)
        size = batch_size or max(1, math.ceil(len(ids) / (n * BATCHES_PER_WORKER)))
        batches = [ids[i:i + size] for i in range(0, len(ids), size)]
        futures = [client.submit(assign.compute_at, url, batch, capacity, pure=False) for batch in batches]
        for future in as_completed(futures):
            result = future.result()
            with store.transaction() as session:
                summaries += assign.write(session, result, started=t0)
            future.release()  # the rows are in the store: let the worker forget them
            if progress:
                progress(len(result["plan_ids"]))
    by_plan = {s["plan_id"]: s for s in summaries}
    return [by_plan[i] for i in ids if i in by_plan]


def peak_rss_mb():
    """Peak resident memory of this process in MB (Linux reports kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def join_file(source, grids, out, *, workers=None, scheduler=None, rows=None, progress=None):
    """Join every point of ``source`` (a :class:`~gridmap.geo.pointjoin.PointSource`) to ``grids``, into
    the Parquet file ``out``, in file order, a chunk at a time.

    ``workers`` 1 (and no scheduler): in this process. Otherwise each Parquet row group (CSV: each
    block of dask.dataframe.read_csv) is a task, at most two a worker in flight, written by this
    process as they finish in order. Returns {"points", "matched", "chunks", "peak_rss_mb": {...}}.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ..geo import pointjoin

    rows = rows or pointjoin.CHUNK_ROWS
    payload = pointjoin.prepare_grids(grids, source.crs)
    tmp = f"{out}.part-{os.getpid()}"
    writer = None
    stats = {"points": 0, "matched": 0, "chunks": 0}

    def emit(frame):
        nonlocal writer
        table = pa.Table.from_pandas(frame, preserve_index=False)
        # a chunk wholly outside every grid has only nulls there: the column is text all the same
        i = table.schema.get_field_index("grid_code")
        table = table.set_column(i, "grid_code", pa.array(frame["grid_code"], type=pa.string(), from_pandas=True))
        if writer is None:
            meta = dict(table.schema.metadata or {})
            if source.geo_metadata is not None:
                meta[b"geo"] = source.geo_metadata  # the geometry column is passed through: still GeoParquet
            writer = pq.ParquetWriter(tmp, table.schema.with_metadata(meta))
        # every chunk in the first one's schema (a column of nulls in one chunk takes the file's type)
        writer.write_table(table.cast(writer.schema))
        stats["points"] += len(frame)
        stats["matched"] += int(frame["grid_code"].notna().sum())
        stats["chunks"] += 1
        if progress:
            progress(len(frame))

    try:
        if (workers == 1 and not scheduler):
            offset = 0
            for chunk in pointjoin.read_chunks(source, rows=rows):
                emit(pointjoin.join_chunk(chunk, source, payload, offset))
                offset += len(chunk)
            worker_rss = {}
        else:
            worker_rss = _join_on_dask(source, payload, emit, workers, scheduler, rows)
        if writer is None:  # no rows at all: still a valid, empty file with the input's columns
            import pandas as pd
            frame = pd.DataFrame({c: [] for c in source.columns})
            frame["grid_code"] = pd.Series([], dtype=object)
            emit(frame)
        writer.close()
        writer = None
        os.replace(tmp, out)
    finally:
        if writer is not None:
            writer.close()
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
    stats["peak_rss_mb"] = {"client": round(peak_rss_mb(), 1), **worker_rss}
    return stats


def _join_on_dask(source, payload, emit, workers, scheduler, rows):
    import dask
    import numpy as np
    from distributed import wait

    from ..geo import pointjoin

    with dask_client(workers, scheduler) as client:
        n = max(1, len(client.scheduler_info().get("workers", {})))
        grids = client.scatter(payload, broadcast=True)
        if source.kind == "parquet":
            # a worker reads its row group and sends back only the positions (4 bytes a point); this
            # process reads the row group again to write it: reading Parquet is cheaper than shipping it
            groups = source.chunks()
            starts = np.cumsum([0] + [k for _, k in groups])
            tasks = [(g, client.submit(_locate_row_group, source, g, int(starts[i]), grids, rows, pure=False))
                     for i, (g, _) in enumerate(groups)]
        else:
            import dask.dataframe as dd
            parts = dd.read_csv(source.path, blocksize="64MB", dtype=_csv_dtypes(source)).to_delayed()
            tasks = [(None, dask.delayed(_join_csv_part)(part, source, grids)) for part in parts]
        # at most two tasks a worker in flight, written in file order: memory stays bounded
        window, pending = 2 * n, []
        for i, (group, task) in enumerate(tasks):
            pending.append((group, task if group is not None else client.compute(task)))
            while len(pending) >= window or (i == len(tasks) - 1 and pending):
                group, first = pending.pop(0)
                wait([first])
                got = first.result()
                first.release()
                if group is None:
                    emit(got)
                    continue
                start = 0
                for chunk in pointjoin.read_chunks(source, rows=rows, row_group=group):
                    emit(pointjoin.with_codes(chunk, got[start:start + len(chunk)], payload))
                    start += len(chunk)
        rss = client.run(peak_rss_mb)
    return {f"worker {k}": round(v, 1) for k, v in sorted(rss.items())}


def _locate_row_group(source, group, offset, grids, rows):
    """Positions of the points of one row group (``offset``: its first row's number in the file)."""
    import numpy as np

    from ..geo import pointjoin
    parts = []
    for chunk in pointjoin.read_chunks(source, rows=rows, row_group=group):
        parts.append(pointjoin.locate_chunk(chunk, source, grids, offset))
        offset += len(chunk)
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int32)


def _join_csv_part(part, source, grids):
    from ..geo import pointjoin
    return pointjoin.join_chunk(part.reset_index(drop=True), source, grids)


def _csv_dtypes(source):
    # dask infers dtypes from the first block: a column of codes that looks numeric there would break
    # a later block; coordinates are floats, the rest is read as the first chunk says
    return {c: "float64" for c in (source.x, source.y) if c}


def progress_bar(length, label):
    return click.progressbar(length=length, label=label, file=sys.stderr)


# --- the commands ------------------------------------------------------------------------------

from flask.cli import with_appcontext  # noqa: E402  (after the helpers above, which need no app)

from ..errors import N_, InvalidInput  # noqa: E402
from .common import fail, reports_errors, store  # noqa: E402


@click.command("join")
@click.argument("points", type=click.Path(dir_okay=False))
@click.option("--grids", "grids_from", required=True, metavar="PATH|published",
              help="The grids: a vector file (GeoJSON, GeoPackage, Shapefile, zip), or 'published' for the "
                   "store's published grids.")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="The Parquet file to write.")
@click.option("--crs", help="CRS of the points when the file does not say (x/y columns), e.g. EPSG:32651.")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Dask worker processes (default: one a core); 1 runs in this process.")
@click.option("--scheduler", metavar="tcp://HOST:PORT", help="Run on this Dask cluster (its workers must read "
                                                             "POINTS at the same path).")
@click.option("--chunk-rows", type=click.IntRange(min=1000), default=None,
              help="Points read at a time (default 1,000,000): memory holds a few chunks.")
@with_appcontext
@reports_errors
def join_command(points, grids_from, out, crs, workers, scheduler, chunk_rows):
    """Join every point of POINTS (Parquet, GeoParquet or CSV) to the grid holding it, into --out (Parquet).

    The output has every input column and grid_code (empty outside every grid), rows in the input's
    order; the answers are those of points_to_grids on the whole file. The file is read a chunk at a
    time (Parquet row groups are the tasks on Dask), so memory stays bounded; the peak resident memory
    of each process is reported.
    """
    from ..geo import pointjoin
    if scheduler and workers:
        fail(InvalidInput(N_("--workers and --scheduler %(value)s were both given."),
                          fix=N_("A cluster has its own workers: drop --workers."), params={"value": scheduler}))
    if not out.lower().endswith((".parquet", ".pq", ".geoparquet")):
        fail(InvalidInput(N_("Output %(path)s is not a Parquet file name."),
                          fix=N_("End --out with .parquet."), params={"path": out}))
    source = pointjoin.open_points(points, crs=crs)
    grids = _grids(grids_from)
    t0 = time.perf_counter()
    with progress_bar(source.rows or 0, "Joining") as bar:
        stats = join_file(source, grids, out, workers=workers, scheduler=scheduler, rows=chunk_rows,
                          progress=bar.update if source.rows else None)
    seconds = time.perf_counter() - t0
    click.echo(f"Joined {stats['points']:,} points to {len(grids):,} grids in {seconds:.1f} s: "
               f"{stats['matched']:,} in a grid, {stats['points'] - stats['matched']:,} outside; wrote {out}")
    click.echo("Peak resident memory (MB): " + ", ".join(f"{k} {v:,.0f}" for k, v in stats["peak_rss_mb"].items()))


def _grids(spec):
    import geopandas as gpd
    if spec == "published":
        from ..store import loaders
        with store().session() as session:
            rows = loaders.published_grids(session)
        if not rows:
            raise InvalidInput(N_("The store has no published grids to join to."),
                               fix=N_("Publish a plan first, or give --grids PATH of a grids file."))
        return gpd.GeoDataFrame({"code": [g.code for g, _ in rows]}, geometry=[g.geom for g, _ in rows], crs=4326)
    from ..geo.io import read_layer
    raw = read_layer(spec)
    frame = raw.frame.set_crs(raw.crs.crs, allow_override=True)
    kinds = set(frame.geometry.geom_type.dropna())
    if not kinds <= {"Polygon", "MultiPolygon"}:
        raise InvalidInput(N_("Grids file %(path)s holds %(kinds)s, not only polygons."),
                           fix=N_("Give a file of grid polygons."),
                           params={"path": spec, "kinds": ", ".join(sorted(kinds))})
    return frame.reset_index(drop=True)

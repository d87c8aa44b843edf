"""Dry-run benchmark: what the browser's dry run costs beside the import it stands in for, same run, same file.

    .venv/bin/python bench/dry_run_bench.py [--rows 100000] [--bad 0.01]

A CSV of N building points (``--bad`` of them with a households value that is not a number) on
SQLite:

- the upload border: sniffing the file's type (its first 4 KiB) and, for the same rows zipped as a
  GeoJSON, counting every unpacked byte (:func:`gridmap.importer.uploads.check_zip`);
- the dry run (:func:`gridmap.importer.preview.inspect`: read, every check, the map's features);
- peer: the import itself (:func:`gridmap.importer.import_file` with ``skip_invalid``), which reads
  and checks the same way and then writes.

The dry run should cost about what the import's own reading and checking cost, i.e. less than the
import; the border's checks should be a small fraction of either.
"""
import argparse
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gridmap import importer  # noqa: E402
from gridmap.importer import preview, uploads  # noqa: E402
from gridmap.store import Store  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--bad", type=float, default=0.01)
    args = ap.parse_args()
    rng = np.random.default_rng(7)
    n = args.rows
    households = rng.integers(0, 200, n).astype(str).astype(object)
    households[rng.random(n) < args.bad] = "unknown"
    frame = pd.DataFrame({"address": [f"试验路{i}号" for i in range(n)], "households": households,
                          "lon": 121.55 + rng.random(n) * 0.1, "lat": 38.85 + rng.random(n) * 0.1})
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        csv = tmp / "buildings.csv"
        frame.to_csv(csv, index=False)
        mib = csv.stat().st_size / 2**20
        zipped = tmp / "buildings.zip"
        with zipfile.ZipFile(zipped, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.write(csv, "buildings.csv")
        store = Store(f"sqlite:///{tmp / 'bench.db'}")
        store.upgrade()

        t = time.perf_counter()
        uploads.sniff(csv, csv.name)
        sniff_s = time.perf_counter() - t
        t = time.perf_counter()
        uploads.check_zip(zipped, zipped.name, uploads.Limits())
        zip_s = time.perf_counter() - t

        t = time.perf_counter()
        with store.session() as session:
            found = preview.inspect(session, "buildings", csv)
        dry_s = time.perf_counter() - t

        t = time.perf_counter()
        summary = importer.import_file(store, "buildings", csv, skip_invalid=True)
        import_s = time.perf_counter() - t
        store.dispose()

    print(f"{n:,} building points, {found.bad_rows:,} bad ({mib:.1f} MiB CSV)")
    print(f"  border: sniff {sniff_s * 1000:8.2f} ms   zip unpack count {zip_s:6.2f} s")
    print(f"  gridmap dry run          {dry_s:6.2f} s   ({found.importable:,} importable, {found.drawn:,} drawn)")
    print(f"  peer: import_file        {import_s:6.2f} s   ({summary.imported:,} imported, batch {summary.batch_id})")
    print(f"  dry run / import: {dry_s / import_s:.2f}")
    assert found.importable == summary.imported and found.bad_rows == len({p['row'] for p in summary.rejected})


if __name__ == "__main__":
    main()

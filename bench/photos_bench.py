"""Photo uploads: what gridmap.photos costs a phone photo, beside the plain Pillow re-encode it replaces.

    .venv/bin/python bench/photos_bench.py [--runs 7] [--megapixels 12]

A synthetic phone photo (``--megapixels``, 4:3, smooth gradients with noise, ~3-5 MB as a JPEG
at quality 92, with EXIF GPS and an orientation tag) is cleaned ``--runs`` times by
:func:`gridmap.photos.clean_photos` (sniff, pixel check, reduced-scale JPEG decode, turn upright,
scale to PHOTO_MAX_SIDE, re-encode without metadata) and by the peer: Pillow's full decode,
``exif_transpose``, ``thumbnail`` and save — the same output size — in the same process. Prints the
median wall time of each and the stored sizes.
"""
import argparse
import io
import statistics
import time

import numpy as np
from PIL import Image, ImageOps

from gridmap import photos


def phone_photo(megapixels, seed=7):
    width = int((megapixels * 1e6 * 4 / 3) ** 0.5)
    height = width * 3 // 4
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([(x * 255 // width), (y * 255 // height), ((x + y) * 127 // (width + height))], axis=-1)
    pixels = np.clip(base + rng.normal(0, 6, base.shape), 0, 255).astype(np.uint8)
    exif = Image.Exif()
    exif[0x8825] = {1: "N", 2: (39.0, 3.0, 37.0), 3: "E", 4: (121.0, 44.0, 9.0)}
    exif[0x0112] = 6
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "JPEG", quality=92, exif=exif.tobytes())
    return buf.getvalue()


def peer(data, side):
    img = ImageOps.exif_transpose(Image.open(io.BytesIO(data)))
    img.thumbnail((side, side))
    out = io.BytesIO()
    img.save(out, "JPEG", quality=85)
    return out.getvalue()


def timed(fn, runs):
    times, out = [], None
    for _ in range(runs):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--megapixels", type=float, default=12.0)
    args = parser.parse_args()
    data = phone_photo(args.megapixels)
    limits = photos.PhotoLimits(max_bytes=max(len(data), photos.PhotoLimits.max_bytes))
    ours, [clean] = timed(lambda: photos.clean_photos([data], limits=limits), args.runs)
    theirs, peer_out = timed(lambda: peer(data, limits.max_side), args.runs)
    print(f"input: {args.megapixels:g} MP JPEG, {len(data) / 1e6:.1f} MB with EXIF GPS; median of {args.runs} runs")
    print(f"gridmap.photos.clean_photos: {ours * 1000:7.1f} ms -> {clean.width}x{clean.height}, "
          f"{len(clean.data) / 1e3:.0f} kB, EXIF {'none' if not Image.open(io.BytesIO(clean.data)).getexif() else 'KEPT'}")
    peer_img = Image.open(io.BytesIO(peer_out))
    print(f"Pillow full decode + save:   {theirs * 1000:7.1f} ms -> {peer_img.width}x{peer_img.height}, "
          f"{len(peer_out) / 1e3:.0f} kB")


if __name__ == "__main__":
    main()

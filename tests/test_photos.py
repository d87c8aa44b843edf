"""Photos at the border: content sniffed, size and pixels bounded, EXIF gone, orientation kept, stored on both backends."""
import io
import struct
import zlib

import pytest
from PIL import Image

from gridmap import photos
from gridmap.errors import InvalidInput, NotFound

GPS_IFD = 0x8825
ORIENTATION = 0x0112


def jpeg_with_gps(size=(40, 20), orientation=None):
    """A JPEG whose EXIF says where it was taken (and how the camera was held)."""
    img = Image.new("RGB", size, (200, 30, 30))
    img.paste((10, 10, 220), (0, 0, size[0] // 2, size[1]))  # left half blue: shows which way is up
    exif = Image.Exif()
    exif[GPS_IFD] = {1: "N", 2: (38.0, 54.0, 12.5), 3: "E", 4: (121.0, 36.0, 1.0)}
    if orientation:
        exif[ORIENTATION] = orientation
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif.tobytes(), quality=95)
    return buf.getvalue()


def encoded(fmt, size=(30, 30), mode="RGB"):
    buf = io.BytesIO()
    Image.new(mode, size).save(buf, fmt)
    return buf.getvalue()


def reason(excinfo):
    return excinfo.value.details["reason"]


def test_a_photo_keeps_its_pixels_upright_and_loses_its_exif():
    raw = jpeg_with_gps(orientation=6)  # 6: the camera was turned, the viewer rotates 90° clockwise
    assert Image.open(io.BytesIO(raw)).getexif().get_ifd(GPS_IFD)  # the test photo does carry GPS
    [clean] = photos.clean_photos([("home.jpg", raw)])
    out = Image.open(io.BytesIO(clean.data))
    assert clean.mime == "image/jpeg" and out.format == "JPEG"
    assert dict(out.getexif()) == {} and b"Exif" not in clean.data
    assert (clean.width, clean.height) == out.size == (20, 40)  # turned upright: portrait now
    # rotated clockwise, the blue left half is now on top
    assert out.getpixel((10, 5))[2] > 150 and out.getpixel((10, 35))[0] > 150


@pytest.mark.parametrize("fmt,mime", [("PNG", "image/png"), ("WEBP", "image/webp")])
def test_png_and_webp_stay_what_they_are(fmt, mime):
    [clean] = photos.clean_photos([encoded(fmt, mode="RGBA")])
    assert clean.mime == mime and Image.open(io.BytesIO(clean.data)).format == fmt


def test_a_large_photo_is_scaled_to_the_stored_side():
    [clean] = photos.clean_photos([encoded("JPEG", size=(800, 600))], limits=photos.PhotoLimits(max_side=200))
    assert (clean.width, clean.height) == (200, 150)


def test_the_type_is_judged_by_content_not_by_name():
    with pytest.raises(InvalidInput) as e:
        photos.clean_photos([("cat.jpg", b"GIF89a" + bytes(100))])
    assert reason(e) == "photo_not_image" and e.value.details["name"] == "cat.jpg"
    with pytest.raises(InvalidInput) as e:  # a GIF is an image, but not one of the three
        photos.clean_photos([("x.png", encoded("GIF"))])
    assert reason(e) == "photo_not_image"
    [clean] = photos.clean_photos([("photo.txt", encoded("PNG"))])  # a PNG named .txt is a PNG
    assert clean.mime == "image/png"


def test_a_cut_short_photo_is_unreadable():
    with pytest.raises(InvalidInput) as e:
        photos.clean_photos([("cut.jpg", jpeg_with_gps()[:200])])
    assert reason(e) == "photo_unreadable"


def test_limits_on_count_bytes_and_pixels():
    limits = photos.PhotoLimits(max_count=3, max_bytes=2000, max_pixels=10_000)
    with pytest.raises(InvalidInput) as e:
        photos.clean_photos([encoded("PNG")] * 4, limits=limits)
    assert reason(e) == "too_many_photos" and e.value.details["count"] == 4 and e.value.details["most"] == 3
    with pytest.raises(InvalidInput) as e:
        photos.clean_photos([("big.png", b"\x89PNG\r\n\x1a\n" + bytes(3000))], limits=limits)
    assert reason(e) == "photo_too_large" and e.value.details["most"] == 2000
    bomb = encoded("PNG", size=(200, 200), mode="1")  # a few hundred bytes, 40,000 pixels
    assert len(bomb) < 2000
    with pytest.raises(InvalidInput) as e:
        photos.clean_photos([("bomb.png", bomb)], limits=limits)
    assert reason(e) == "photo_too_many_pixels" and e.value.details["pixels"] == 40_000


def test_a_decompression_bomb_is_refused_before_decoding():
    # a PNG that declares 20,000 × 20,000 (400 megapixels; Pillow itself would refuse) and holds a few bytes
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    bomb = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 20_000, 20_000, 1, 0, 0, 0, 0)) \
        + chunk(b"IDAT", zlib.compress(bytes(2501))) + chunk(b"IEND", b"")
    with pytest.raises(InvalidInput) as e:
        photos.clean_photos([bomb])
    assert reason(e) == "photo_too_many_pixels" and e.value.details["pixels"] == 400_000_000


def test_empty_parts_are_no_photos():
    assert photos.clean_photos([b"", ("empty.jpg", b"")]) == []


def test_photos_are_stored_for_their_owner_and_served_only_as_theirs(store):
    ids = photos.save_photos(store, [jpeg_with_gps(), encoded("PNG")], owner_kind="incident", owner_id=7)
    with store.session() as s:
        assert [p["id"] for p in photos.photos_of(s, "incident", 7)] == ids
        data, mime = photos.photo_bytes(s, ids[0], owner_kind="incident", owner_id=7)
        assert mime == "image/jpeg" and Image.open(io.BytesIO(data)).getexif().get_ifd(GPS_IFD) == {}
        assert photos.photo_owner(s, ids[1]) == ("incident", 7)
        with pytest.raises(NotFound):
            photos.photo_bytes(s, ids[0], owner_kind="incident", owner_id=8)
        with pytest.raises(NotFound):
            photos.photo_bytes(s, 10 ** 12)


def test_a_refused_upload_stores_nothing(store):
    with pytest.raises(InvalidInput):
        photos.save_photos(store, [encoded("PNG"), b"not a photo"], owner_kind="incident", owner_id=1)
    with store.session() as s:
        assert photos.photos_of(s, "incident", 1) == []

"""Safe decoding: every kind of photo a user may give, good or hostile, made here in memory."""

from __future__ import annotations

import io
import struct
import warnings
import zlib

import numpy as np
import pytest
from PIL import Image

from core.images import (
    MAX_FILE_BYTES, MAX_PIXELS, MAX_SIDE, ImageDecodeError, decode_image, read_image,
)
from tests.conftest import SHARED_CARS, require_shared


def _encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **kwargs)
    return buf.getvalue()


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width×height (8-bit gray) with a tiny IDAT: a cheap decompression bomb."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\0" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def _noise_jpeg(width: int = 64, height: int = 48) -> bytes:
    pixels = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    return _encode(Image.fromarray(pixels), "JPEG", quality=90)


# --- refusals: each names the file and says what to do -------------------------------------------------

@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", "car.jpg: is empty (0 bytes)"),
        (b"%PDF-1.7\n1 0 obj << /Type /Catalog >>\nendobj\n", "car.jpg: is a PDF document, not a photo"),
        (b"this is a note, not a photo\n", "car.jpg: is text, not a photo"),
        (b"<!DOCTYPE html><html><body>404 Not Found</body></html>", "car.jpg: is an HTML page"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic", "car.jpg: is a HEIC/AVIF photo"),
        (bytes(range(256)) * 4, "car.jpg: is not a recognised image"),
        (b"II*\x00" + b"\x00" * 100, "car.jpg: is a damaged TIFF image"),
    ],
    ids=["zero-bytes", "pdf", "text", "html", "heic", "binary", "garbled-tiff"],
)
def test_non_images_are_refused_with_what_they_are(data, expected):
    with pytest.raises(ImageDecodeError) as info:
        decode_image(data, "car.jpg")
    assert str(info.value).startswith(expected)
    assert isinstance(info.value, ValueError)


def test_truncated_jpeg_is_refused():
    data = _noise_jpeg()
    with pytest.raises(ImageDecodeError, match=r"^cut\.jpg: is truncated or corrupt .*Download or export"):
        decode_image(data[: len(data) // 2], "cut.jpg")


def test_header_cut_short_is_refused():
    tiny = _encode(Image.new("RGB", (4, 4), (9, 9, 9)), "JPEG")
    with pytest.raises(ImageDecodeError, match=r"^tiny\.jpg: is truncated or corrupt \(unreadable header"):
        decode_image(tiny[:30], "tiny.jpg")


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF"])
def test_every_truncation_and_random_damage_gives_an_array_or_a_refusal(fmt):
    pixels = np.random.default_rng(0).integers(0, 256, (12, 16, 3), dtype=np.uint8)
    image = Image.fromarray(pixels)
    data = _encode(image.convert("P") if fmt == "GIF" else image, fmt)
    rng = np.random.default_rng(1)
    damaged = [data[:n] for n in range(len(data))]
    for _ in range(100):
        copy = bytearray(data)
        copy[int(rng.integers(len(data)))] ^= 0xFF
        copy[int(rng.integers(len(data)))] = int(rng.integers(256))
        damaged.append(bytes(copy))
    refused = 0
    for sample in damaged:
        try:
            out = decode_image(sample, f"damaged.{fmt.lower()}")
        except ImageDecodeError:
            refused += 1
            continue
        assert out.dtype == np.uint8 and out.ndim == 3 and out.shape[2] == 3
    assert refused >= len(data) - 1  # every proper prefix is refused (all but the complete file)


def test_jpeg_with_garbage_body_is_refused():
    data = bytearray(_noise_jpeg())
    data[200:] = b"\xff" * (len(data) - 200)
    with pytest.raises(ImageDecodeError, match="is truncated or corrupt"):
        decode_image(bytes(data), "garbled.jpg")


def test_header_bomb_20000_square_is_refused_before_decoding():
    bomb = _png_header_only(20_000, 20_000)
    assert len(bomb) < 200  # the header promises 400 megapixels, the file is tiny
    with pytest.raises(ImageDecodeError, match=r"^bomb\.png: is far too large to decode"):
        decode_image(bomb, "bomb.png")


def test_area_above_limit_is_refused_even_when_warnings_are_errors():
    # 10000×9500 = 95 Mpx: Pillow only *warns* (DecompressionBombWarning); with warnings as errors that
    # warning must not escape — the project's own limit refuses it with a clear message instead.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ImageDecodeError, match=r"is 10000×9500 pixels, above the limit"):
            decode_image(_png_header_only(10_000, 9_500), "big.png")


def test_side_above_limit_is_refused():
    with pytest.raises(ImageDecodeError, match=rf"is {MAX_SIDE + 1}×10 pixels"):
        decode_image(_png_header_only(MAX_SIDE + 1, 10), "strip.png")


def test_limits_are_the_documented_values():
    assert (MAX_PIXELS, MAX_SIDE, MAX_FILE_BYTES) == (50_000_000, 20_000, 100 * 1024 * 1024)


def test_oversized_bytes_are_refused_unparsed():
    with pytest.raises(ImageDecodeError, match="above the 104,857,600-byte limit"):
        decode_image(b"\xff" * (MAX_FILE_BYTES + 1), "huge.jpg")


def test_non_bytes_input_is_a_type_error():
    with pytest.raises(TypeError, match="expects the photo's bytes, got str"):
        decode_image("photo.jpg")  # type: ignore[arg-type]


# --- conversions to RGB uint8 -------------------------------------------------------------------------

def test_one_by_one_png_is_accepted():
    out = decode_image(_encode(Image.new("RGB", (1, 1), (10, 20, 30)), "PNG"), "dot.png")
    assert out.shape == (1, 1, 3) and out.dtype == np.uint8
    assert out[0, 0].tolist() == [10, 20, 30]


def test_grayscale_becomes_three_equal_channels():
    gray = np.array([[0, 100], [200, 255]], dtype=np.uint8)
    out = decode_image(_encode(Image.fromarray(gray, "L"), "PNG"))
    assert out.shape == (2, 2, 3)
    assert (out == gray[:, :, None]).all()


def test_rgba_is_composited_on_white():
    rgba = np.array([[[255, 0, 0, 0], [0, 0, 255, 255], [0, 0, 0, 128]]], dtype=np.uint8)
    out = decode_image(_encode(Image.fromarray(rgba, "RGBA"), "PNG"))
    # transparent red → white; opaque blue → blue; half-transparent black → 255·(1 − 128/255) = 127
    assert out[0].tolist() == [[255, 255, 255], [0, 0, 255], [127, 127, 127]]


def test_palette_gif_and_its_transparency():
    image = Image.new("P", (2, 1))
    image.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    image.putpixel((0, 0), 0)
    image.putpixel((1, 0), 1)
    assert decode_image(_encode(image, "GIF"))[0].tolist() == [[255, 0, 0], [0, 255, 0]]
    # the same with index 1 transparent: green → white
    assert decode_image(_encode(image, "GIF", transparency=1))[0].tolist() == [[255, 0, 0], [255, 255, 255]]


def test_cmyk_jpeg_becomes_rgb():
    image = Image.new("CMYK", (16, 16), (0, 255, 255, 0))  # no cyan/black, full magenta+yellow = red
    out = decode_image(_encode(image, "JPEG", quality=95), "cmyk.jpg")
    assert out.shape == (16, 16, 3)
    assert np.abs(out.astype(int) - [255, 0, 0]).max() <= 3


def test_sixteen_bit_png_is_scaled_to_eight_bits():
    values = np.array([[0, 257 * 100, 65535, 300]], dtype=np.uint16)
    image = Image.fromarray(values)
    assert image.mode.startswith("I;16")
    out = decode_image(_encode(image, "PNG"), "depth.png")
    assert out[0, :, 0].tolist() == [0, 100, 255, 1]  # 300 / 257 = 1.17 → 1
    assert (out[..., 0] == out[..., 2]).all()


@pytest.mark.parametrize("fmt", ["GIF", "WEBP"])
def test_animation_gives_its_first_frame(fmt):
    frames = [Image.new("RGB", (8, 8), colour) for colour in [(255, 0, 0), (0, 0, 255)]]
    options = {"lossless": True} if fmt == "WEBP" else {}
    data = _encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, loop=0, **options)
    assert Image.open(io.BytesIO(data)).n_frames == 2
    out = decode_image(data, f"anim.{fmt.lower()}")
    assert out.shape == (8, 8, 3)
    assert out[4, 4].tolist() == [255, 0, 0]


# --- TIFF: scanners, microscopes and photo editors write it ----------------------------------------------

def _cv2_tiff(pixels: np.ndarray) -> bytes:
    """A TIFF written by OpenCV (BGR channel order on disk, as OpenCV writes it)."""
    import cv2

    ok, encoded = cv2.imencode(".tiff", pixels[..., ::-1] if pixels.ndim == 3 else pixels)
    assert ok
    return encoded.tobytes()


def test_eight_bit_rgb_tiff_is_decoded_exactly():
    pixels = np.random.default_rng(2).integers(0, 256, (12, 16, 3), dtype=np.uint8)
    for data in (_encode(Image.fromarray(pixels), "TIFF"), _encode(Image.fromarray(pixels), "TIFF",
                                                                   compression="tiff_lzw"), _cv2_tiff(pixels)):
        out = decode_image(data, "scan.tif")
        assert out.dtype == np.uint8 and (out == pixels).all()


def test_sixteen_bit_tiffs_become_eight_bits():
    gray = np.array([[0, 257 * 100, 65535, 300]], dtype=np.uint16)
    for data in (_encode(Image.fromarray(gray), "TIFF"), _cv2_tiff(gray)):
        out = decode_image(data, "depth.tif")
        assert out[0, :, 0].tolist() == [0, 100, 255, 1] and (out[..., 0] == out[..., 1]).all()
    rgb = np.zeros((1, 3, 3), dtype=np.uint16)
    rgb[0, :, 0] = [0, 32767, 65535]  # red channel; green 256 · 100 in every pixel; blue 0
    rgb[0, :, 1] = 256 * 100
    out = decode_image(_cv2_tiff(rgb), "rgb16.tif")
    assert out[0].tolist() == [[0, 100, 0], [127, 100, 0], [255, 100, 0]]  # the high byte of each value


def test_multipage_tiff_gives_its_first_page():
    pages = [Image.new("RGB", (8, 6), colour) for colour in [(0, 200, 0), (200, 0, 0), (0, 0, 200)]]
    data = _encode(pages[0], "TIFF", save_all=True, append_images=pages[1:])
    assert Image.open(io.BytesIO(data)).n_frames == 3
    out = decode_image(data, "stack.tiff")
    assert out.shape == (6, 8, 3) and (out == [0, 200, 0]).all()


def test_cmyk_grayscale_alpha_and_float_tiffs_become_rgb():
    cmyk = decode_image(_encode(Image.new("CMYK", (4, 4), (0, 255, 255, 0)), "TIFF"), "cmyk.tif")
    assert (cmyk == [255, 0, 0]).all()  # no cyan/black, full magenta + yellow = red (uncompressed: exact)
    gray = np.array([[0, 100], [200, 255]], dtype=np.uint8)
    assert (decode_image(_encode(Image.fromarray(gray), "TIFF"))[..., 1] == gray).all()
    rgba = np.array([[[255, 0, 0, 0], [0, 0, 255, 255]]], dtype=np.uint8)
    assert decode_image(_encode(Image.fromarray(rgba, "RGBA"), "TIFF"))[0].tolist() == [[255, 255, 255],
                                                                                         [0, 0, 255]]
    unit = np.array([[0.0, 0.5, 1.0]], dtype=np.float32)  # a float map in [0, 1] (OpenCV writes 32-bit float)
    assert decode_image(_cv2_tiff(unit), "float.tif")[0, :, 0].tolist() == [0, 128, 255]


def test_huge_tiff_header_is_refused_before_decoding():
    image = Image.new("L", (1, 1))
    data = bytearray(_encode(image, "TIFF"))
    # patch the ImageWidth / ImageLength tags (256, 257) of the first IFD to 30000 × 30000
    ifd = int.from_bytes(data[4:8], "little")
    for entry in range(int.from_bytes(data[ifd:ifd + 2], "little")):
        at = ifd + 2 + 12 * entry
        if int.from_bytes(data[at:at + 2], "little") in (256, 257):
            kind = int.from_bytes(data[at + 2:at + 4], "little")
            data[at + 8:at + 12] = (30_000).to_bytes(4 if kind == 4 else 2, "little").ljust(4, b"\0")
    with pytest.raises(ImageDecodeError, match=r"^big\.tif: is (far too large|30000×30000 pixels)"):
        decode_image(bytes(data), "big.tif")


def _oriented_jpeg(orientation: int) -> bytes:
    """A 40×20 (W×H) photo, red block at the stored top-left, with the given EXIF orientation."""
    pixels = np.zeros((20, 40, 3), dtype=np.uint8)
    pixels[:5, :5] = (255, 0, 0)
    exif = Image.Exif()
    exif[0x0112] = orientation
    return _encode(Image.fromarray(pixels), "JPEG", quality=95, exif=exif.tobytes())


def test_exif_orientation_6_is_applied_to_uploads():
    out = decode_image(_oriented_jpeg(6), "phone.jpg")
    # orientation 6 = displayed after a 90° clockwise turn: 20 wide, 40 tall, stored top-left → top-right
    assert out.shape == (40, 20, 3)
    assert out[2, 17, 0] > 200 and out[2, 2, 0] < 50


def test_exif_orientation_can_be_ignored_for_dataset_photos():
    out = decode_image(_oriented_jpeg(6), "dataset.jpg", apply_exif=False)
    assert out.shape == (20, 40, 3)
    assert out[2, 2, 0] > 200


def test_invalid_exif_orientation_value_is_ignored():
    out = decode_image(_oriented_jpeg(0), "odd.jpg")
    assert out.shape == (20, 40, 3)


# --- files ---------------------------------------------------------------------------------------------

def test_read_image_refuses_missing_files_and_folders(tmp_path):
    with pytest.raises(ImageDecodeError, match=r"nope\.jpg: cannot be opened .*Check that the file exists"):
        read_image(tmp_path / "nope.jpg")
    with pytest.raises(ImageDecodeError, match="is not a regular file"):
        read_image(tmp_path)


def test_read_image_names_the_file_in_errors(tmp_path):
    fake = tmp_path / "report.jpg"
    fake.write_bytes(b"%PDF-1.4 fake")
    with pytest.raises(ImageDecodeError, match=rf"^{tmp_path}/report\.jpg: is a PDF document"):
        read_image(fake)


def test_read_image_on_real_photos():
    folder = require_shared(SHARED_CARS) / "cars_train"
    out = read_image(folder / "00028.jpg", apply_exif=False)
    with Image.open(folder / "00028.jpg") as reference:
        assert out.shape == (reference.height, reference.width, 3)
        assert (out == np.asarray(reference.convert("RGB"))).all()
    # 00286.jpg carries EXIF orientation 0 (invalid): decoded unchanged, no warning turned into an error
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_image(folder / "00286.jpg").shape == (768, 1024, 3)

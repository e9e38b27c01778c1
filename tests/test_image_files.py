"""Image and mask files: exact round trips at 8 and 16 bits, the mask rules, atomic writes, clear errors."""

from __future__ import annotations

import io
import os
import struct
import time
import warnings
import zlib

import numpy as np
import png
import pytest
import tifffile
from PIL import Image, ImageCms

from daemon import files as image_files
from daemon.files import ImageFileError, PrecisionWarning, check_writable, read_image, to_8_bit, write_image
from daemon.image_headers import format_of, stored_layout
from daemon.masks import MASK_SNAP, read_mask

LAYOUTS = {"grey": (), "grey+alpha": (2,), "rgb": (3,), "rgba": (4,)}


def random_pixels(dtype, layout: str, height: int = 7, width: int = 9, seed: int = 0) -> np.ndarray:
    top = np.iinfo(dtype).max
    pixels = np.random.default_rng(seed).integers(0, top + 1, (height, width, *LAYOUTS[layout]), dtype=np.int64)
    pixels[0, 0] = 0  # the extremes must survive too
    pixels[-1, -1] = top
    return pixels.astype(dtype)


# ------------------------------------------------------------------------------------------------ round trips


@pytest.mark.parametrize("extension", [".png", ".tif", ".tiff"])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_lossless_round_trip_keeps_depth_channels_and_values(tmp_path, extension, dtype, layout):
    pixels = random_pixels(dtype, layout)
    path = tmp_path / f"image{extension}"
    write_image(path, pixels)
    back = read_image(path)
    assert back.dtype == dtype
    assert back.shape == pixels.shape
    np.testing.assert_array_equal(back, pixels)


@pytest.mark.parametrize("layout", ["rgb", "rgba", "grey+alpha"])
def test_16_bit_colour_png_really_is_16_bit_on_disk(tmp_path, layout):
    pixels = random_pixels(np.uint16, layout)
    write_image(tmp_path / "deep.png", pixels)
    _, _, rows, info = png.Reader(filename=str(tmp_path / "deep.png")).read()
    assert info["bitdepth"] == 16
    on_disk = np.array([np.frombuffer(row, dtype=np.uint16) for row in rows]).reshape(pixels.shape)
    np.testing.assert_array_equal(on_disk, pixels)


def test_16_bit_rgb_tiff_really_is_16_bit_on_disk(tmp_path):
    pixels = random_pixels(np.uint16, "rgb")
    write_image(tmp_path / "deep.tif", pixels)
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "deep.tif"), pixels)


def test_reads_16_bit_rgb_png_written_by_another_encoder_where_pillow_gives_8_bits(tmp_path):
    pixels = random_pixels(np.uint16, "rgb")
    path = tmp_path / "other.png"
    with path.open("wb") as f:
        png.Writer(9, 7, greyscale=False, bitdepth=16, interlace=True).write(f, pixels.reshape(7, -1))
    assert Image.open(path).mode == "RGB"  # Pillow's view: 8 bits, which is why it is not used here
    np.testing.assert_array_equal(read_image(path), pixels)


def test_16_bit_png_colour_key_transparency_becomes_alpha(tmp_path):
    grey = np.array([[0, 1000], [65535, 1000]], dtype=np.uint16)
    path = tmp_path / "key.png"
    with path.open("wb") as f:
        png.Writer(2, 2, greyscale=True, bitdepth=16, transparent=1000).write(f, grey)
    pixels = read_image(path)
    np.testing.assert_array_equal(pixels[..., 0], grey)
    np.testing.assert_array_equal(pixels[..., 1], [[65535, 0], [65535, 0]])


def test_planar_16_bit_tiff_comes_back_interleaved(tmp_path):
    pixels = random_pixels(np.uint16, "rgb")
    tifffile.imwrite(tmp_path / "planar.tif", np.moveaxis(pixels, -1, 0), photometric="rgb", planarconfig="separate")
    np.testing.assert_array_equal(read_image(tmp_path / "planar.tif"), pixels)


def test_min_is_white_16_bit_tiff_is_inverted_to_min_is_black(tmp_path):
    grey = random_pixels(np.uint16, "grey")
    tifffile.imwrite(tmp_path / "white.tif", grey, photometric="miniswhite")
    np.testing.assert_array_equal(read_image(tmp_path / "white.tif"), 65535 - grey)


def test_premultiplied_16_bit_tiff_alpha_is_made_straight(tmp_path):
    straight = np.array([[[40000, 20000, 0, 32768], [123, 456, 789, 0]]], dtype=np.uint16)
    premultiplied = straight.copy()
    premultiplied[..., :3] = np.rint(straight[..., :3] * (straight[..., 3:] / 65535.0)).astype(np.uint16)
    tifffile.imwrite(tmp_path / "assoc.tif", premultiplied, photometric="rgb", extrasamples=["assocalpha"])
    back = read_image(tmp_path / "assoc.tif")
    np.testing.assert_allclose(back[0, 0].astype(float), straight[0, 0], atol=2)
    np.testing.assert_array_equal(back[0, 1], [0, 0, 0, 0])


def test_16_bit_grey_tiff_from_pillow(tmp_path):
    grey = random_pixels(np.uint16, "grey")
    Image.fromarray(grey).save(tmp_path / "grey.tif")
    back = read_image(tmp_path / "grey.tif")
    assert back.dtype == np.uint16
    np.testing.assert_array_equal(back, grey)


def test_8_bit_lzw_tiff_goes_through_pillow(tmp_path):
    pixels = random_pixels(np.uint8, "rgb")
    Image.fromarray(pixels).save(tmp_path / "lzw.tif", compression="tiff_lzw")
    np.testing.assert_array_equal(read_image(tmp_path / "lzw.tif"), pixels)


def test_palette_png_with_transparency_reads_as_rgba(tmp_path):
    palette_image = Image.new("P", (3, 2), 1)
    palette_image.putpalette([0, 0, 0, 255, 0, 0])
    palette_image.putpixel((0, 0), 0)
    palette_image.save(tmp_path / "palette.png", transparency=0)
    pixels = read_image(tmp_path / "palette.png")
    assert pixels.shape == (2, 3, 4)
    assert pixels[0, 0, 3] == 0 and pixels[1, 1, 3] == 255
    assert tuple(pixels[1, 1, :3]) == (255, 0, 0)


def test_bilevel_image_reads_as_8_bit_grey(tmp_path):
    Image.new("1", (4, 3), 1).save(tmp_path / "bits.png")
    pixels = read_image(tmp_path / "bits.png")
    assert pixels.dtype == np.uint8 and pixels.shape == (3, 4)
    assert (pixels == 255).all()


def test_jpeg_is_written_and_read_as_8_bit(tmp_path):
    pixels = np.full((8, 8, 3), (200, 100, 50), dtype=np.uint8)
    write_image(tmp_path / "photo.jpg", pixels)
    back = read_image(tmp_path / "photo.jpg")
    assert back.dtype == np.uint8 and back.shape == pixels.shape
    assert np.abs(back.astype(int) - pixels).max() <= 2


def test_16_bit_to_jpeg_rounds_to_nearest_and_warns(tmp_path):
    pixels = np.full((8, 8, 3), 32896, dtype=np.uint16)  # 32896 / 257 = 128.0
    with pytest.warns(PrecisionWarning, match="8 bits"):
        write_image(tmp_path / "photo.jpeg", pixels)
    back = read_image(tmp_path / "photo.jpeg")
    assert back.dtype == np.uint8
    assert np.abs(back.astype(int) - 128).max() <= 1


def test_to_8_bit_rounds_half_up():
    values = np.array([0, 128, 129, 257, 32767, 32768, 65534, 65535], dtype=np.uint16)
    np.testing.assert_array_equal(to_8_bit(values), [0, 0, 1, 1, 127, 128, 255, 255])


def test_jpeg_drops_alpha_with_a_warning_only_when_it_held_transparency(tmp_path):
    opaque = np.full((4, 4, 4), 255, dtype=np.uint8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        write_image(tmp_path / "opaque.jpg", opaque)
    see_through = opaque.copy()
    see_through[0, 0, 3] = 0
    with pytest.warns(PrecisionWarning, match="alpha"):
        write_image(tmp_path / "see-through.jpg", see_through)
    assert read_image(tmp_path / "see-through.jpg").shape == (4, 4, 3)


def test_jpeg_pixels_are_used_as_stored_and_the_orientation_travels_to_the_output(tmp_path):
    stored = np.zeros((4, 6, 3), dtype=np.uint8)  # 6 wide, 4 high as stored; EXIF says "rotate 90 to show"
    exif = Image.Exif()
    exif[image_files.EXIF_ORIENTATION] = 6
    Image.fromarray(stored).save(tmp_path / "rotated.jpg", exif=exif)
    pixels = read_image(tmp_path / "rotated.jpg")
    assert pixels.shape == (4, 6, 3)
    for name in ("out.png", "out.jpg", "out.tif"):
        write_image(tmp_path / name, pixels, like=tmp_path / "rotated.jpg")
        assert Image.open(tmp_path / name).getexif().get(image_files.EXIF_ORIENTATION) == 6, name
    write_image(tmp_path / "deep.png", pixels.astype(np.uint16) * 257, like=tmp_path / "rotated.jpg")
    assert Image.open(tmp_path / "deep.png").getexif().get(image_files.EXIF_ORIENTATION) == 6


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("extension", [".png", ".tif", ".jpg"])
def test_icc_profile_of_the_source_is_kept(tmp_path, dtype, extension):
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    Image.new("RGB", (3, 3)).save(tmp_path / "source.png", icc_profile=profile)
    pixels = np.zeros((3, 3, 3), dtype=dtype)
    out = tmp_path / f"out{extension}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PrecisionWarning)
        write_image(out, pixels, like=tmp_path / "source.png")
    assert Image.open(out).info.get("icc_profile") == profile


# ------------------------------------------------------------------------------------------------ read errors


def bad_file(tmp_path, name: str, content: bytes):
    path = tmp_path / name
    path.write_bytes(content)
    return path


@pytest.mark.parametrize(("make", "reason"), [
    (lambda tmp: tmp / "missing.png", "no such file"),
    (lambda tmp: tmp, "is a directory"),
    (lambda tmp: bad_file(tmp, "empty.png", b""), "empty"),
    (lambda tmp: bad_file(tmp, "noise.png", b"this is not an image at all"), "unsupported format"),
    (lambda tmp: bad_file(tmp, "cut.png", image_bytes("PNG")[:60]), "cannot decode"),
    (lambda tmp: bad_file(tmp, "cut.jpg", image_bytes("JPEG")[:200]), "cannot decode"),
    (lambda tmp: bad_file(tmp, "cut.tif", image_bytes("TIFF")[:40]), "cannot decode"),
    (lambda tmp: bad_file(tmp, "picture.png", image_bytes("BMP")), "BMP"),
    (lambda tmp: bad_file(tmp, "cmyk.jpg", image_bytes("JPEG", mode="CMYK")), "CMYK"),
])
def test_unreadable_files_raise_image_file_error_naming_path_and_reason(tmp_path, make, reason):
    path = make(tmp_path)
    with pytest.raises(ImageFileError, match=reason) as caught:
        read_image(path)
    assert str(path) in str(caught.value)


def image_bytes(format_name: str, mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    noise = np.random.default_rng(1).integers(0, 255, (32, 32, 4 if mode == "CMYK" else 3), dtype=np.uint8)
    Image.fromarray(noise, mode=mode).save(buffer, format=format_name)
    return buffer.getvalue()


def test_float_tiff_is_refused_with_the_sample_type(tmp_path):
    tifffile.imwrite(tmp_path / "float.tif", np.zeros((4, 4), dtype=np.float32))
    with pytest.raises(ImageFileError, match="sample type"):
        read_image(tmp_path / "float.tif")


# ------------------------------------------------------------------------------------------------ masks


def save(tmp_path, name: str, pixels: np.ndarray):
    path = tmp_path / name
    write_image(path, pixels)
    return path


def test_mask_white_is_hole_black_is_keep_grey_blends(tmp_path):
    mask_pixels = np.array([[0, 255, 128]], dtype=np.uint8)
    mask = read_mask(save(tmp_path, "mask.png", mask_pixels), np.zeros((1, 3, 3), np.uint8))
    assert mask.dtype == np.float32 and mask.shape == (1, 3)
    np.testing.assert_allclose(mask, [[0.0, 1.0, 128 / 255]], rtol=1e-6)


def test_16_bit_mask_keeps_its_precision(tmp_path):
    mask = read_mask(save(tmp_path, "mask.tif", np.array([[0, 65535, 30000]], np.uint16)), np.zeros((1, 3)))
    np.testing.assert_allclose(mask, [[0.0, 1.0, 30000 / 65535]], rtol=1e-6)


def test_colour_mask_counts_by_luminance(tmp_path):
    colours = np.array([[[255, 0, 0], [0, 255, 0], [255, 255, 255]]], dtype=np.uint8)
    mask = read_mask(save(tmp_path, "mask.png", colours), np.zeros((1, 3)))
    np.testing.assert_allclose(mask, [[0.299, 0.587, 1.0]], atol=1e-6)


def test_near_black_and_near_white_snap_so_jpeg_noise_is_not_a_hole(tmp_path):
    noisy = np.array([[0, 2, 3, 252, 253, 255, 100]], dtype=np.uint8)
    assert 3 / 255 < MASK_SNAP < 5 / 255
    mask = read_mask(save(tmp_path, "mask.png", noisy), np.zeros((1, 7)))
    np.testing.assert_allclose(mask, [[0, 0, 0, 1, 1, 1, 100 / 255]], atol=1e-6)


def test_mask_with_transparency_takes_its_hole_from_alpha_whatever_the_colour(tmp_path):
    layer = np.zeros((1, 3, 4), dtype=np.uint8)  # a hole painted in black on an otherwise empty layer
    layer[0, 1] = (0, 0, 0, 255)
    layer[0, 2] = (255, 0, 0, 128)
    mask = read_mask(save(tmp_path, "layer.png", layer), np.zeros((1, 3)))
    np.testing.assert_allclose(mask, [[0.0, 1.0, 128 / 255]], rtol=1e-6)


def test_opaque_mask_with_an_alpha_channel_is_read_by_luminance(tmp_path):
    opaque = np.array([[[0, 0, 0, 255], [255, 255, 255, 255]]], dtype=np.uint8)
    mask = read_mask(save(tmp_path, "opaque.png", opaque), np.zeros((1, 2)))
    np.testing.assert_array_equal(mask, [[0.0, 1.0]])


def test_no_mask_file_means_the_image_transparency_is_the_hole():
    image = np.zeros((1, 3, 4), dtype=np.uint16)
    image[0, :, 3] = (65535, 0, 32768)
    np.testing.assert_allclose(read_mask(None, image), [[0.0, 1.0, 1 - 32768 / 65535]], rtol=1e-6)
    grey_alpha = np.array([[[9, 255], [9, 0]]], dtype=np.uint8)
    np.testing.assert_array_equal(read_mask(None, grey_alpha), [[0.0, 1.0]])


def test_no_mask_file_and_no_alpha_is_an_error():
    with pytest.raises(ImageFileError, match="no alpha channel"):
        read_mask(None, np.zeros((4, 4, 3), np.uint8))


def test_mask_size_mismatch_names_both_sizes(tmp_path):
    path = save(tmp_path, "mask.png", np.zeros((4, 5), np.uint8))
    with pytest.raises(ImageFileError, match="the mask is 5x4 pixels but the image is 6x4") as caught:
        read_mask(path, np.zeros((4, 6, 3), np.uint8))
    assert str(path) in str(caught.value)
    with pytest.raises(ImageFileError, match="rotated"):
        read_mask(path, np.zeros((5, 4, 3), np.uint8))


# ------------------------------------------------------------------------------------------------ writing


def test_unknown_extension_fails_before_anything_is_written(tmp_path):
    with pytest.raises(ImageFileError, match="unknown output extension '.bmp'"):
        write_image(tmp_path / "out.bmp", np.zeros((2, 2), np.uint8))
    with pytest.raises(ImageFileError, match="none"):
        write_image(tmp_path / "out", np.zeros((2, 2), np.uint8))
    assert list(tmp_path.iterdir()) == []


def test_check_writable_refuses_a_missing_folder_and_an_unknown_extension(tmp_path):
    with pytest.raises(ImageFileError, match="does not exist"):
        check_writable(tmp_path / "nowhere" / "out.png")
    with pytest.raises(ImageFileError, match="unknown output extension"):
        check_writable(tmp_path / "out.gif")
    check_writable(tmp_path / "out.PNG")


def test_existing_file_is_replaced_and_keeps_its_permissions(tmp_path):
    path = tmp_path / "out.png"
    path.write_bytes(b"old")
    os.chmod(path, 0o640)
    write_image(path, np.full((2, 2), 7, np.uint8))
    assert (read_image(path) == 7).all()
    assert path.stat().st_mode & 0o777 == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]


def test_a_failed_write_leaves_the_old_file_untouched_and_no_temporary_file(tmp_path, monkeypatch):
    path = tmp_path / "out.png"
    path.write_bytes(b"old")

    def encoder_that_dies(f, pixels, metadata):
        f.write(b"half a picture")
        raise OSError("disk full")

    monkeypatch.setattr(image_files, "_write_png", encoder_that_dies)
    with pytest.raises(OSError, match="disk full"):
        write_image(path, np.zeros((2, 2), np.uint8))
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]


def test_new_file_gets_the_usual_permissions(tmp_path):
    write_image(tmp_path / "new.tif", np.zeros((2, 2), np.uint8))
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "new.tif").stat().st_mode & 0o777 == 0o666 & ~umask


@pytest.mark.parametrize("array", [np.zeros((2, 2), np.float32), np.zeros((2, 2, 5), np.uint8), np.zeros(4, np.uint8)])
def test_arrays_that_are_not_images_are_refused(tmp_path, array):
    with pytest.raises(ImageFileError):
        write_image(tmp_path / "out.png", array)
    assert list(tmp_path.iterdir()) == []


def png_header_only(width: int, height: int, depth: int = 16) -> bytes:
    """A PNG whose IHDR claims width x height (16-bit RGB) and whose pixel data never comes: what a bomb looks like
    before anything is decoded."""
    ihdr = struct.pack(">IIBBBBB", width, height, depth, 2, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return b"\x89PNG\r\n\x1a\n" + chunk


@pytest.mark.parametrize("depth", [8, 16])
def test_a_png_too_large_for_the_bomb_guard_is_refused_from_its_header(tmp_path, depth):
    path = tmp_path / "bomb.png"
    path.write_bytes(png_header_only(100_000, 100_000, depth))
    with pytest.raises(ImageFileError, match="too large to open safely: 100000x100000"):
        read_image(path)


def zeros_png(width: int, height: int, depth: int = 16, colour: int = 6) -> bytes:
    """A whole, valid PNG of zeros, made in milliseconds however large: one row is deflated once, ended by a full
    flush (byte-aligned, no references back), and that piece is repeated for every row."""
    channels = {0: 1, 2: 3, 4: 2, 6: 4}[colour]
    row = bytes(1 + width * channels * depth // 8)  # filter byte 0, then the samples
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    piece = deflate.compress(row) + deflate.flush(zlib.Z_FULL_FLUSH)
    size = len(row) * height
    adler = (size % 65521) << 16 | 1  # the Adler-32 of `size` zero bytes
    data = b"\x78\xda" + piece * height + b"\x03\x00" + struct.pack(">I", adler)  # b"\x03\x00": an empty last block

    def chunk(name: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + name + body + struct.pack(">I", zlib.crc32(name + body))

    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


def test_zeros_png_is_a_real_png():
    pixels = read_image_bytes(zeros_png(300, 200))
    assert pixels.shape == (200, 300, 4) and pixels.dtype == np.uint16 and not pixels.any()


def read_image_bytes(data: bytes) -> np.ndarray:
    width, height, rows, info = png.Reader(bytes=data).asDirect()
    return np.vstack([np.frombuffer(row, np.uint16) for row in rows]).reshape(height, width, info["planes"])


def test_the_bomb_guard_counts_bytes_a_small_16_bit_png_of_13000x13000_is_refused_undecoded(tmp_path):
    # 169 megapixels pass Pillow's pixel count; 16-bit RGBA makes them 1.4 GB of samples (5 GB and 80 s to fill).
    path = tmp_path / "deep-bomb.png"
    path.write_bytes(zeros_png(13000, 13000))
    assert path.stat().st_size < 3 << 20
    started = time.monotonic()
    with pytest.raises(ImageFileError, match=r"13000x13000 \(4 channels of 16 bits\) is 1934 MB once decoded, over "
                                             r"the 1194 MB of the decompression-bomb guard"):
        read_image(path)
    assert time.monotonic() - started < 1.0


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # Pillow's own, above MAX_IMAGE_PIXELS
@pytest.mark.parametrize(("dtype", "layout", "read"), [(np.uint8, "rgba", True), (np.uint16, "rgb", True),
                                                       (np.uint16, "rgba", False), (np.uint8, "grey", True)])
@pytest.mark.parametrize("extension", [".png", ".tif"])
def test_under_a_lower_limit_the_same_pixels_pass_or_not_by_their_bytes(tmp_path, monkeypatch, dtype, layout, read,
                                                                        extension):
    # The limit's knob is Pillow's: 1000 pixels (2000 at most) -> 14000 bytes, 8-bit RGB's 3 and the float32 mask's
    # 4 per pixel. 36x36 is 1296 pixels: 8 bytes each at 8-bit RGBA, 10 at 16-bit RGB, 12 (too many) at 16-bit RGBA.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    path = tmp_path / f"image{extension}"
    write_image(path, random_pixels(dtype, layout, 36, 36))
    if read:
        assert read_image(path).shape[:2] == (36, 36)
    else:
        with pytest.raises(ImageFileError, match=r"36x36 \(4 channels of 16 bits\) is 0 MB once decoded, over the"):
            read_image(path)


def palette_png(path, transparency: bool) -> None:
    palette_image = Image.new("P", (5, 4), 1)
    palette_image.putpalette([0, 0, 0, 255, 0, 0])
    palette_image.save(path, **({"transparency": 0} if transparency else {}))


LAYOUT_FILES = {
    **{f"{np.dtype(dtype).name} {layout}{extension}": (lambda path, d=dtype, k=layout: write_image(
        path, random_pixels(d, k))) for dtype in (np.uint8, np.uint16) for layout in LAYOUTS
       for extension in (".png", ".tif")},
    "rgb.jpg": lambda path: write_image(path, random_pixels(np.uint8, "rgb")),
    "grey.jpg": lambda path: write_image(path, random_pixels(np.uint8, "grey")),
    "palette.png": lambda path: palette_png(path, transparency=False),
    "palette with transparency.png": lambda path: palette_png(path, transparency=True),
    "palette.tif": lambda path: Image.new("P", (5, 4), 1).save(path),
    "bilevel.png": lambda path: Image.new("1", (5, 4), 1).save(path),
    "8-bit rgb colour key.png": lambda path: Image.new("RGB", (5, 4)).save(path, transparency=(0, 0, 0)),
    "16-bit grey colour key.png": lambda path: path.write_bytes(png_bytes(
        png.Writer(5, 4, greyscale=True, bitdepth=16, transparent=9), np.zeros((4, 5), np.uint16))),
}


def png_bytes(writer: png.Writer, rows: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    writer.write(buffer, rows)
    return buffer.getvalue()


@pytest.mark.parametrize("name", list(LAYOUT_FILES))
def test_the_guard_counts_the_layout_that_reading_gives(tmp_path, name):
    path = tmp_path / ("file" + name[name.rindex("."):])
    LAYOUT_FILES[name](path)
    header = path.read_bytes()[:64]
    pixels = read_image(path)
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    assert stored_layout(path, header, format_of(header)) == (pixels.shape[1], pixels.shape[0], channels,
                                                              pixels.itemsize)


def test_a_mask_of_the_wrong_size_is_refused_before_it_is_decoded(tmp_path):
    path = tmp_path / "mask.png"
    path.write_bytes(png_header_only(20_000, 20_000))  # would take seconds and gigabytes to decode, were it whole
    with pytest.raises(ImageFileError, match="the mask is 20000x20000 pixels but the image is 6x4"):
        read_mask(path, np.zeros((4, 6, 3), np.uint8))

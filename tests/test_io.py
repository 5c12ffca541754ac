import io
import os
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from roadfeat.io import (InputError, atomic_path, find_images, read_image, read_mask,
                         write_mask)


def _save(path, arr, fmt=None, **kw):
    Image.fromarray(arr).save(path, format=fmt, **kw)
    return path


def _rgb(h=32, w=32):
    return (np.arange(h * w * 3) % 251).astype(np.uint8).reshape(h, w, 3)


def test_reads_rgb_jpeg(tmp_path):
    p = _save(tmp_path / "a_sat.jpg", _rgb())
    assert read_image(p).shape == (32, 32, 3)


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "LA"])
def test_accepts_grey_rgba_palette_by_conversion(tmp_path, mode):
    p = tmp_path / "a_sat.png"
    Image.fromarray(_rgb()).convert(mode).save(p)
    out = read_image(p)
    assert out.shape == (32, 32, 3) and out.dtype == np.uint8


def test_refuses_16_bit(tmp_path):
    p = tmp_path / "a_sat.png"
    Image.fromarray((np.arange(32 * 32).reshape(32, 32) * 50).astype(np.uint16)).save(p)
    with pytest.raises(InputError, match=r"a_sat\.png: .*8-bit"):
        read_image(p)


def test_empty_file(tmp_path):
    p = tmp_path / "a_sat.jpg"
    p.write_bytes(b"")
    with pytest.raises(InputError, match=r"a_sat\.jpg: empty file"):
        read_image(p)


def test_text_named_jpg(tmp_path):
    p = tmp_path / "a_sat.jpg"
    p.write_text("hello, I am not an image")
    with pytest.raises(InputError, match="not a readable image"):
        read_image(p)


def test_truncated_jpeg(tmp_path):
    buf = io.BytesIO()
    Image.fromarray(_rgb(256, 256)).save(buf, format="JPEG")
    p = tmp_path / "a_sat.jpg"
    p.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(InputError, match="corrupt or truncated"):
        read_image(p)


def test_tiny_image(tmp_path):
    p = _save(tmp_path / "a_sat.png", _rgb(5, 7))
    with pytest.raises(InputError, match="7x5"):
        read_image(p)


def _png_header_only(width, height):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def test_decompression_bomb_header(tmp_path):
    p = tmp_path / "a_sat.png"
    p.write_bytes(_png_header_only(100000, 100000))
    with pytest.raises(InputError, match="decompression bomb"):
        read_image(p)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read any file")
def test_unreadable_file(tmp_path):
    p = _save(tmp_path / "a_sat.png", _rgb())
    p.chmod(0)
    with pytest.raises(InputError, match="permission denied"):
        read_image(p)


def test_mask_binarised_at_128(tmp_path):
    m = np.zeros((32, 64), np.uint8)
    m[:, :11] = 250
    m[:, 11] = 129
    m[:, 12] = 127
    m[:, 13:16] = 3
    p = _save(tmp_path / "a_mask.png", np.repeat(m[:, :, None], 3, axis=2))
    out = read_mask(p)
    assert out[:, :12].all() and not out[:, 12:].any()


def test_mask_size_mismatch(tmp_path):
    p = _save(tmp_path / "a_mask.png", np.zeros((20, 32), np.uint8))
    with pytest.raises(InputError, match=r"a_mask\.png: mask is 32x20 but its image is 32x32"):
        read_mask(p, (32, 32, 3))


def test_mask_not_binary_like(tmp_path):
    p = _save(tmp_path / "a_mask.png", np.full((32, 32), 100, np.uint8))
    with pytest.raises(InputError, match="not binary-like"):
        read_mask(p)


def test_folder_with_no_images(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(InputError, match="no images"):
        find_images(tmp_path)


def test_two_images_for_one_id(tmp_path):
    _save(tmp_path / "x_sat.jpg", _rgb())
    _save(tmp_path / "x_sat.png", _rgb())
    _save(tmp_path / "y_sat.png", _rgb())
    images, errors = find_images(tmp_path)
    assert list(images) == ["y"]
    assert "two images for one id" in str(errors["x"])


def test_write_mask_is_3_channel_0_255(tmp_path):
    m = np.zeros((16, 20), bool)
    m[3:5] = True
    write_mask(tmp_path / "a_mask.png", m)
    arr = np.asarray(Image.open(tmp_path / "a_mask.png"))
    assert arr.shape == (16, 20, 3) and set(np.unique(arr)) == {0, 255}
    assert (read_mask(tmp_path / "a_mask.png") == m).all()


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.bin"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


def test_an_image_that_viewers_rotate_is_read_unrotated_with_a_warning(tmp_path, caplog):
    rgb = np.zeros((20, 30, 3), np.uint8)
    rgb[:5] = 255
    exif = Image.Exif()
    exif[274] = 6  # viewers rotate it 90 degrees clockwise
    Image.fromarray(rgb).save(tmp_path / "r_sat.png", exif=exif)
    Image.fromarray(rgb).save(tmp_path / "plain_sat.png")
    with caplog.at_level("WARNING", logger="roadfeat"):
        got = read_image(tmp_path / "r_sat.png")
        read_image(tmp_path / "plain_sat.png")
    assert got.shape == (20, 30, 3) and (got[:5] == 255).all()
    warned = [r.getMessage() for r in caplog.records]
    assert len(warned) == 1 and "r_sat.png" in warned[0] and "orientation 6" in warned[0]


def test_size_limit_is_roadfeats_not_pillows(tmp_path, monkeypatch):
    # A 10000^2 scene is over Pillow's default guard (89 M pixels) but within
    # roadfeat's documented 20000^2; Pillow's guard must not decide.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    p = _save(tmp_path / "a_sat.png", _rgb())
    assert read_image(p).shape[:2] == _rgb().shape[:2]
    assert Image.MAX_IMAGE_PIXELS == 1000  # restored
    big = tmp_path / "b_sat.png"
    big.write_bytes(_png_header_only(10000, 10000))
    with pytest.raises(InputError) as err:
        read_image(big)
    assert "decompression bomb" not in str(err.value)  # refused only as truncated
    bomb = tmp_path / "c_sat.png"
    bomb.write_bytes(_png_header_only(30000, 20000))
    with pytest.raises(InputError, match=r"30000x20000, over the 400000000 pixel limit"):
        read_image(bomb)

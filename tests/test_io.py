import numpy as np
import pytest

from deepprior.errors import InputError, OutputExistsError
from deepprior.io import check_output, load_image, load_kernel, load_mask, save_image


@pytest.mark.parametrize("ext", [".png", ".tif"])
@pytest.mark.parametrize("depth", [8, 16])
@pytest.mark.parametrize("channels", [1, 3, 4])
def test_roundtrip_bit_depths(tmp_path, ext, depth, channels):
    rng = np.random.default_rng(0)
    a = rng.random((9, 11, channels)).astype(np.float32)
    data, alpha = (a[..., :3], a[..., 3]) if channels == 4 else (a, None)
    p = tmp_path / f"x{ext}"
    save_image(p, data, alpha, depth)
    img = load_image(p)
    assert img.bit_depth == depth and img.data.shape == data.shape
    tol = 0.5 / (255 if depth == 8 else 65535) + 1e-7
    assert np.abs(img.data - data).max() <= tol
    if channels == 4:
        assert img.alpha is not None and np.abs(img.alpha - alpha).max() <= tol


def test_corrupt_and_missing_files(tmp_path):
    good = tmp_path / "g.png"
    save_image(good, np.zeros((8, 8, 3)))
    bad = tmp_path / "bad.png"
    bad.write_bytes(good.read_bytes()[:40])
    with pytest.raises(InputError, match="cannot read image"):
        load_image(bad)
    with pytest.raises(InputError, match="does not exist"):
        load_image(tmp_path / "nope.png")
    with pytest.raises(InputError, match="directory"):
        load_image(tmp_path)
    empty = tmp_path / "e.png"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        load_image(empty)
    txt = tmp_path / "t.jpg"
    txt.write_text("not an image")
    with pytest.raises(InputError):
        load_image(txt)


def test_npy_pickles_refused(tmp_path):
    p = tmp_path / "m.npy"
    np.save(p, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(InputError, match="pickle"):
        load_mask(p, (1, 1))


def test_masks(tmp_path):
    m = np.zeros((6, 7), bool)
    m[:, :3] = True
    np.save(tmp_path / "m.npy", m)
    assert np.array_equal(load_mask(tmp_path / "m.npy", (6, 7)), m)
    save_image(tmp_path / "m.png", m.astype(float))
    assert np.array_equal(load_mask(tmp_path / "m.png", (6, 7)), m)
    with pytest.raises(InputError, match="must match"):
        load_mask(tmp_path / "m.npy", (7, 7))
    np.save(tmp_path / "z.npy", np.zeros((6, 7)))
    with pytest.raises(InputError, match="no pixel"):
        load_mask(tmp_path / "z.npy", (6, 7))


def test_kernel_and_output_checks(tmp_path):
    np.save(tmp_path / "k.npy", np.ones((3, 3)))
    assert load_kernel(tmp_path / "k.npy").sum() == pytest.approx(1)
    np.save(tmp_path / "kb.npy", -np.ones((3, 3)))
    with pytest.raises(InputError):
        load_kernel(tmp_path / "kb.npy")
    (tmp_path / "o.png").write_bytes(b"x")
    with pytest.raises(OutputExistsError):
        check_output(tmp_path / "o.png")
    assert check_output(tmp_path / "o.png", overwrite=True)
    with pytest.raises(InputError, match="does not exist"):
        check_output(tmp_path / "missing" / "o.png")
    with pytest.raises(InputError, match="extension"):
        check_output(tmp_path / "o.gifx")

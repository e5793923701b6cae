"""One image decoder for the package: no module but ``data/images.py`` calls an image decoder,
and every reader (train cache, test loader, embedder, extract, reports, data info) gets the
same pixels, the first frame of a multi-frame file included."""

from __future__ import annotations

import ast
import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import reidkit
from reidkit.data.decode import decode_records, decode_resized
from reidkit.data.images import decode_chw, decode_rgb, image_header, read_rgb
from reidkit.data.loaders import TestLoader
from reidkit.data.records import Record
from reidkit.data.sources import FolderSource
from reidkit.deploy.preprocess import load_image
from reidkit.utils.errors import DataError

SRC = Path(reidkit.__file__).parent
THE_DECODER = "data/images.py"
# Functions that turn encoded image bytes (or an image file) into pixels, by library.
DECODERS = {
    "PIL": {"open", "frombytes", "frombuffer"},  # PIL.Image.<name>; also ImageFile.Parser
    "torchvision.io": {
        "decode_image",
        "decode_jpeg",
        "decode_png",
        "decode_gif",
        "decode_webp",
        "decode_avif",
        "decode_heic",
        "read_image",
        "read_file",
    },  # fmt: skip
    "cv2": {
        "imread",
        "imdecode",
        "imreadmulti",
        "imreadanimation",
        "imdecodemulti",
        "imcount",
        "VideoCapture",  # opens image files and image sequences too
    },  # fmt: skip
}
IMAGE_LIBS = ("imageio", "skimage.io", "tifffile", "pyvips", "simplejpeg", "turbojpeg")
# Allowed calls that look like image reading, with the reason.
ALLOWED = {
    ("data/video.py", "cv2.VideoCapture"): "reads frames of a video stream (a video decoder, "
    "not an image file); the frames arrive as arrays and are cropped, never re-decoded",
}


def _aliases(tree: ast.AST) -> dict[str, str]:
    """Local name -> the module it stands for (PIL.Image, cv2, torchvision.io ...)."""
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                top = a.name.split(".")[0]
                names[a.asname or top] = a.name if a.asname else top
        elif isinstance(node, ast.ImportFrom) and node.module:
            for a in node.names:
                names[a.asname or a.name] = f"{node.module}.{a.name}"
    return names


def _dotted(node: ast.AST, aliases: dict[str, str]) -> str | None:
    """``a.b.c`` of an attribute chain with its first name resolved through the imports."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return ".".join([aliases.get(node.id, node.id), *reversed(parts)])


def _is_decoder(full: str) -> bool:
    lib, _, func = full.rpartition(".")
    if lib in ("PIL.Image", "PIL.ImageFile") and func in DECODERS["PIL"] | {"Parser"}:
        return True
    if lib.startswith("torchvision.io") and func in DECODERS["torchvision.io"]:
        return True
    if lib == "cv2" and func in DECODERS["cv2"]:
        return True
    return any(full == m or full.startswith(m + ".") for m in IMAGE_LIBS)


def decoder_calls(source: str, rel: str) -> list[str]:
    """``rel:line: name`` of every use of an image decoder in ``source`` not in ``ALLOWED``."""
    tree = ast.parse(source)
    aliases = _aliases(tree)
    found = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, (ast.Attribute, ast.Name)):
            full = _dotted(node, aliases)
            names = [full] if full else []
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for full in names:
            if (rel, full) not in ALLOWED and _is_decoder(full):
                found.append(f"{rel}:{node.lineno}: {full}")
    return found


def test_no_module_but_images_py_calls_an_image_decoder():
    found = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        if rel != THE_DECODER:
            found += decoder_calls(path.read_text(encoding="utf-8"), rel)
    assert not found, "image decoders outside reidkit/data/images.py:\n" + "\n".join(found)
    # the decoder module itself is seen by the scanner (the guard looks where it should)
    assert decoder_calls((SRC / THE_DECODER).read_text(encoding="utf-8"), THE_DECODER)
    video = (SRC / "data" / "video.py").read_text(encoding="utf-8")
    assert "VideoCapture" in video and not decoder_calls(video, "data/video.py")


@pytest.mark.parametrize(
    "snippet",
    [
        "from PIL import Image\nImage.open('a.jpg')",
        "import PIL.Image\nPIL.Image.open('a.jpg')",
        "from PIL import Image as I\nim = I.open(f)",
        "from PIL.Image import open as pil_open",
        "from torchvision.io import decode_image",
        "import torchvision\ntorchvision.io.decode_jpeg(x)",
        "from torchvision.io import read_image",
        "import cv2\ncv2.imread('a.jpg')",
        "import cv2 as cv\ncv.imdecode(buf, 1)",
        "import imageio.v3 as iio",
        "from PIL import ImageFile\nImageFile.Parser()",
        "import cv2\ncv2.VideoCapture('a.avi')",  # allowed in data/video.py only
    ],
)
def test_the_guard_sees_every_kind_of_decoder_call(snippet: str):
    assert decoder_calls(snippet, "data/other.py"), snippet


def test_writers_and_pixels_from_arrays_are_not_decoders():
    ok = (
        "import cv2\nfrom PIL import Image\nimport numpy as np\n"
        "cv2.imencode('.jpg', a)\nImage.fromarray(a).save('x.png')\nImage.new('RGB', (2, 2))\n"
        "np.frombuffer(b, np.uint8)\n"
    )
    assert decoder_calls(ok, "data/other.py") == []


def _frames() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    a = np.zeros((64, 32, 3), np.uint8)
    a[:32] = (200, 30, 30)  # frame 0: red top, blue bottom; frame 1: noise
    a[32:] = (30, 30, 200)
    return [a, rng.integers(0, 256, (64, 32, 3), dtype=np.uint8)]


def _multi_frame(fmt: str) -> bytes:
    first, *rest = (Image.fromarray(f) for f in _frames())
    buf = io.BytesIO()
    first.save(buf, fmt, save_all=True, append_images=rest)
    return buf.getvalue()


def _pil_first_frame(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        im.seek(0)
        return np.array(im.convert("RGBA" if im.mode == "P" else "RGB").convert("RGB"))


@pytest.mark.parametrize("fmt", ["GIF", "PNG", "TIFF", "WEBP"])
def test_multi_frame_files_give_their_first_frame_everywhere(fmt: str, tmp_path: Path):
    data = _multi_frame(fmt)
    header = image_header(data)
    assert header.frames == 2 and (header.width, header.height) == (32, 64)
    want = _pil_first_frame(data)
    if fmt != "WEBP":  # lossy: close to, not equal to, the first frame
        assert np.abs(want.astype(int) - _frames()[0]).max() <= 8
    path = tmp_path / "0001_c1s1_000001_00.jpg"  # a multi-frame file with a .jpg name
    path.write_bytes(data)
    chw = want.transpose(2, 0, 1)
    assert np.array_equal(decode_rgb(data), want)
    assert np.array_equal(read_rgb(path), want)
    assert np.array_equal(load_image(str(path)), want)  # the embedder / extract path
    assert np.array_equal(decode_chw(data).numpy(), chw)
    assert np.array_equal(decode_resized(data, 64, 32).numpy(), chw)
    assert decode_resized(data, 32, 16).shape == (3, 32, 16)
    source = FolderSource(tmp_path)
    cached = decode_records([Record(path.name, 1, 0)], source, 64, 32, progress=False)
    assert np.array_equal(cached.images[0].numpy(), chw) and not cached.failures


def test_a_test_loader_batch_mixes_gif_named_jpg_with_stills(tmp_path: Path):
    """The reported bug: a two-frame GIF named .jpg among query JPEGs stopped evaluation with
    'stack expects each tensor to be equal size'."""
    names = []
    for i in range(9):
        name = f"{i + 1:04d}_c1s1_00000{i}_00.jpg"
        Image.fromarray(_frames()[1]).save(tmp_path / name, "JPEG")
        names.append(name)
    (tmp_path / names[7]).write_bytes(_multi_frame("GIF"))
    records = [Record(n, i + 1, 0) for i, n in enumerate(names)]
    for cache in ("none", "ram"):
        loader = TestLoader(
            records, FolderSource(tmp_path), height=32, width=16, batch_size=16,
            cache=cache, num_workers=0,
        )  # fmt: skip
        (batch,) = list(loader)
        assert batch.images.shape == (9, 3, 32, 16) and loader.delivered == list(range(9))


def _still(fmt: str, mode: str, **kw) -> bytes:
    rng = np.random.default_rng(1)
    small = rng.integers(0, 256, (12, 6, 3), dtype=np.uint8)
    im = Image.fromarray(small).resize((48, 96), Image.BILINEAR).convert(mode)
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


@pytest.mark.parametrize(
    "fmt,mode,kw",
    [
        ("JPEG", "RGB", {"quality": 90}),
        ("JPEG", "RGB", {"quality": 70, "progressive": True}),
        ("JPEG", "RGB", {"quality": 80, "subsampling": 0}),
        ("JPEG", "L", {}),
        ("JPEG", "CMYK", {}),
        ("PNG", "RGB", {}),
        ("PNG", "L", {}),
        ("PNG", "RGBA", {}),
        ("PNG", "P", {}),
        ("BMP", "RGB", {}),
        ("WEBP", "RGB", {"lossless": True}),
    ],
)
def test_fast_and_pil_paths_give_the_same_pixels(fmt: str, mode: str, kw: dict):
    data = _still(fmt, mode, **kw)
    with Image.open(io.BytesIO(data)) as im:
        im = im.convert("RGBA") if im.mode == "P" else im
        want = np.array(im.convert("RGB"))
    got = decode_rgb(data, "x")
    assert got.dtype == np.uint8 and got.flags.c_contiguous and got.flags.writeable
    assert np.array_equal(got, want)
    assert torch.equal(decode_chw(data), torch.from_numpy(want).permute(2, 0, 1))


def test_a_truncated_jpeg_fails_the_same_way_on_every_path():
    data = _still("JPEG", "RGB", quality=95)
    cut = data[: len(data) * 2 // 3]
    with pytest.raises(DataError, match="x: not a readable image.*runcated"):
        decode_rgb(cut, "x")
    with pytest.raises(DataError, match="x: not a readable image.*runcated"):
        decode_chw(cut, "x")

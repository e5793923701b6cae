"""``Embedder``: person crops in, embeddings out, with onnxruntime or PyTorch behind one API.

    emb = Embedder.from_onnx("runs/demo/model.onnx", threads=4)
    feats = emb.embed(["a.jpg", pil_image, hwc_uint8_array])   # (3, D) float32

Both backends read images the same way (``preprocess.load_image``) and resize / normalise them
with the same arithmetic, so an ONNX model and the checkpoint it came from give the same numbers
(to float tolerance). Batching happens inside ``embed``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from reidkit.deploy.onnx_meta import read_onnx_info
from reidkit.deploy.preprocess import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    ImageLike,
    load_image,
    preprocess_images,
)
from reidkit.deploy.runtime import create_session
from reidkit.evaluation.features import inference_layout
from reidkit.models.checkpoint import resolve_checkpoint, restore
from reidkit.utils.errors import DataError, ExportError

Images = Union[ImageLike, Sequence[ImageLike]]


class Embedder:
    """Embeds images with an exported ONNX model or a PyTorch model (see the module docstring).

    Use ``from_onnx``, ``from_checkpoint`` or ``from_model``; ``embedding_dim``, ``distance``
    (``euclidean`` or ``cosine``: how to compare the outputs) and ``img_h`` / ``img_w`` describe
    the model.
    """

    def __init__(
        self,
        run_batch: Any,
        *,
        img_h: int,
        img_w: int,
        embedding_dim: int,
        input_format: str = "float-nchw",
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        antialias: bool = True,
        distance: str = "euclidean",
        batch_size: int = 32,
        device: Union[str, torch.device] = "cpu",
        name: str = "model",
        pixel_range: float = 1.0,
    ) -> None:
        if batch_size < 1:
            raise DataError(f"batch_size = {batch_size} is not valid: expected >= 1")
        self._run = run_batch
        self.img_h, self.img_w = int(img_h), int(img_w)
        self.embedding_dim = int(embedding_dim)
        self.input_format = input_format
        self.mean, self.std = tuple(mean), tuple(std)
        self.antialias = bool(antialias)
        self.pixel_range = float(pixel_range)
        self.distance = distance
        self.batch_size = int(batch_size)
        self.device = torch.device(device)
        self.name = name

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_onnx(
        cls,
        path: Union[str, Path],
        providers: Union[str, Sequence[str], None] = None,
        threads: int | None = None,
        batch_size: int = 32,
    ) -> Embedder:
        """An onnxruntime embedder for a model exported by reidkit.

        ``providers``: ``"cpu"`` (default), ``"cuda"`` or onnxruntime provider names;
        ``threads`` sets ``intra_op_num_threads``. ``ExportError`` for a corrupt file or one
        without reidkit metadata.
        """
        info = read_onnx_info(path)
        session = create_session(path, providers, threads)
        in_name, out_name = session.get_inputs()[0].name, session.get_outputs()[0].name

        def run(batch: np.ndarray) -> np.ndarray:
            return np.asarray(session.run([out_name], {in_name: batch})[0], dtype=np.float32)

        return cls(
            run,
            img_h=info.img_h,
            img_w=info.img_w,
            embedding_dim=info.embedding_dim,
            input_format=info.input_format,
            mean=info.mean,
            std=info.std,
            pixel_range=info.pixel_range,
            antialias=info.antialias,
            distance=info.distance,
            batch_size=batch_size,
            name=str(path),
        )

    @classmethod
    def from_model(
        cls,
        model: nn.Module,
        img_h: int,
        img_w: int,
        *,
        device: Union[str, torch.device] = "cpu",
        distance: str = "euclidean",
        l2norm: bool = False,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        antialias: bool = True,
        batch_size: int = 32,
        pixel_range: float = 1.0,
    ) -> Embedder:
        """A PyTorch embedder around an eval-mode model mapping float NCHW to (B, D)."""
        device = torch.device(device)
        model = model.to(device).eval()
        dim = getattr(model, "embedding_dim", None)
        if not isinstance(dim, int) or dim <= 0:  # not a ReidModel: ask the model itself
            with torch.inference_mode():
                dim = int(model(torch.zeros(2, 3, img_h, img_w, device=device)).shape[1])

        def run(batch: torch.Tensor) -> np.ndarray:
            with torch.inference_mode():
                out = model(inference_layout(batch)).float()
                if l2norm:
                    out = F.normalize(out, dim=1)
            return out.cpu().numpy()

        return cls(
            run,
            img_h=img_h,
            img_w=img_w,
            embedding_dim=dim,
            input_format="torch",
            mean=mean,
            std=std,
            pixel_range=pixel_range,
            antialias=antialias,
            distance=distance,
            batch_size=batch_size,
            device=device,
            name=type(model).__name__,
        )

    @classmethod
    def from_checkpoint(
        cls,
        path: Union[str, Path],
        device: Union[str, torch.device] = "cpu",
        batch_size: int = 32,
        l2norm: bool = False,
    ) -> Embedder:
        """A PyTorch embedder for a reidkit checkpoint (or run folder: its best.pth)."""
        ckpt = resolve_checkpoint(path)
        model, cfg = restore(ckpt, device=device)
        emb = cls.from_model(
            model,
            cfg.img_h,
            cfg.img_w,
            device=device,
            distance=cfg.evaluation_params.distance,
            l2norm=l2norm,
            mean=cfg.data.mean,
            std=cfg.data.std,
            pixel_range=cfg.data.pixel_range,
            batch_size=batch_size,
        )
        emb.name = str(ckpt)
        return emb

    # ------------------------------------------------------------------ embedding
    def embed(self, images: Images) -> np.ndarray:
        """Embeddings (N, D) float32 of images: PIL images, HWC uint8 arrays, file paths.

        A single image gives (1, D); an (N, H, W, 3) uint8 array is N images. Images are
        decoded and embedded ``batch_size`` at a time.
        """
        items = _as_list(images)
        out = np.empty((len(items), self.embedding_dim), dtype=np.float32)
        for start in range(0, len(items), self.batch_size):
            chunk = [load_image(x) for x in items[start : start + self.batch_size]]
            out[start : start + len(chunk)] = self.embed_arrays(chunk)
        return out

    def embed_arrays(self, arrays: Sequence[np.ndarray]) -> np.ndarray:
        """Embeddings of already decoded HWC uint8 RGB arrays (one forward per batch)."""
        if not arrays:
            return np.empty((0, self.embedding_dim), dtype=np.float32)
        if self.input_format in ("float-nchw", "torch"):
            batch = preprocess_images(
                arrays,
                self.img_h,
                self.img_w,
                self.mean,
                self.std,
                self.device,
                self.antialias,
                self.pixel_range,
            )
            feed = batch if self.input_format == "torch" else batch.cpu().numpy()
            return self._checked(self._run(feed), len(arrays))
        out = np.empty((len(arrays), self.embedding_dim), dtype=np.float32)
        for idx, stacked in _same_size_groups(arrays):
            if self.input_format == "uint8-nchw":
                stacked = np.ascontiguousarray(stacked.transpose(0, 3, 1, 2))
            out[idx] = self._checked(self._run(stacked), len(idx))
        return out

    def _checked(self, out: np.ndarray, n: int) -> np.ndarray:
        if out.shape != (n, self.embedding_dim):
            raise ExportError(
                f"{self.name}: produced embeddings of shape {out.shape}, expected "
                f"({n}, {self.embedding_dim})"
            )
        return out

    def __repr__(self) -> str:
        return (
            f"Embedder({self.name!r}, input {self.img_h}x{self.img_w}, D={self.embedding_dim}, "
            f"distance={self.distance})"
        )


def _as_list(images: Images) -> list[ImageLike]:
    """Normalise ``embed``'s argument to a list of single images."""
    if isinstance(images, np.ndarray):
        return list(images) if images.ndim == 4 else [images]
    if isinstance(images, (str, Path)) or hasattr(images, "convert"):
        return [images]
    if isinstance(images, (Sequence, Iterator)):
        return list(images)
    raise DataError(
        f"cannot embed a {type(images).__name__}: pass images or a list of images "
        "(PIL, HWC uint8 arrays, file paths)"
    )


def _same_size_groups(arrays: Sequence[np.ndarray]) -> Iterator[tuple[list[int], np.ndarray]]:
    """Indices and stacked (n, H, W, 3) arrays of images that share a size."""
    groups: dict[tuple[int, int], list[int]] = {}
    for i, a in enumerate(arrays):
        groups.setdefault(a.shape[:2], []).append(i)
    for idx in groups.values():
        yield idx, np.stack([arrays[i] for i in idx])

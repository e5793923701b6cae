"""``Embedder``: person crops in, embeddings out, with PyTorch, onnxruntime or OpenVINO behind
one API.

    emb = Embedder.load("runs/demo/model.onnx", threads=4)    # .onnx, .xml (OpenVINO) or a run
    feats = emb.embed(["a.jpg", pil_image, hwc_uint8_array])   # (3, D) float32
    track = emb.embed_tracklet(crops_of_one_person, pool="avg")     # (D,) L2-normalised
    out = emb.embed_frames([frame_a, frame_b], [boxes_a, boxes_b])   # detector boxes per frame
    emb.same_identity(out.embeddings[0][0], out.embeddings[1][2], fpr=1e-3)

Every backend reads images the same way (``preprocess.load_image``) and resizes / normalises
them with the same arithmetic, so an exported model and the checkpoint it came from give the
same numbers (to float tolerance). Batching happens inside ``embed`` and ``embed_frames``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from reidkit.deploy.frames import FrameEmbeddings, frame_crops
from reidkit.deploy.onnx_meta import OnnxModelInfo, read_onnx_info
from reidkit.deploy.openvino_ir import compile_ir, read_ir
from reidkit.deploy.preprocess import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    ImageLike,
    load_image,
    preprocess_images,
)
from reidkit.deploy.runtime import create_session
from reidkit.evaluation.features import inference_layout
from reidkit.evaluation.thresholds import ThresholdTable, cosine_similarity
from reidkit.models.checkpoint import load_checkpoint, model_from_state, resolve_checkpoint
from reidkit.utils.errors import DataError, ExportError

Images = Union[ImageLike, Sequence[ImageLike]]


class Embedder:
    """Embeds images with an exported ONNX model or a PyTorch model (see the module docstring).

    Use ``load`` (picks the backend from the file), ``from_onnx``, ``from_openvino``,
    ``from_checkpoint`` or ``from_model``; ``embedding_dim``, ``distance`` (``euclidean`` or
    ``cosine``: how to compare the outputs), ``img_h`` / ``img_w``, ``backend`` and
    ``calibration`` (same-person thresholds, when the model has them) describe the model.
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
        backend: str = "pytorch",
        precision: str = "fp32",
        calibration: ThresholdTable | None = None,
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
        self.backend = backend
        self.precision = precision
        self.calibration = calibration

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

        return cls.from_runner(run, info, batch_size, str(path), "onnxruntime")

    @classmethod
    def from_openvino(
        cls, path: Union[str, Path], threads: int | None = None, batch_size: int = 32
    ) -> Embedder:
        """An OpenVINO (CPU) embedder for an IR ``model.xml`` exported by reidkit.

        Needs ``pip install 'reidkit[openvino]'``; ``ExportError`` for a file that is not ours
        or whose metadata does not fit its graph.
        """
        model, info = read_ir(path)
        run = compile_ir(model, info.precision, threads)
        return cls.from_runner(run, info, batch_size, str(path), "openvino")

    @classmethod
    def from_runner(
        cls, run: Any, info: OnnxModelInfo, batch_size: int, name: str, backend: str
    ) -> Embedder:
        """An embedder around ``run`` (input batch in ``info.input_format`` -> (B, D))."""
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
            name=name,
            backend=backend,
            precision=info.precision,
            calibration=info.calibration,
        )

    @classmethod
    def load(
        cls,
        path: Union[str, Path],
        *,
        device: str = "cpu",
        threads: int | None = None,
        batch_size: int = 32,
    ) -> Embedder:
        """The embedder of a file, by suffix: ``.onnx`` (onnxruntime; CUDA when ``device`` is
        cuda), ``.xml`` (OpenVINO on the CPU), else a checkpoint / run folder (PyTorch)."""
        suffix = Path(path).suffix.lower()
        if suffix == ".onnx":
            providers = "cuda" if str(device).startswith("cuda") else None
            return cls.from_onnx(path, providers, threads, batch_size)
        if suffix == ".xml":
            return cls.from_openvino(path, threads, batch_size)
        return cls.from_checkpoint(path, device, batch_size)

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
        state = load_checkpoint(ckpt)
        model, cfg = model_from_state(state, str(ckpt), device)
        stored = state.get("calibration")
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
        if stored is not None:
            emb.calibration = ThresholdTable.from_dict(stored, f"{ckpt}[calibration]")
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

    def embed_tracklet(self, images: Images, pool: str = "avg") -> np.ndarray:
        """One L2-normalised embedding ``(D,)`` of a tracklet (the crops of one person): each
        image embedded on its own (exports are single-frame, on every backend), the embeddings
        pooled ``avg`` (mean) or ``max`` (element-wise) as ``reidkit eval --tracklets`` pools
        them, the result L2-normalised (for cosine comparison or ``same_identity``)."""
        if pool not in ("avg", "max"):
            raise DataError(f"embed_tracklet: pool = {pool!r} is not valid (valid: avg, max)")
        feats = self.embed(images)
        if len(feats) == 0:
            raise DataError("embed_tracklet: the tracklet has no images")
        pooled = feats.mean(0) if pool == "avg" else feats.max(0)
        return (pooled / max(float(np.linalg.norm(pooled)), 1e-12)).astype(np.float32)

    def embed_frames(
        self,
        frames: Sequence[np.ndarray],
        boxes: Sequence[Any],
        *,
        max_batch: int | None = None,
        bgr: bool = False,
    ) -> FrameEmbeddings:
        """One L2-normalised embedding per detector box, over frames of several streams.

        ``frames``: HxWx3 uint8 arrays (RGB; ``bgr=True`` for OpenCV frames); ``boxes[i]``:
        an (n_i, 4) array of xyxy pixel boxes of frame ``i`` (n_i may be 0). Boxes are clipped
        to their frame; empty, degenerate or tiny boxes are not fatal: their rows are zeros and
        ``valid`` is false (``reidkit.deploy.frames``). Crops of all frames are embedded
        together, ``max_batch`` (default ``batch_size``) per forward pass, prepared exactly as
        ``embed`` prepares a crop.
        """
        step = int(max_batch or self.batch_size)
        if step < 1:
            raise DataError(f"max_batch = {max_batch} is not valid: expected >= 1")
        crops, where, used = frame_crops(frames, boxes, bgr)
        out = [np.zeros((len(b), self.embedding_dim), dtype=np.float32) for b in used]
        valid = [np.zeros(len(b), dtype=bool) for b in used]
        for s in range(0, len(crops), step):
            feats = self.embed_arrays(crops[s : s + step])
            norms = np.linalg.norm(feats, axis=1, keepdims=True)
            feats = feats / np.maximum(norms, 1e-12)
            for (i, j), row in zip(where[s : s + step], feats, strict=True):
                out[i][j] = row
                valid[i][j] = True
        return FrameEmbeddings(out, valid, used)

    # ------------------------------------------------------------------ same person?
    def threshold(self, fpr: float = 1e-3) -> float:
        """The cosine-similarity threshold of this model at false positive rate ``fpr``
        (one of the calibrated levels: 1e-2, 1e-3, 1e-4).

        ``DataError`` when the model carries no calibration (``reidkit calibrate RUN``).
        """
        if self.calibration is None:
            raise DataError(
                f"{self.name}: the model has no same-person thresholds; run `reidkit calibrate "
                "RUN` (it also updates the run's exported files) or export the run again"
            )
        return self.calibration.threshold(fpr)

    def same_identity(self, a: Any, b: Any, fpr: float = 1e-3) -> Any:
        """Whether embeddings ``a`` and ``b`` show the same person at false positive rate
        ``fpr``: cosine similarity strictly above ``threshold(fpr)``.

        Two (D,) vectors give a bool; two (N, D) blocks give (N,) bools, row by row. A zero
        row (an invalid box of ``embed_frames``) is never the same as anything.
        """
        t = self.threshold(fpr)
        ta, tb = np.asarray(a, dtype=np.float32), np.asarray(b, dtype=np.float32)
        if ta.shape != tb.shape or ta.shape[-1:] != (self.embedding_dim,):
            raise DataError(
                f"same_identity: shapes {ta.shape} and {tb.shape} are not two (D,) vectors or "
                f"two (N, D) blocks with D = {self.embedding_dim}"
            )
        sim = cosine_similarity(ta, tb).numpy()
        alive = (np.abs(ta).sum(-1) > 0) & (np.abs(tb).sum(-1) > 0)
        result = (sim > t) & alive
        return bool(result) if result.ndim == 0 else result

    def _checked(self, out: np.ndarray, n: int) -> np.ndarray:
        if out.shape != (n, self.embedding_dim):
            raise ExportError(
                f"{self.name}: produced embeddings of shape {out.shape}, expected "
                f"({n}, {self.embedding_dim})"
            )
        return out

    def __repr__(self) -> str:
        return (
            f"Embedder({self.name!r}, {self.backend} {self.precision}, input "
            f"{self.img_h}x{self.img_w}, D={self.embedding_dim}, distance={self.distance})"
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

"""Build a torchreid / fast-reid model with random weights in its own framework, save it the way
that framework saves checkpoints, and embed image files through that framework's own test
pipeline. Run as a subprocess with only the third-party site on the path:

    PYTHONPATH=.thirdparty/site python source_harness.py job.json

``job.json``: ``{"jobs": [job, ...]}``, each job ``{"framework": "torchreid" | "fastreid",
"out": DIR, "images": [PNG ...], "seed": int}`` plus, for torchreid, ``"arch"``,
``"num_classes"``, ``"image_size": [h, w]``, ``"dataparallel"`` (keys saved with
``module.``) and ``"bare"`` (save a bare state dict), and for fast-reid ``"yaml"`` (a config
file, ``_BASE_`` allowed), ``"opts"`` (yacs overrides) and ``"dump_config"`` (write
``config.yaml`` beside the checkpoint, as fast-reid's training does). Writes
``DIR/result.json`` with the checkpoint path and ``DIR/embeddings.npy``.

Weights: each framework's own initialisation, then every norm layer gets a random affine
transform, BatchNorm statistics measured on the test images, their mirrors and some noise
images (a train-mode forward, as if trained on them; the noise keeps the random network tame
on other inputs such as export's random parity images) and then nudged, and GeM exponents
3.7, so no layer is an identity and no statistic is a default.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import types
from pathlib import Path

import numpy as np
import torch
from PIL import Image

if any("reidkit" in name for name in sys.modules):
    raise SystemExit("the harness must not run inside a reidkit process")


def bare_package(name: str) -> None:
    """Register package ``name`` without running its ``__init__`` (whose imports of training
    utilities need packages such as gdown, or a torch older than ours)."""
    if name in sys.modules:
        return
    parent, _, child = name.rpartition(".")
    if parent:
        folder = Path(sys.modules[parent].__path__[0]) / child
    else:
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.submodule_search_locations:
            raise SystemExit(f"{name} is not installed on the harness path")
        folder = Path(list(spec.submodule_search_locations)[0])
    module = types.ModuleType(name)
    module.__path__ = [str(folder)]
    sys.modules[name] = module


def randomise(model: torch.nn.Module, train_forward) -> None:
    """Random affine norms, measured-then-nudged BN statistics, GeM p = 3.7 (see docstring)."""
    norms = [
        m
        for m in model.modules()
        if isinstance(m, torch.nn.modules.batchnorm._NormBase | torch.nn.InstanceNorm2d)
    ]
    with torch.no_grad():
        for m in norms:
            if m.affine:
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
            if m.track_running_stats:
                m.reset_running_stats()
                m.momentum = 1.0  # running stats = the statistics of the forward below
        for m in model.modules():
            if isinstance(getattr(m, "p", None), torch.nn.Parameter):
                m.p.fill_(3.7)
        model.train()
        train_forward()
        model.eval()
        for m in norms:
            if m.track_running_stats:
                m.running_mean.add_(torch.empty_like(m.running_mean).uniform_(-0.02, 0.02))
                m.running_var.mul_(torch.empty_like(m.running_var).uniform_(0.95, 1.05))
                # a floor: a channel nearly constant over the few calibration images would
                # otherwise blow other inputs (export's random parity images) up
                m.running_var.clamp_(min=0.1 * float(m.running_var.mean()))


def run_torchreid(job: dict, out: Path) -> dict:
    bare_package("torchreid")
    bare_package("torchreid.reid")
    bare_package("torchreid.reid.data")
    from torchreid.reid.data.transforms import build_transforms
    from torchreid.reid.models import build_model
    from torchreid.reid.utils import FeatureExtractor
    from torchreid.reid.utils.torchtools import save_checkpoint

    arch, (h, w) = job["arch"], job["image_size"]
    model = build_model(arch, num_classes=job["num_classes"], loss="softmax", pretrained=False)
    _, test = build_transforms(h, w)
    x = torch.stack([test(Image.open(p).convert("RGB")) for p in job["images"]])
    noise = (torch.rand(6, *x.shape[1:]) - 0.45) / 0.225  # ImageNet-normalised uniform noise
    randomise(model, lambda: model(torch.cat([x, x.flip(3), noise])))
    if job.get("bare"):
        ckpt = out / f"{arch}.pth"
        torch.save(model.state_dict(), ckpt)
    else:
        net = torch.nn.DataParallel(model) if job.get("dataparallel") else model
        optimizer = torch.optim.Adam(model.parameters(), lr=3e-4)
        state = {"state_dict": net.state_dict(), "epoch": 5, "rank1": 0.5}
        save_checkpoint({**state, "optimizer": optimizer.state_dict()}, str(out), is_best=True)
        ckpt = out / "model.pth.tar-5"
    extractor = FeatureExtractor(
        model_name=arch, model_path=str(ckpt), image_size=(h, w), device="cpu", verbose=False
    )
    feats = extractor(list(job["images"])).numpy()
    return {"checkpoint": str(ckpt), "embeddings": feats}


def run_fastreid(job: dict, out: Path) -> dict:
    import fastreid  # noqa: F401  (its __init__ is light; fastreid.data's is not)

    bare_package("fastreid.data")
    from fastreid.config import get_cfg
    from fastreid.data.data_utils import read_image
    from fastreid.data.transforms import build_transforms
    from fastreid.modeling import build_model
    from fastreid.utils.checkpoint import Checkpointer

    cfg = get_cfg()
    cfg.merge_from_file(job["yaml"])
    cfg.merge_from_list(
        ["MODEL.DEVICE", "cpu", "MODEL.BACKBONE.PRETRAIN", False, *job.get("opts", [])]
    )
    cfg.freeze()
    model = build_model(cfg)
    test = build_transforms(cfg, is_train=False)
    images = torch.stack([test(read_image(p)) for p in job["images"]])
    x = torch.cat([images, images.flip(3), torch.rand(6, *images.shape[1:]) * 255])
    targets = torch.arange(len(x)) % max(cfg.MODEL.HEADS.NUM_CLASSES, 1)
    randomise(
        model, lambda: model.heads(model.backbone(model.preprocess_image(x.clone())), targets)
    )
    Checkpointer(model, str(out)).save("model_final")
    if job.get("dump_config"):
        (out / "config.yaml").write_text(cfg.dump())
    with torch.no_grad():
        feats = model(images.clone())
        if cfg.TEST.FLIP.ENABLED:  # what fast-reid's inference_on_dataset does with flip_test
            feats = (feats + model(images.flip(dims=[3]))) / 2
    return {"checkpoint": str(out / "model_final.pth"), "embeddings": feats.numpy()}


def main(path: str) -> None:
    """Run every job of ``{"jobs": [...]}`` (one process start for several models)."""
    torch.set_num_threads(1)
    for job in json.loads(Path(path).read_text())["jobs"]:
        out = Path(job["out"])
        out.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(job.get("seed", 0))
        run = run_torchreid if job["framework"] == "torchreid" else run_fastreid
        result = run(job, out)
        np.save(out / "embeddings.npy", result.pop("embeddings").astype(np.float32))
        (out / "result.json").write_text(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1])

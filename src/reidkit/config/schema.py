"""The params.json schema: every key of the seed document (and reidkit's own), immutable.

Each section is a frozen pydantic model that forbids unknown keys; ``Config`` is the whole
run. Field descriptions are the documentation (docs/config.md is generated from them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Union

from pydantic import Field, field_validator, model_validator

from reidkit.config.adapt import AdaptParams
from reidkit.config.distill import DistillParams
from reidkit.config.section import Section
from reidkit.config.video import VideoParams

Optimizer = Literal["sgd", "adam", "adamw"]


class LrParams(Section):
    """Learning rates and schedule (seed key ``lr``)."""

    base_lr: float = Field(0.01, gt=0, description="Initial lr of the backbone.")
    fc_lr: float | None = Field(
        None, gt=0, description="Initial lr of the head (neck + classifier); default base_lr."
    )
    decay_step: Union[int, list[int]] = Field(
        40,
        description="Step decay: an int (every N units) or a list of milestones. Units are "
        "epochs, or iterations when class-balanced sampling is on (the seed's rule), unless "
        "decay_unit says otherwise.",
    )
    decay_unit: Literal["auto", "epoch", "iteration"] = Field(
        "auto", description="auto = the seed's rule; epoch / iteration force the unit."
    )
    gamma: float = Field(0.1, gt=0, le=1, description="Multiplicative decay at each step.")
    scheduler: Literal["step", "multistep", "cosine"] = Field(
        "step", description="step/multistep use decay_step; cosine anneals to min_lr."
    )
    min_lr: float = Field(0.0, ge=0, description="Floor of the cosine schedule.")
    warmup_epochs: float = Field(0, ge=0, description="Linear warm-up length in epochs.")
    warmup_factor: float = Field(0.1, gt=0, le=1, description="lr multiplier at step 0.")
    warmup_method: Literal["linear", "constant"] = Field(
        "linear", description="Ramp from warmup_factor to 1, or hold warmup_factor."
    )
    bias_lr_factor: float = Field(1.0, gt=0, description="lr multiplier of bias parameters.")
    weight_decay_bias: float | None = Field(None, ge=0, description="Default weight_decay.")

    @field_validator("decay_step")
    @classmethod
    def _positive_steps(cls, v: int | list[int]) -> int | list[int]:
        steps = [v] if isinstance(v, int) else v
        if any(s <= 0 for s in steps):
            raise ValueError(f"decay_step must be positive, got {v}")
        if isinstance(v, list) and v != sorted(v):
            raise ValueError(f"decay_step milestones must be increasing, got {v}")
        return v


class ModelParams(Section):
    """Network structure (seed key ``model_params``)."""

    backbone: str = Field("resnet50", description="Backbone name; `reidkit models` lists them.")
    last_stride: Literal[1, 2] = Field(1, description="Stride of the last stage (BoT uses 1).")
    pooling: str = Field("avg", description="avg | max | gem | gem_avg | avg_max.")
    neck: str = Field("bnneck", description="none | bnneck | embedding.")
    embedding_dim: int = Field(0, ge=0, description="Size of the embedding neck (0 = native).")
    neck_bias: bool = Field(
        False, description="Give the embedding neck's Linear a bias (torchreid's fc layers)."
    )
    neck_relu: bool = Field(
        False, description="End the neck with a ReLU (torchreid's fc layers: Linear, BN, ReLU)."
    )
    classifier: str = Field(
        "softmax", description="softmax | am_softmax (cosface) | arcface | circle."
    )
    classifier_bias: bool = Field(
        False, description="Give the softmax classifier a bias (torchreid's classifiers)."
    )
    stem_pool: Literal["padded", "ceil"] = Field(
        "padded",
        description="Stem max-pool of ResNets: padded (pad 1, torchvision) or ceil (no padding, "
        "output size rounded up: fast-reid, the original Caffe ResNet).",
    )
    non_local: list[int] = Field(
        default_factory=list,
        description="Non-local blocks per ResNet stage, after each stage's last blocks, e.g. "
        "[0, 2, 3, 0] (AGW / fast-reid SBS); [] = none.",
    )
    non_local_inter: int = Field(
        0,
        ge=0,
        description="Channels of the non-local projections; 0 = half the stage's channels "
        "(the paper), 1 = AGW's and fast-reid's released code.",
    )
    scale: float = Field(30.0, gt=0, description="Logit scale of margin classifiers.")
    margin: float = Field(0.35, ge=0, description="Margin of margin classifiers.")
    num_parts: int = Field(0, ge=0, description="PCB horizontal stripes (0 = off).")
    dropout: float = Field(0.0, ge=0, lt=1, description="Dropout before the classifier.")
    global_branch: bool = Field(
        False,
        description="With num_parts > 0, keep the global branch too; test features concatenate "
        "the global and part embeddings.",
    )
    freeze_layers: list[str] = Field(
        default_factory=list, description="Backbone parts frozen for freeze_epochs."
    )
    freeze_epochs: int = Field(0, ge=0, description="Epochs during which freeze_layers train not.")


class AugmentationParams(Section):
    """Training augmentation (seed key ``data_augmentation``); each switch is independent."""

    mirror: bool = Field(True, description="Random horizontal flip (the seed spells it 'mirro').")
    flip_prob: float = Field(0.5, ge=0, le=1, description="Probability of the mirror flip.")
    padding: int = Field(10, ge=0, description="Pad then random-crop back to size (0 = off).")
    random_erasing: float = Field(0.0, ge=0, le=1, description="Probability of random erasing.")
    color_jitter: float = Field(0.0, ge=0, le=1, description="Probability of colour jitter.")
    random_patch: float = Field(0.0, ge=0, le=1, description="Probability of random patch.")
    auto_augment: Literal["none", "autoaugment", "randaugment"] = Field(
        "none", description="torchvision AutoAugment / RandAugment policy."
    )

    @model_validator(mode="before")
    @classmethod
    def _seed_forms(cls, data: Any) -> Any:
        """Accept the seed's shorthand: a name, a list of names, or ``{"mirro": true}``."""
        if isinstance(data, str):
            data = [data]
        if isinstance(data, list):
            names = {str(n).lower() for n in data}
            data = {n: True for n in names}
            data.setdefault("mirror", "mirror" in names or "mirro" in names)
        if isinstance(data, dict):
            data = dict(data)
            if "mirro" in data:
                data["mirror"] = data.pop("mirro")
            for key in ("random_erasing", "color_jitter", "random_patch"):
                if data.get(key) is True:
                    data[key] = 0.5
                elif data.get(key) is False:
                    data[key] = 0.0
        return data


class DataParams(Section):
    """Where and how images are read (new key ``data``)."""

    layout: str = Field(
        "auto",
        description="auto | market1501 | dukemtmc | msmt17 | cuhk03_np | veri776 | custom | "
        "imagefolder | lmdb; video (tracklet) layouts: mars | ilidsvid | prid2011 | "
        "dukemtmc_video | tracklets (an image layout grouped into tracklets by identity and "
        "camera, e.g. a `reidkit crops --labelled` folder); see docs/datasets.md.",
    )
    cuhk03_subset: Literal["detected", "labeled"] = Field(
        "detected", description="Which CUHK03-NP boxes to use (layout cuhk03_np)."
    )
    cache: Literal["none", "ram", "device"] = Field(
        "none", description="Decoded-image cache for the fast pipeline."
    )
    num_workers: int = Field(2, ge=0, description="Decode workers.")
    flip_test: bool = Field(False, description="Average features of image and mirror at test.")
    mean: tuple[float, float, float] = Field(
        (0.485, 0.456, 0.406),
        description="Per-channel (RGB) mean subtracted from images in 0..pixel_range "
        "(default: ImageNet's, for pixel_range 1).",
    )
    std: tuple[float, float, float] = Field(
        (0.229, 0.224, 0.225),
        description="Per-channel (RGB) std images are divided by after the mean.",
    )
    pixel_range: Literal[1, 255] = Field(
        1,
        description="Pixel scale mean / std apply to: 1 = images divided by 255 first "
        "(torchvision, torchreid), 255 = raw 0..255 values (fast-reid's PIXEL_MEAN / "
        "PIXEL_STD). The arithmetic follows those frameworks exactly.",
    )
    test_batch_size: int = Field(128, gt=0, description="Batch size of feature extraction.")

    @field_validator("std")
    @classmethod
    def _positive_std(cls, v: tuple[float, float, float]) -> tuple[float, float, float]:
        if any(x <= 0 for x in v):
            raise ValueError(f"every std must be > 0, got {list(v)}")
        return v

    @model_validator(mode="after")
    def _units(self) -> DataParams:
        if self.pixel_range == 255 and max(self.std) <= 1:
            raise ValueError(
                f"std {list(self.std)} looks like 0..1 units but pixel_range is 255; give mean "
                "and std in 0..255 units (e.g. std [58.395, 57.12, 57.375]) or pixel_range 1"
            )
        return self


class EvaluationParams(Section):
    """On-the-fly evaluation after each epoch (seed key ``evaluation_params``)."""

    type: str | None = Field(
        None,
        description="None | market_evaluate | classification_evaluate | video_evaluate "
        "(tracklets; market_evaluate on a video dataset runs it too) | a file "
        "evaluate/<type>.py | package.module:function.",
    )
    metric: str | None = Field(None, description="Key deciding 'best' (default per evaluator).")
    mode: Literal["max", "min"] = Field("max", description="Whether larger metric is better.")
    ranks: list[int] = Field(
        default_factory=lambda: [1, 5, 10], description="CMC ranks (each >= 1)."
    )
    distance: Literal["euclidean", "cosine"] = Field(
        "euclidean", description="Distance between embeddings."
    )
    rerank: bool = Field(False, description="k-reciprocal re-ranking.")
    query_expansion: int = Field(0, ge=0, description="Average query expansion top-k (0 = off).")
    search_dirs: list[str] = Field(default_factory=list, description="Folders with evaluate/*.py.")
    period: int = Field(1, ge=1, description="Evaluate every N epochs (and at the last).")

    @field_validator("ranks")
    @classmethod
    def _ranks(cls, v: list[int]) -> list[int]:
        if not v or any(r < 1 for r in v):
            raise ValueError(f"CMC ranks must be integers >= 1, got {v}")
        return sorted(set(v))

    @field_validator("type", mode="before")
    @classmethod
    def _none_string(cls, v: Any) -> Any:
        if isinstance(v, str) and v.strip().lower() in ("none", "null", ""):
            return None
        return v


class BatchSamplingParams(Section):
    """PK sampling (seed key ``batch_sampling_params``)."""

    class_balanced: bool = Field(False, description="Sample P identities x K images per batch.")
    P: int | None = Field(None, gt=0, description="Identities per batch (default batch_size/K).")
    K: int = Field(4, gt=0, description="Images per identity in a batch.")


class Config(Section):
    """A whole run: the seed's params.json plus reidkit's own keys (all optional)."""

    batch_size: int = Field(
        64, ge=2, description="Batch size per GPU (at least 2: BatchNorm needs two samples)."
    )
    batches_dir: str = Field(..., description="Dataset root folder or packed .lmdb store.")
    data_augmentation: AugmentationParams = Field(default_factory=AugmentationParams)
    epoch: int = Field(60, gt=0, description="Number of training epochs.")
    imagenet_pretrain: Union[bool, str] = Field(
        False, description="true = torchvision's ImageNet weights; a path = a local file."
    )
    img_h: int = Field(256, gt=0, description="Input image height.")
    img_w: int = Field(128, gt=0, description="Input image width.")
    lr: LrParams = Field(default_factory=LrParams)
    model_params: ModelParams = Field(default_factory=ModelParams)
    optimizer: Optimizer = Field("sgd", description="sgd | adam | adamw (case-insensitive).")
    momentum: float = Field(0.9, ge=0, lt=1, description="SGD momentum.")
    nesterov: bool = Field(False, description="SGD with Nesterov momentum.")
    parallels: list[int] = Field(default_factory=list, description="GPU ids; [] = CPU/auto.")
    pretrain_snapshot: str | None = Field(None, description="A reidkit checkpoint to start from.")
    weight_decay: float = Field(5e-4, ge=0, description="L2 regularisation (seed key).")
    fine_tune: bool = Field(False, description="Train only the classifier.")
    evaluation_params: EvaluationParams = Field(default_factory=EvaluationParams)
    working_dir: str = Field("runs", description="Where runs are stored.")
    sub_working_dir: str | None = Field(None, description="Run folder name (CLI flag too).")
    tri_loss_margin: Union[float, Literal["soft_margin"]] = Field(
        0.0, description="Batch-hard triplet margin; 'soft_margin'; 0 = off."
    )
    tri_loss_lambda_cls: float = Field(
        1.0, ge=0, description="Weight of the classification loss (0 = off)."
    )
    label_smoothing: float = Field(
        0.1, ge=0, lt=1, description="Label smoothing epsilon of the cross-entropy loss."
    )
    center_loss_weight: float = Field(0.0, ge=0, description="Weight of the center loss.")
    center_lr: float = Field(
        0.5, gt=0, description="SGD lr of the center-loss centres (their own optimiser, as BoT)."
    )
    tri_loss_type: Literal["batch_hard", "weighted"] = Field(
        "batch_hard",
        description="batch_hard (hardest positive / negative) or weighted (AGW's weighted "
        "regularisation triplet: softmax-weighted positives / negatives).",
    )
    tri_loss_distance: Literal["euclidean", "cosine"] = Field(
        "euclidean", description="Distance of the triplet loss."
    )
    circle_loss_weight: float = Field(0.0, ge=0, description="Weight of pair-wise circle loss.")
    circle_loss_scale: float = Field(64.0, gt=0, description="Circle loss scale (gamma).")
    circle_loss_margin: float = Field(0.25, ge=0, lt=1, description="Circle loss relaxation m.")
    batch_sampling_params: BatchSamplingParams = Field(default_factory=BatchSamplingParams)
    data: DataParams = Field(default_factory=DataParams)
    adapt: AdaptParams = Field(default_factory=AdaptParams)
    video: VideoParams = Field(default_factory=VideoParams)
    distill: DistillParams = Field(default_factory=DistillParams)
    seed: int = Field(0, description="Seed of every random generator (data order too).")
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="auto = CUDA when visible (GPUs from parallels), else CPU."
    )
    amp: Literal["auto", "off", "bf16", "fp16"] = Field(
        "auto",
        description="Automatic mixed precision (fp16 uses a grad scaler). auto = bf16 on a "
        "CUDA GPU that computes in bf16 natively (compute capability >= 8.0: A100, H100 ...), "
        "off on the CPU and older GPUs.",
    )
    channels_last: Union[bool, Literal["auto"]] = Field(
        "auto",
        description="channels_last (NHWC) memory format for training. auto = on for CUDA "
        "GPUs (tensor-core convolutions want it), off on the CPU. Evaluation and inference "
        "run in channels_last on every device (faster for every backbone measured).",
    )
    compile: bool = Field(
        False,
        description="torch.compile the training step (network + loss, one graph; static "
        "shapes). Recompilations are counted in each epoch's record and the summary. On the "
        "CPU compiling takes minutes: use it on GPUs.",
    )
    compile_mode: Literal[
        "default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"
    ] = Field(
        "default",
        description="torch.compile mode when compile is true: reduce-overhead replays the "
        "step's kernels as CUDA graphs (fewest launches); max-autotune also tunes kernels.",
    )
    sync_bn: bool = Field(False, description="SyncBatchNorm across GPUs in DDP training.")
    grad_clip: float = Field(0.0, ge=0, description="Max grad norm (0 = off).")
    checkpoint_every_iters: int = Field(0, ge=0, description="Also save last.pth every N iters.")
    log_every: int = Field(20, gt=0, description="Iterations between log lines.")
    progress: bool = Field(True, description="Show a progress bar.")

    @field_validator("optimizer", mode="before")
    @classmethod
    def _lower_optimizer(cls, v: Any) -> Any:
        return v.lower() if isinstance(v, str) else v

    @field_validator("tri_loss_margin", mode="before")
    @classmethod
    def _margin(cls, v: Any) -> Any:
        if isinstance(v, str) and v != "soft_margin":
            try:
                return float(v)
            except ValueError:
                raise ValueError(f"must be a number >= 0 or 'soft_margin', got {v!r}") from None
        if isinstance(v, (int, float)) and not isinstance(v, bool) and v < 0:
            raise ValueError(f"must be a number >= 0 or 'soft_margin', got {v!r}")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> Config:
        bs = self.batch_sampling_params
        if bs.class_balanced:
            if self.batch_size % bs.K:
                raise ValueError(
                    f"batch_size: {self.batch_size} is not divisible by "
                    f"batch_sampling_params.K={bs.K}; use a multiple of {bs.K}"
                )
            if bs.P is not None and self.batch_size != bs.P * bs.K:
                raise ValueError(
                    f"batch_sampling_params: P*K = {bs.P}*{bs.K} = {bs.P * bs.K} "
                    f"must equal batch_size {self.batch_size}"
                )
        if not self.use_triplet and self.tri_loss_lambda_cls == 0 and not self.circle_loss_weight:
            raise ValueError(
                "tri_loss_lambda_cls: 0 with tri_loss_margin 0 leaves no loss to train; "
                "set one of them"
            )
        return self

    @property
    def use_triplet(self) -> bool:
        """Whether the batch-hard triplet loss is on (margin > 0 or soft margin)."""
        return self.tri_loss_margin == "soft_margin" or float(self.tri_loss_margin) > 0

    @property
    def num_identities_per_batch(self) -> int:
        """P of PK sampling."""
        return self.batch_size // self.batch_sampling_params.K

    @property
    def run_dir(self) -> Path:
        """The run folder: working_dir/sub_working_dir (or working_dir alone)."""
        base = Path(self.working_dir)
        return base / self.sub_working_dir if self.sub_working_dir else base

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (what is saved beside a run and inside checkpoints)."""
        return self.model_dump(mode="json")

"""The forward + loss half of a training step, eager or captured by ``torch.compile``.

``ForwardLoss(net, loss, ...)(images, pids) -> (total, terms)`` runs the network and the loss
under the run's autocast and memory format. With ``compile_mode`` set, that whole function
(network and loss together, so the loss is fused into the same graph and AOTAutograd derives one
backward graph for both) goes through ``torch.compile`` with static shapes: PK batches are all
the same size, so one compilation serves the whole run, and any later compilation is a bug
worth seeing. ``graph_compilations()`` reads torch._dynamo's own counter; the Trainer reports
the count per epoch and after warm-up (the first step).

``compile_mode`` is torch.compile's ``mode``: ``default``, ``reduce-overhead`` (CUDA graphs:
the launches of a whole step replayed at once; the returned loss terms are then copied out,
since the graph reuses its output memory on the next step), ``max-autotune`` or
``max-autotune-no-cudagraphs``.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any

import torch
from torch import nn

from reidkit.evaluation.features import inference_layout

COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
RECOMPILED = (
    "torch.compile compiled the training step again after warm-up (a change of shape, dtype "
    "or requires_grad, such as freeze_epochs ending); TORCH_LOGS=recompiles tells why"
)

Terms = dict[str, torch.Tensor]


def graph_compilations() -> int:
    """Frames torch._dynamo has compiled in this process so far (recompilations included)."""
    try:
        from torch._dynamo.utils import counters
    except ImportError:  # a torch without dynamo: nothing is ever compiled
        return 0
    return int(counters["frames"]["ok"])


def uses_cudagraphs(mode: str | None, device: torch.device) -> bool:
    """Whether ``torch.compile(mode=...)`` replays CUDA graphs on ``device``."""
    return device.type == "cuda" and mode in ("reduce-overhead", "max-autotune")


class ForwardLoss:
    """``(images, pids) -> (total, terms)``: the network and the loss of one batch.

    ``amp`` is off | bf16 | fp16 (autocast on ``device``); ``channels_last`` converts the batch
    (the model's weights are converted once when it is built); ``compile_mode`` None runs eager.
    ``backend`` is torch.compile's backend (``inductor``; tests use ``aot_eager``, which traces
    and differentiates the same graph without generating kernels).
    """

    def __init__(
        self,
        net: nn.Module,
        loss: nn.Module,
        *,
        device: torch.device,
        amp: str = "off",
        channels_last: bool = False,
        compile_mode: str | None = None,
        backend: str = "inductor",
    ) -> None:
        if compile_mode is not None and compile_mode not in COMPILE_MODES:
            raise ValueError(f"compile_mode = {compile_mode!r}: expected one of {COMPILE_MODES}")
        self.net, self.loss, self.device = net, loss, device
        self.dtype = AMP_DTYPES.get(amp)
        self.channels_last = channels_last
        self.compile_mode = compile_mode
        self.cudagraphs = uses_cudagraphs(compile_mode, device)
        self.calls = 0
        self.compiles_at_warmup: int | None = None
        self._reported = 0
        self._fn: Any = self._forward_loss
        if compile_mode is not None:
            self._fn = torch.compile(
                self._forward_loss, mode=compile_mode, backend=backend, dynamic=False
            )

    def _autocast(self) -> Any:
        if self.dtype is None:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def _forward_loss(
        self, images: torch.Tensor, pids: torch.Tensor
    ) -> tuple[torch.Tensor, Terms, torch.Tensor]:
        if self.channels_last:
            images = inference_layout(images)  # NHWC; clips (B, T, C, H, W) frame by frame
        with self._autocast():
            outputs = self.net(images, pids)
            total, terms = self.loss(outputs, pids)
        return total, terms, outputs["feature"]

    def __call__(
        self, images: torch.Tensor, pids: torch.Tensor
    ) -> tuple[torch.Tensor, Terms, torch.Tensor]:
        """``(total, terms, feature)`` of one batch: ``total`` ready for backward, ``terms`` the
        detached weighted terms plus ``"total"``, ``feature`` the pre-neck feature."""
        if self.cudagraphs:
            torch.compiler.cudagraph_mark_step_begin()
        total, terms, feature = self._fn(images, pids)
        values = {k: v.detach() for k, v in terms.items()}
        values["total"] = total.detach()
        if self.cudagraphs:  # the graph's outputs are overwritten by the next replay
            values = {k: v.clone() for k, v in values.items()}
        self.calls += 1
        if self.calls == 1:
            self.compiles_at_warmup = graph_compilations()
        return total, values, feature

    @property
    def compiled(self) -> bool:
        """Whether the step goes through torch.compile."""
        return self.compile_mode is not None

    def recompilations(self) -> int:
        """Frames compiled since the first step (0 is the goal: static shapes, stable guards)."""
        if self.compiles_at_warmup is None:
            return 0
        return graph_compilations() - self.compiles_at_warmup

    def new_recompilations(self) -> int:
        """Recompilations since the previous call of this method (the trainer warns per epoch)."""
        total = self.recompilations()
        new, self._reported = total - self._reported, total
        return new

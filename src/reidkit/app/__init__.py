"""The application layer: the only package that combines the others.

It assembles a training run from a config (``build_run``), launches it (one process, torchrun
ranks, one process per GPU of ``parallels``), evaluates a target (``evaluate_target``),
exports a run (``export_run``), calibrates its same-person thresholds (``calibrate_run``)
and holds the CLI verbs. The library packages below it
(``data``, ``models``, ``losses``, ``evaluation``, ``engine``, ``deploy``) never import it.
Names load on first use so that ``reidkit --help`` does not import torch.
"""

from __future__ import annotations

from reidkit.utils.lazy import lazy_exports

_EXPORTS = {
    "RunParts": "reidkit.app.build",
    "build_run": "reidkit.app.build",
    "train": "reidkit.app.launch",
    "prepare": "reidkit.app.launch",
    "launch_training": "reidkit.app.launch",
    "evaluate_target": "reidkit.app.evaluate",
    "export_run": "reidkit.app.export",
    "calibrate_run": "reidkit.app.calibrate",
    "distill": "reidkit.app.distill",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

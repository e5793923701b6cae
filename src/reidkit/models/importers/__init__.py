"""Importing torchreid / fast-reid checkpoints as reidkit runs (see docs/importing.md).

``import_checkpoint(source, checkpoint, out)`` writes a run folder; ``build_import`` returns
the model, config and report without writing; ``read_source_checkpoint`` reads a foreign
file with ``weights_only=True``; ``map_state`` renames a state dict by ``Rule``s.
"""

from reidkit.models.importers.mapping import ImportReport, Rule, SourceMismatchError, map_state
from reidkit.models.importers.plan import ImportPlan, UnsupportedSourceError
from reidkit.models.importers.reading import SourceCheckpoint, read_source_checkpoint
from reidkit.models.importers.run import (
    build_import,
    import_checkpoint,
    parse_source,
    supported_sources,
)

__all__ = [
    "ImportPlan",
    "ImportReport",
    "Rule",
    "SourceCheckpoint",
    "SourceMismatchError",
    "UnsupportedSourceError",
    "build_import",
    "import_checkpoint",
    "map_state",
    "parse_source",
    "read_source_checkpoint",
    "supported_sources",
]

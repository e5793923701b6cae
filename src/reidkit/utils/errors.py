"""Error types whose message is shown to the user as one line, without a traceback."""


class ReidkitError(Exception):
    """A user-facing error: the CLI prints ``error: <message>`` and exits with status 2."""


class ConfigError(ReidkitError):
    """A params file, key or value is wrong; the message names it and what would be valid."""


class DataError(ReidkitError):
    """A dataset, image or store cannot be used; the message names the file."""


class CheckpointError(ReidkitError):
    """A checkpoint is missing, unreadable or does not fit the model."""


class ExportError(ReidkitError):
    """ONNX export or its parity check failed."""

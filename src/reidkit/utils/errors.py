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


def first_line(error: BaseException, limit: int = 200) -> str:
    """The first non-empty line of an exception's message (its type name when it has none),
    cut to ``limit`` characters: how a library error is quoted inside our one-line messages."""
    for line in str(error).strip().splitlines():
        if line.strip():
            text = line.strip()
            return text if len(text) <= limit else text[: limit - 3] + "..."
    return type(error).__name__


def one_line(error: BaseException, limit: int = 300) -> str:
    """The whole message of an exception squeezed onto one line (white space folded), cut to
    ``limit`` characters: for errors of user code, where every line may matter."""
    text = " ".join(str(error).split()) or "(no message)"
    return text if len(text) <= limit else text[: limit - 3] + "..."


class DiskError(ReidkitError):
    """A file could not be written (disk full, over quota, read-only, over the file size
    limit, permission denied): the message names the file, the reason, and that the previous
    file (when there was one) is unchanged. Raised by ``utils.write_errors``."""

    def __init__(self, path: object, reason: str, kept: str) -> None:
        self.path, self.reason, self.kept = path, reason, kept
        super().__init__(f"{path}: cannot write: {reason} ({kept})")

"""reidkit: train, evaluate and deploy re-identification models."""

from reidkit.utils.lazy import lazy_exports

__version__ = "0.1.0"

# Heavy names load on first use so that ``import reidkit`` (and ``reidkit --help``) stays fast.
__getattr__, __dir__ = lazy_exports(__name__, {"Embedder": "reidkit.deploy.embedder"})

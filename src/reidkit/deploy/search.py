"""``reidkit search``: build / extend a gallery index from features files and query it.

Queries are a features file (from ``reidkit extract``) or image files embedded with a model
(``.onnx``, OpenVINO ``.xml`` or checkpoint). Results print as a table and, with ``png``, as a
ranked-list picture.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Union

from reidkit.deploy.embedder import Embedder
from reidkit.deploy.extract import identities
from reidkit.deploy.features_io import Features, load_features
from reidkit.deploy.index import GalleryIndex
from reidkit.deploy.visual import RankedRow, ranked_list_png, thumbnail_source
from reidkit.evaluation.report import RankedQuery, render_ranked_lists
from reidkit.utils.errors import DataError
from reidkit.utils.files import atomic_path

MAX_PNG_ROWS = 20


@dataclass
class QueryResult:
    """The ranked gallery of one query."""

    query: str
    paths: list[str]
    distances: list[float]
    indices: list[int]
    matches: list[bool | None]


def build_index(
    features: Union[str, Path],
    index: Union[str, Path],
    *,
    kind: str = "exact",
    distance: str | None = None,
    nlist: int = 0,
    m: int = 0,
    nbits: int = 8,
) -> GalleryIndex:
    """A new index at folder ``index`` holding the gallery of a features file.

    ``distance`` defaults to the one the features' model was trained with (metadata).
    """
    feats = _load(features)
    distance = distance or feats.meta.get("distance", "euclidean")
    gallery = GalleryIndex(feats.dim, kind, distance, nlist=nlist, m=m, nbits=nbits)
    gallery.add(feats)
    gallery.save(index)
    return gallery


def add_to_index(index: Union[str, Path], features: Union[str, Path]) -> GalleryIndex:
    """Append a features file to an existing index folder (rewritten atomically)."""
    gallery = GalleryIndex.load(index)
    gallery.add(_load(features))  # DataError on a dimension mismatch, before anything is saved
    gallery.save(index)
    return gallery


def _load(path: Union[str, Path]) -> Features:
    feats = load_features(path)
    feats.meta["source"] = str(path)
    return feats


def _queries(
    query: Union[str, Path, Sequence[Union[str, Path]]],
    model: Union[str, Path, None],
    device: str,
    threads: int | None,
) -> Features:
    """Query features: a features file, or image files embedded with ``model``."""
    items = [query] if isinstance(query, (str, Path)) else list(query)
    if len(items) == 1 and str(items[0]).lower().endswith(".npz"):
        return _load(items[0])
    if model is None:
        raise DataError(
            "querying with images needs a model (--model model.onnx, model.xml or a checkpoint); "
            "or pass a features .npz"
        )
    embedder = Embedder.load(model, device=device, threads=threads)
    paths = [str(p) for p in items]
    ids = identities(paths)
    return Features(embedder.embed(paths), paths, *(ids or (None, None)), meta={"source": "query"})


def search_gallery(
    index: Union[str, Path],
    query: Union[str, Path, Sequence[Union[str, Path]]],
    *,
    model: Union[str, Path, None] = None,
    k: int = 10,
    nprobe: int | None = None,
    png: Union[str, Path, None] = None,
    device: str = "cpu",
    threads: int | None = None,
    verbose: bool = True,
) -> list[QueryResult]:
    """Top-``k`` gallery items of each query; prints them and optionally draws ``png``."""
    gallery = GalleryIndex.load(index)
    queries = _queries(query, model, device, threads)
    if queries.dim != gallery.dim:
        raise DataError(
            f"query embeddings have D={queries.dim} but the index {index} holds "
            f"D={gallery.dim}; use the model the gallery was extracted with"
        )
    dist, idx = gallery.search(queries.feats, k, nprobe)
    g_ids = gallery.identities()
    results = []
    for qi, qpath in enumerate(queries.paths):
        keep = idx[qi] >= 0
        rows, d = idx[qi][keep], dist[qi][keep]
        matches: list[bool | None] = [None] * len(rows)
        if g_ids is not None and queries.pids is not None:
            matches = [bool(g_ids[0][j] == queries.pids[qi]) for j in rows]
        results.append(
            QueryResult(qpath, [gallery.paths[j] for j in rows], d.tolist(), rows.tolist(), matches)
        )
    if verbose:
        print(format_results(results, gallery.distance))
    if png is not None:
        _draw(results, png)
    return results


def format_results(results: Sequence[QueryResult], distance: str) -> str:
    """A plain-text table: one block per query, one line per ranked gallery item."""
    lines = []
    for r in results:
        lines.append(f"query {r.query}")
        for rank, (path, d, match) in enumerate(
            zip(r.paths, r.distances, r.matches, strict=True), 1
        ):
            mark = {True: "  same id", False: "", None: ""}[match]
            lines.append(f"  {rank:3d}  {distance} {d:9.4f}  {path}{mark}")
    return "\n".join(lines)


def _draw(results: Sequence[QueryResult], png: Union[str, Path]) -> Path:
    """The ranked-list picture: the evaluation report's renderer when every identity is known
    (green / red frames), else our own with grey frames and distances."""
    shown = list(results[:MAX_PNG_ROWS])
    if not all(m is not None for r in shown for m in r.matches):
        rows = [RankedRow(r.query, r.paths, r.distances, r.matches) for r in shown]
        return ranked_list_png(rows, png)
    gallery_paths = {i: p for r in shown for i, p in zip(r.indices, r.paths, strict=True)}
    rows = [
        RankedQuery(
            query=qi,
            gallery=r.indices,
            correct=[bool(m) for m in r.matches],
            first_hit=next((k + 1 for k, m in enumerate(r.matches) if m), None),
            ap=None,
        )
        for qi, r in enumerate(shown)
    ]
    image = render_ranked_lists(
        rows,
        lambda qi: thumbnail_source(shown[qi].query),
        lambda gi: thumbnail_source(gallery_paths[gi]),
    )
    out = Path(png)
    with atomic_path(out) as tmp:
        image.save(tmp, format="PNG")
    return out

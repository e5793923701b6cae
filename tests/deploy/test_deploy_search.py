"""extract -> features file (shards, resume, ranks) -> gallery index -> search; bad inputs."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest
import torch
from deploy_helpers import IMG_H, IMG_W, make_small_model, write_images
from PIL import Image

from reidkit.deploy.embedder import Embedder
from reidkit.deploy.extract import extract
from reidkit.deploy.features_io import Features, load_features, save_features
from reidkit.deploy.index import GalleryIndex
from reidkit.utils.errors import DataError


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small synthetic Market-1501 dataset at the model's input size."""
    from reidkit.data.synthetic import generate_synthetic

    root = tmp_path_factory.mktemp("synth")
    generate_synthetic(root, num_ids=2, num_test_ids=8, num_cameras=3, img_h=IMG_H, img_w=IMG_W)
    return root


def _protocol_rank1(results, q: Features, g_pids: np.ndarray, g_cams: np.ndarray) -> float:
    """Market rank-1 from ranked lists: drop junk and same-id same-camera gallery items."""
    hits = []
    for qi, r in enumerate(results):
        valid = [
            j
            for j in r.indices
            if g_pids[j] != -1 and not (g_pids[j] == q.pids[qi] and g_cams[j] == q.camids[qi])
        ]
        if any(g_pids[j] == q.pids[qi] for j in valid):
            hits.append(g_pids[valid[0]] == q.pids[qi])
    return float(np.mean(hits))


def test_extract_search_reproduces_evaluator_rank1(synth, tmp_path):
    from reidkit.config import validate_config
    from reidkit.data import load_dataset
    from reidkit.deploy.search import build_index, search_gallery
    from reidkit.evaluation.builtins import market_evaluate

    model = make_small_model(seed=2)
    cfg = validate_config(
        {"batches_dir": str(synth), "img_h": IMG_H, "img_w": IMG_W, "progress": False}
    )
    metrics = market_evaluate(cfg, model, dataset=load_dataset(synth), device="cpu")
    emb = Embedder.from_model(model, IMG_H, IMG_W)
    gallery = extract(emb, synth / "bounding_box_test", tmp_path / "g.npz", progress=False)
    query = extract(emb, synth / "query", tmp_path / "q.npz", progress=False)
    g, q = load_features(gallery), load_features(query)
    assert g.pids is not None and q.camids is not None and -1 in g.pids and 0 in g.pids
    build_index(gallery, tmp_path / "index")
    results = search_gallery(tmp_path / "index", query, k=len(g), verbose=False)
    rank1 = _protocol_rank1(results, q, g.pids, g.camids)
    assert rank1 == pytest.approx(metrics["rank1"], abs=1e-9)
    assert 0.0 < rank1 < 1.0  # an untrained model: neither trivial nor perfect


def test_extract_shards_ranks_and_resume(tmp_path, small_model):
    images = tmp_path / "imgs"
    write_images(images, 10, seed=5)
    emb = Embedder.from_model(small_model, IMG_H, IMG_W, batch_size=4)
    whole = load_features(extract(emb, images, tmp_path / "all.npz", progress=False))
    assert len(whole) == 10 and whole.pids is not None
    out = tmp_path / "sharded.npz"
    parts = tmp_path / "sharded.npz.parts"
    # rank 0 alone cannot merge: the shards of rank 1 are missing
    with pytest.raises(DataError, match=r"shards \[1, 3\] are not done yet"):
        extract(emb, images, out, shard_size=3, rank=0, world_size=2, progress=False)
    assert not out.exists() and sorted(p.name for p in parts.glob("shard_*")) == [
        "shard_000000.npz",
        "shard_000002.npz",
    ]
    assert extract(emb, images, out, shard_size=3, rank=1, world_size=2, progress=False) is None
    assert extract(emb, images, out, shard_size=3, rank=0, world_size=2, progress=False) == out
    merged = load_features(out)
    assert merged.paths == whole.paths and not parts.exists()
    np.testing.assert_allclose(merged.feats, whole.feats, atol=1e-5)
    # resume: a finished shard is reused as is (here a marked one), unfinished ones computed
    extract(emb, images, out, shard_size=4, rank=1, world_size=3, progress=False)
    done = load_features(parts / "shard_000001.npz")
    save_features(Features(done.feats * 0 + 7, done.paths), parts / "shard_000001.npz")
    resumed = load_features(extract(emb, images, out, shard_size=4, progress=False))
    assert np.all(resumed.feats[4:8] == 7) and np.allclose(resumed.feats[:4], whole.feats[:4])
    # another shard size is another extraction: refused while its parts exist
    extract(emb, images, out, shard_size=4, rank=1, world_size=3, progress=False)
    with pytest.raises(DataError, match="holds shards of another extraction"):
        extract(emb, images, out, shard_size=5, progress=False)
    fresh = extract(emb, images, out, shard_size=5, resume=False, progress=False)
    assert len(load_features(fresh)) == 10


def test_extract_bad_inputs_write_nothing(tmp_path, small_model):
    emb = Embedder.from_model(small_model, IMG_H, IMG_W)
    folder = tmp_path / "imgs"
    write_images(folder, 3)
    (folder / "0009_c1s1_000001_00.jpg").write_bytes(b"this is not a jpeg")
    out = tmp_path / "f.npz"
    with pytest.raises(DataError, match="0009_c1s1_000001_00.jpg: not a readable image") as err:
        extract(emb, folder, out, progress=False)
    assert "\n" not in str(err.value)
    assert not out.exists() and not (tmp_path / "f.npz.parts").exists()
    listing = tmp_path / "list.txt"
    listing.write_text("imgs/0000_c1s1_000000_00.jpg\n# comment\nimgs/nope.jpg\n")
    with pytest.raises(DataError, match=r"list.txt:3: listed image 'imgs/nope.jpg' not found"):
        extract(emb, listing, out, progress=False)
    small = tmp_path / "small"
    small.mkdir()
    Image.new("RGB", (5, 5)).save(small / "a.png")
    with pytest.raises(DataError, match="too small"):
        extract(emb, small, out, progress=False)
    with pytest.raises(DataError, match="no such image folder"):
        extract(emb, tmp_path / "missing", out, progress=False)
    assert not out.exists()


def _clusters(n: int, dim: int, seed: int) -> Features:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(20, dim)).astype(np.float32)
    labels = rng.integers(0, 20, n)
    feats = centres[labels] + 0.3 * rng.normal(size=(n, dim)).astype(np.float32)
    paths = [f"{int(p) + 1:04d}_c{i % 3 + 1}s1_{i:06d}_00.jpg" for i, p in enumerate(labels)]
    return Features(feats, paths, labels + 1, np.arange(n) % 3)


def test_index_kinds_save_load_and_incremental_add(tmp_path):
    gal, queries = _clusters(3000, 32, 0), _clusters(50, 32, 1).feats
    exact = GalleryIndex(32, "exact")
    exact.add(gal)
    d_exact, i_exact = exact.search(queries, 10)
    ref = torch.cdist(torch.from_numpy(queries), torch.from_numpy(gal.feats))
    np.testing.assert_array_equal(i_exact, torch.topk(ref, 10, largest=False).indices.numpy())
    np.testing.assert_allclose(d_exact, torch.topk(ref, 10, largest=False).values, rtol=1e-4)
    flat = GalleryIndex(32, "flat")
    flat.add(gal)
    np.testing.assert_array_equal(flat.search(queries, 10)[1], i_exact)
    for kind in ("ivf", "ivfpq"):
        approx = GalleryIndex(32, kind, nlist=16, m=8)
        approx.add(gal)
        _, idx = approx.search(queries, 10, nprobe=16)
        recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(idx, i_exact, strict=True)])
        assert recall >= (0.99 if kind == "ivf" else 0.5)
        approx.save(tmp_path / kind)
        back = GalleryIndex.load(tmp_path / kind)
        np.testing.assert_array_equal(back.search(queries, 10, nprobe=16)[1], idx)
    # incremental add equals building at once; saved and reloaded
    part = GalleryIndex(32, "exact")
    part.add(Features(gal.feats[:1000], gal.paths[:1000], gal.pids[:1000], gal.camids[:1000]))
    part.save(tmp_path / "inc")
    part = GalleryIndex.load(tmp_path / "inc")
    part.add(Features(gal.feats[1000:], gal.paths[1000:], gal.pids[1000:], gal.camids[1000:]))
    np.testing.assert_array_equal(part.search(queries, 10)[1], i_exact)
    assert part.identities()[0].shape == (3000,)
    cos = GalleryIndex(32, "exact", "cosine")
    cos.add(gal)
    d_cos, _ = cos.search(queries, 1)
    assert np.all((d_cos >= -1e-6) & (d_cos <= 2))


def test_index_rejects_wrong_dimension_and_small_training_sets(tmp_path):
    from reidkit.deploy.search import add_to_index, build_index

    save_features(_clusters(100, 32, 0), tmp_path / "g.npz")
    save_features(_clusters(10, 16, 1), tmp_path / "other.npz")
    build_index(tmp_path / "g.npz", tmp_path / "idx")
    before = {p.name: p.read_bytes() for p in (tmp_path / "idx").iterdir()}
    with pytest.raises(DataError, match=r"other.npz: embeddings have D=16 but the index holds"):
        add_to_index(tmp_path / "idx", tmp_path / "other.npz")
    assert {p.name: p.read_bytes() for p in (tmp_path / "idx").iterdir()} == before
    with pytest.raises(DataError, match="needs at least 256 vectors"):
        build_index(tmp_path / "g.npz", tmp_path / "pq", kind="ivfpq", nlist=4)
    assert not (tmp_path / "pq").exists()
    (tmp_path / "junk.npz").write_bytes(b"PK not really")
    with pytest.raises(DataError, match="not a readable features file"):
        build_index(tmp_path / "junk.npz", tmp_path / "x")
    with pytest.raises(DataError, match="not a readable reidkit index"):
        GalleryIndex.load(tmp_path / "nowhere")


def _cli(argv: list[str]) -> int:
    from reidkit.app.commands.deploy import register

    parser = argparse.ArgumentParser(prog="reidkit")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_extract_build_add_query_png(synth, tmp_path, small_model, capsys):
    from reidkit.deploy.export import export_onnx

    onnx_path = tmp_path / "m.onnx"
    export_onnx(small_model, onnx_path, IMG_H, IMG_W, num_images=2, distance="cosine")
    test = synth / "bounding_box_test"
    half = sorted(test.iterdir())
    (tmp_path / "a.txt").write_text("\n".join(str(p) for p in half[: len(half) // 2]))
    (tmp_path / "b.txt").write_text("\n".join(str(p) for p in half[len(half) // 2 :]))
    for name in ("a", "b"):
        args = ["extract", str(onnx_path), str(tmp_path / f"{name}.txt")]
        assert _cli([*args, "--out", str(tmp_path / f"{name}.npz"), "--no-progress"]) == 0
    assert _cli(["search", "build", str(tmp_path / "a.npz"), "--index", str(tmp_path / "ix")]) == 0
    assert _cli(["search", "add", str(tmp_path / "ix"), str(tmp_path / "b.npz")]) == 0
    query = sorted((synth / "query").iterdir())[0]
    png = tmp_path / "ranked.png"
    argv = ["search", "query", str(tmp_path / "ix"), str(query), "--model", str(onnx_path)]
    assert _cli([*argv, "-k", "5", "--png", str(png)]) == 0
    out = capsys.readouterr().out
    assert f"{len(half)} gallery items" in out and f"query {query}" in out
    assert out.count("cosine") == 5
    with Image.open(png) as img:
        assert img.size[0] > 6 * 48 and img.size[1] >= 96  # query + 5 results


def test_extract_from_lmdb_store_split(synth, tmp_path, small_model):
    from reidkit.data.pack import pack_dataset

    store = tmp_path / "synth.lmdb"
    pack_dataset(synth, store, progress=False)
    emb = Embedder.from_model(small_model, IMG_H, IMG_W)
    from_store = load_features(extract(emb, f"{store}:query", tmp_path / "s.npz", progress=False))
    from_folder = load_features(extract(emb, synth / "query", tmp_path / "f.npz", progress=False))
    assert all(p.startswith("query/") for p in from_store.paths)
    assert [Path(p).name for p in from_store.paths] == [Path(p).name for p in from_folder.paths]
    np.testing.assert_allclose(from_store.feats, from_folder.feats, atol=1e-6)
    np.testing.assert_array_equal(from_store.pids, from_folder.pids)
    with pytest.raises(DataError, match="no such split; valid: train, query, gallery"):
        extract(emb, f"{store}:validation", tmp_path / "x.npz", progress=False)


def test_search_with_features_query_and_unknown_ids(tmp_path, image_dir, capsys):
    from reidkit.deploy.search import build_index, search_gallery

    files = sorted(str(p) for p in image_dir.iterdir())
    rng = np.random.default_rng(0)
    save_features(Features(rng.normal(size=(len(files), 8)), files), tmp_path / "g.npz")
    save_features(Features(rng.normal(size=(2, 8)), ["q1", "q2"]), tmp_path / "q.npz")
    build_index(tmp_path / "g.npz", tmp_path / "ix", kind="flat", distance="cosine")
    png = tmp_path / "r.png"
    results = search_gallery(tmp_path / "ix", tmp_path / "q.npz", k=3, png=png)
    assert [r.query for r in results] == ["q1", "q2"] and all(len(r.paths) == 3 for r in results)
    assert all(m is None for r in results for m in r.matches)
    assert np.all(np.diff(results[0].distances) >= 0)
    assert "query q2" in capsys.readouterr().out
    with Image.open(png) as img:
        assert img.size[1] >= 2 * 128
    save_features(Features(rng.normal(size=(1, 4)), ["q"]), tmp_path / "q4.npz")
    with pytest.raises(DataError, match="query embeddings have D=4 but the index"):
        search_gallery(tmp_path / "ix", tmp_path / "q4.npz")
    with pytest.raises(DataError, match="querying with images needs a model"):
        search_gallery(tmp_path / "ix", files[0])


def test_exact_search_over_gallery_blocks_matches_one_block(monkeypatch):
    import reidkit.deploy.index as index_module

    gal, queries = _clusters(1000, 16, 3), _clusters(40, 16, 4).feats
    gal.feats[10] = gal.feats[500]  # an exact tie across blocks: the lower index must come first
    queries[0] = gal.feats[10]
    whole = GalleryIndex(16, "exact")
    whole.add(gal)
    d1, i1 = whole.search(queries, 7)
    monkeypatch.setattr(index_module, "_GALLERY_BLOCK", 96)
    monkeypatch.setattr(index_module, "_BLOCK", 96 * 5)
    d2, i2 = whole.search(queries, 7)
    np.testing.assert_array_equal(i1, i2)
    np.testing.assert_allclose(d1, d2, atol=1e-5)
    assert list(i2[0, :2]) == [10, 500]

"""Theme quality, stability and speed measured through the public API, against BERTopic.

    python bench/themes.py                  # Banking77 test and train through the service + BERTopic
    python bench/themes.py --scale 50000    # a clustering run over N items on a warm worker
    python bench/themes.py --stability      # tree stability: data grows by 30 %, leaf and parent ids kept

Quality: bulk-ingest the texts, let the worker embed them, POST /v1/clustering/runs, read every
item's theme_id back with GET /v1/items, and score against the intent labels (NMI and ARI count
unassigned items as one more cluster). BERTopic runs with its defaults on the same texts and the
same vectors (the ones our service stored) in the same run. Stability: cluster train, add test,
re-cluster, and count train items that kept their theme id; then run again on unchanged data.
Scale: N items with vectors resampled from Banking77 (plus noise) are written straight into
Postgres, then one run goes through the API; its timings and the worker's peak RSS are printed.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import sys
import threading
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import numpy as np
import psutil
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import ADMIN_KEY, SHARED, machine, service, stores

HEADERS = {"Authorization": f"Bearer {ADMIN_KEY}"}
# The bench starts its runs itself: automatic runs would cluster in between.
MANUAL_ONLY = {"CLUSTER_EVERY_NEW_ITEMS": str(10**9), "CLUSTER_EVERY_S": str(10**9)}


def load(split: str) -> list[tuple[str, str]]:
    with open(SHARED / "data" / "banking77" / f"{split}.csv", newline="") as f:
        return [(r["text"], r["category"]) for r in csv.DictReader(f)]


def ingest(client: httpx.Client, split: str, rows: list[tuple[str, str]]) -> None:
    items = [
        {"source": f"b77-{split}", "external_id": str(n), "kind": "ticket", "body": text,
         "created_at": "2026-11-16T10:00:00Z"}
        for n, (text, _) in enumerate(rows)
    ]  # fmt: skip
    for start in range(0, len(items), 5000):
        client.post("/v1/items/bulk", json=items[start : start + 5000], headers=HEADERS).raise_for_status()


async def wait_embedded(db_url: str, expected: int, timeout: float = 1800) -> float:
    conn = await asyncpg.connect(db_url)
    started = time.perf_counter()
    try:
        while True:
            done = await conn.fetchval("SELECT count(*) FROM item WHERE NOT pending")
            if done >= expected:
                return time.perf_counter() - started
            if time.perf_counter() - started > timeout:
                raise TimeoutError(f"only {done} of {expected} items processed")
            await asyncio.sleep(1)
    finally:
        await conn.close()


def run_clustering(client: httpx.Client) -> dict[str, Any]:
    run_id = client.post("/v1/clustering/runs", headers=HEADERS).json()["run_id"]
    while True:
        run: dict[str, Any] = client.get(f"/v1/clustering/runs/{run_id}", headers=HEADERS).json()
        if run["status"] in ("done", "failed"):
            if run["status"] == "failed":
                raise RuntimeError(run["error"])
            return run
        time.sleep(0.5)


def assignment(client: httpx.Client, source: str) -> dict[str, int | None]:
    result: dict[str, int | None] = {}
    cursor = None
    while True:
        params: dict[str, Any] = {"source": source, "limit": 1000}
        if cursor:
            params["cursor"] = cursor
        page = client.get("/v1/items", params=params, headers=HEADERS).json()
        result.update({it["external_id"]: it["theme_id"] for it in page["data"]})
        cursor = page["next_cursor"]
        if not cursor:
            return result


def score(truth: list[str], labels: list[int | None]) -> dict[str, float]:
    as_int = [-1 if lab is None else lab for lab in labels]
    return {
        "themes": len({lab for lab in as_int if lab >= 0}),
        "unassigned": sum(lab < 0 for lab in as_int) / len(as_int),
        "nmi": normalized_mutual_info_score(truth, as_int),
        "ari": adjusted_rand_score(truth, as_int),
    }


async def stored_vectors(db_url: str, source: str) -> tuple[list[str], np.ndarray]:
    conn = await asyncpg.connect(db_url)
    try:
        rows = await conn.fetch(
            "SELECT i.external_id, e.vector FROM item i JOIN embedding e USING (item_id) WHERE i.source = $1"
            " ORDER BY i.external_id::int",
            source,
        )
    finally:
        await conn.close()
    return [r["external_id"] for r in rows], np.stack([np.frombuffer(r["vector"], dtype="<f4") for r in rows])


def bertopic(texts: list[str], vectors: np.ndarray) -> tuple[list[int | None], float]:
    from bertopic import BERTopic

    started = time.perf_counter()
    topics, _ = BERTopic(embedding_model=None).fit_transform(texts, embeddings=vectors)
    return [None if t < 0 else int(t) for t in topics], time.perf_counter() - started


def line(name: str, s: dict[str, float], seconds: float) -> str:
    return (f"| {name} | {s['themes']:.0f} | {s['unassigned']:.1%} | {s['nmi']:.3f} | {s['ari']:.3f} | "
            f"{seconds:.1f} |")  # fmt: skip


def quality(with_bertopic: bool) -> None:
    lines = ["| run | themes | unassigned | NMI | ARI | seconds |", "|---|---|---|---|---|---|"]
    notes = []
    with stores() as (db_url, redis_url), service(db_url, redis_url, workers=1, extra_env=MANUAL_ONLY) as svc:
        client = httpx.Client(base_url=svc.base_url, timeout=120)
        if with_bertopic:  # a first fit pays BERTopic's numba compilation, as a fresh process does
            rng = np.random.default_rng(0)
            warm = rng.standard_normal((3000, 384)).astype(np.float32)
            _, cold = bertopic([f"text {n}" for n in range(3000)], warm / np.linalg.norm(warm, axis=1, keepdims=True))
            notes.append(f"BERTopic first fit in this process (numba compilation included): {cold:.1f} s")
        split_data = {split: load(split) for split in ("test", "train")}
        for split in ("test", "train"):
            rows = split_data[split]
            ingest(client, split, rows)
            embed_s = asyncio.run(wait_embedded(db_url, expected=len(rows)))
            run = run_clustering(client)
            got = assignment(client, f"b77-{split}")
            truth = [cat for _, cat in rows]
            ours = score(truth, [got[str(n)] for n in range(len(rows))])
            lines.append(line(f"ours, {split} ({len(rows):,})", ours, run["timings"]["total_s"]))
            notes.append(f"{split}: embedding by the worker took {embed_s:.0f} s; run timings {run['timings']}")
            if with_bertopic:
                ids, vectors = asyncio.run(stored_vectors(db_url, f"b77-{split}"))
                texts = [rows[int(i)][0] for i in ids]
                theirs, seconds = bertopic(texts, vectors)
                lines.append(
                    line(f"BERTopic defaults, {split}", score([rows[int(i)][1] for i in ids], theirs), seconds)
                )
                ratio = seconds / run["timings"]["cluster_s"]
                notes.append(
                    f"{split}: BERTopic fit / our clustering step = {ratio:.1f}x "
                    f"(/ our whole run incl. DB load and write: {seconds / run['timings']['total_s']:.1f}x)"
                )
            if split == "test":
                # the train split is clustered on its own: start it from an empty map
                asyncio.run(_reset(db_url))
        # stability: train was clustered last; add test and re-cluster
        before = assignment(client, "b77-train")
        ingest(client, "test", split_data["test"])
        asyncio.run(wait_embedded(db_url, expected=len(split_data["test"]) + len(split_data["train"])))
        run = run_clustering(client)
        after = assignment(client, "b77-train")
        had = [k for k, v in before.items() if v is not None]
        kept = sum(after[k] == before[k] for k in had) / max(len(had), 1)
        notes.append(
            f"stability: {kept:.1%} of train items in a theme kept their theme id after adding test "
            f"(run row: kept_share {run['kept_share']:.3f}, ARI {run['ari']:.3f})"
        )
        again_before = {
            **assignment(client, "b77-train"),
            **{f"t{k}": v for k, v in assignment(client, "b77-test").items()},
        }
        run_clustering(client)
        again_after = {
            **assignment(client, "b77-train"),
            **{f"t{k}": v for k, v in assignment(client, "b77-test").items()},
        }
        moved = sum(again_after[k] != again_before[k] for k in again_before)
        notes.append(f"same data, run again: {moved} of {len(again_before):,} items changed theme")
    print(f"machine: {machine()}")
    print("\n".join(lines))
    for note in notes:
        print(f"- {note}")


async def _reset(db_url: str) -> None:
    conn = await asyncpg.connect(db_url)
    try:
        await conn.execute("TRUNCATE item, theme, clustering_run CASCADE")
    finally:
        await conn.close()


async def seed_scale(db_url: str, n: int) -> None:
    """N items with Banking77-like vectors (resampled with noise), straight into Postgres."""
    from clustering.embed import OnnxInt8Embedder

    texts = load("train") + load("test")
    rng = np.random.default_rng(0)
    conn = await asyncpg.connect(db_url)
    try:
        base = banking77_vectors(texts)
        picks = rng.integers(0, len(base), n)
        vectors = base[picks] + 0.02 * rng.standard_normal((n, base.shape[1])).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        await conn.execute(
            "INSERT INTO item (source, external_id, kind, body, clean_text, created_at, payload_hash, pending,"
            " embedded_at) SELECT 'scale', k::text, 'ticket', texts[p + 1], texts[p + 1], now(), 'h', false, now()"
            " FROM unnest($2::int[]) WITH ORDINALITY AS t(p, k), (SELECT $1::text[] AS texts) AS all_texts",
            [t for t, _ in texts], picks.tolist(),
        )  # fmt: skip
        ids = await conn.fetch("SELECT item_id FROM item WHERE source = 'scale' ORDER BY external_id::bigint")
        await conn.copy_records_to_table(
            "embedding",
            records=[
                (r["item_id"], OnnxInt8Embedder.model_version, b"h", v.astype("<f4").tobytes())
                for r, v in zip(ids, vectors, strict=True)
            ],  # fmt: skip
            columns=["item_id", "model_version", "content_hash", "vector"],
        )
    finally:
        await conn.close()


def banking77_vectors(texts: list[tuple[str, str]]) -> np.ndarray:
    """The 13,083 Banking77 texts through our default embedder, cached in /tmp between runs."""
    cache = Path("/tmp/b77_int8_vectors.npy")
    if cache.exists():
        return np.load(cache)
    from clustering.embed import build_embedder

    embedder = build_embedder("onnx-int8", Path(__file__).resolve().parents[1] / "var" / "models")
    vectors = embedder.embed([t for t, _ in texts])
    np.save(cache, vectors)
    return vectors


def scale(n: int) -> None:
    with stores() as (db_url, redis_url):
        asyncio.run(seed_scale(db_url, n))
        with service(db_url, redis_url, workers=1, extra_env=MANUAL_ONLY) as svc:
            client = httpx.Client(base_url=svc.base_url, timeout=120)
            worker = psutil.Process(svc.workers[0].pid)
            peak = [0.0]
            stop = threading.Event()

            def sample() -> None:
                while not stop.is_set():
                    try:
                        peak[0] = max(peak[0], worker.memory_info().rss / 2**20)
                    except psutil.Error:
                        return
                    time.sleep(0.1)

            # wait until the worker is up (model loaded, numba warmed): its heartbeat shows
            while client.get("/readyz").status_code != 200:
                time.sleep(1)
            threading.Thread(target=sample, daemon=True).start()
            started = time.perf_counter()
            run = run_clustering(client)
            wall = time.perf_counter() - started
            stop.set()
    print(f"machine: {machine()}")
    print("| items | themes | unassigned | run wall s (API to done) | timings | worker peak RSS MB |")
    print("|---|---|---|---|---|---|")
    print(f"| {n:,} | {run['themes']} | {run['unassigned'] / n:.1%} | {wall:.1f} | {run['timings']} | {peak[0]:.0f} |")


def load_set(name: str) -> list[tuple[str, str]]:
    if name == "hwu64":
        with open(SHARED / "data" / "hwu64" / "hwu64.csv", newline="") as f:
            return [(r["text"], r["intent"]) for r in csv.DictReader(f)]
    return load("train") + load("test")


def tree_of(client: httpx.Client) -> dict[int, int | None]:
    """Leaf theme id -> its parent id, over every current shown leaf (nothing is hidden here)."""
    parents: dict[int, int | None] = {}
    cursor = None
    while True:
        params: dict[str, Any] = {"level": "leaf", "limit": 1000}
        if cursor:
            params["cursor"] = cursor
        page = client.get("/v1/themes", params=params, headers=HEADERS).json()
        parents.update({t["theme_id"]: t["parent_id"] for t in page["data"]})
        cursor = page["next_cursor"]
        if not cursor:
            return parents


def stability_bench(sets: list[str]) -> None:
    """Each set in a seeded random order: cluster the first 1/1.3 of it, add the remaining 30 %,
    cluster again, and count the first part's items that keep their leaf id and their parent id."""
    print(f"machine: {machine()}")
    print("| set | items before -> after | leaves | parents | leaf ids kept | parent ids kept | run ARI |")
    print("|---|---|---|---|---|---|---|")
    for name in sets:
        rows = load_set(name)
        order = np.random.default_rng(42).permutation(len(rows))
        first = int(round(len(rows) / 1.3))
        with stores() as (db_url, redis_url), service(db_url, redis_url, workers=1, extra_env=MANUAL_ONLY) as svc:
            client = httpx.Client(base_url=svc.base_url, timeout=120)
            base = [rows[i] for i in order[:first]]
            ingest(client, f"{name}-a", base)
            asyncio.run(wait_embedded(db_url, expected=len(base)))
            run_clustering(client)
            before, parents_before = assignment(client, f"b77-{name}-a"), tree_of(client)
            ingest(client, f"{name}-b", [rows[i] for i in order[first:]])
            asyncio.run(wait_embedded(db_url, expected=len(rows)))
            run = run_clustering(client)
            after, parents_after = assignment(client, f"b77-{name}-a"), tree_of(client)
        had = [k for k, v in before.items() if v is not None]
        leaf_kept = sum(after[k] == before[k] for k in had) / max(len(had), 1)
        under = [k for k in had if parents_before.get(before[k] or 0) is not None]
        parent_kept = sum(
            after[k] is not None and parents_after.get(after[k] or 0) == parents_before[before[k] or 0] for k in under
        ) / max(len(under), 1)
        leaves = len(parents_after)
        n_parents = len({p for p in parents_after.values() if p is not None})
        print(
            f"| {name} | {first:,} -> {len(rows):,} | {leaves} | {n_parents} | {leaf_kept:.1%} | {parent_kept:.1%} |"
            f" {run['ari']:.3f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=int, help="time one run over N items instead of the quality bench")
    parser.add_argument("--no-bertopic", action="store_true")
    parser.add_argument("--stability", action="store_true", help="leaf and parent ids kept when data grows 30 %%")
    parser.add_argument("--sets", default="banking77,hwu64", help="data sets of --stability")
    args = parser.parse_args()
    if args.stability:
        stability_bench(args.sets.split(","))
    elif args.scale:
        scale(args.scale)
    else:
        quality(not args.no_bertopic)


if __name__ == "__main__":
    main()

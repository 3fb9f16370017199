"""Alerts bench (issue #18): detection quality on 16 replayed weeks, and ingest-to-message latency.

Quality runs the pure detector (clustering/incidents.py) day by day, exactly as the detection job
calls it, with the datasets' gold labels as themes (Banking77 intents and HWU64 intents as leaves;
HWU64 scenarios and Banking77 label prefixes as parents). Each dataset item is replayed once at a
random time in 16 weeks (weekends at half volume), with segment fields drawn per theme. Planted
events in weeks 9-16: a theme tripled for 3 days, a new theme appearing (a held-out intent at its
own rate), and a surge of one segment value only (a theme's volume again doubled on top for 3 days,
all in one channel or product value that is rare for the theme). A second replay of the same
weeks plants nothing and counts false incidents per 100 themes (leaves + parents) over 8 weeks.

Latency (`--latency`) starts the API and a worker on embedded stores, a local receiver on
127.0.0.1, ingests a burst into one theme and times ingest -> the receiver's POST.

    python bench/alerts.py [--seeds 10] [--p-value 0.01] [--scale 1] [--latency]
"""

from __future__ import annotations

import argparse
import csv
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np

from bench.common import SHARED
from clustering.incidents import (
    Event,
    OpenIncident,
    Series,
    Thresholds,
    detect,
    merge,
    over_represented,
    roll_up,
)

DAYS = 112
FIRST_CHECKED_DAY = 56
CHANNELS = ("email", "chat", "phone", "web", "social")
PRODUCTS = ("app", "card", "web", "api", "atm")
PRIORITIES = ("low", "normal", "high", "urgent")
LANGUAGES = ("en", "de", "fr", "es")


@dataclass
class Item:
    day: int
    theme: str
    segments: dict[str, list[str]]


@dataclass
class Planted:
    kind: str  # "triple", "new", "segment"
    theme: str
    start_day: int
    segment: tuple[str, str] | None = None
    detected: bool = False
    segment_rank: int | None = None


@dataclass
class Timeline:
    items: list[Item] = field(default_factory=list)
    planted: list[Planted] = field(default_factory=list)


def load_labels() -> dict[str, tuple[str, list[str]]]:
    """theme -> (parent, texts)."""
    themes: dict[str, tuple[str, list[str]]] = {}
    for split in ("train", "test"):
        with open(SHARED / "data" / "banking77" / f"{split}.csv", newline="") as f:
            for r in csv.DictReader(f):
                name = "b77:" + r["category"]
                themes.setdefault(name, ("b77:" + r["category"].split("_")[0], []))[1].append(r["text"])
    with open(SHARED / "data" / "hwu64" / "hwu64.csv", newline="") as f:
        for r in csv.DictReader(f):
            name = "hwu:" + r["intent"]
            themes.setdefault(name, ("hwu:" + r["scenario"], []))[1].append(r["text"])
    return themes


def draw_segments(
    rng: np.random.Generator, mix: dict[str, np.ndarray], source: str, n: int
) -> list[dict[str, list[str]]]:
    channel = rng.choice(5, size=n, p=mix["channel"])
    product = rng.choice(5, size=n, p=mix["product"])
    priority = rng.choice(4, size=n, p=[0.3, 0.5, 0.15, 0.05])
    language = rng.choice(4, size=n, p=[0.7, 0.1, 0.1, 0.1])
    return [
        {
            "source": [source],
            "channel": [CHANNELS[channel[k]]],
            "product": [PRODUCTS[product[k]]],
            "priority": [PRIORITIES[priority[k]]],
            "language": [LANGUAGES[language[k]]],
            "tag": [],
        }
        for k in range(n)
    ]


def random_days(rng: np.random.Generator, lo: int, hi: int, n: int) -> list[int]:
    """Days in [lo, hi) with weekends (days 5, 6 mod 7; day 0 is a Monday) at half weight."""
    days = np.arange(lo, hi)
    weight = np.where(days % 7 >= 5, 0.5, 1.0)
    return rng.choice(days, size=n, p=weight / weight.sum()).tolist()


def build(
    themes: dict[str, tuple[str, list[str]]], seed: int, *, plant: bool, scale: int, n_plants: int = 12
) -> tuple[Timeline, dict[str, str]]:
    rng = np.random.default_rng(seed)
    names = sorted(themes)
    held_out = set(rng.choice(names, size=n_plants // 3, replace=False).tolist()) if plant else set()
    mixes = {
        t: {
            "channel": rng.dirichlet([3.0, 1.0, 1.0, 0.3, 0.3]),
            "product": rng.dirichlet([3.0, 1.0, 1.0, 0.3, 0.3]),
        }
        for t in names
    }

    def source(t: str) -> str:
        return "zendesk" if t.startswith("b77") else "intercom"

    tl = Timeline()
    for t in names:
        if t in held_out:
            continue
        n = len(themes[t][1]) * scale
        for day, segs in zip(random_days(rng, 0, DAYS, n), draw_segments(rng, mixes[t], source(t), n), strict=True):
            tl.items.append(Item(day, t, segs))
    if plant:
        live = [t for t in names if t not in held_out]
        chosen = rng.choice(live, size=2 * (n_plants // 3), replace=False).tolist()
        for n, t in enumerate(chosen):
            start = int(rng.integers(FIRST_CHECKED_DAY + 7, DAYS - 3))
            rate = len(themes[t][1]) * scale / DAYS
            extra = int(rng.poisson(2 * rate * 3))
            segs = draw_segments(rng, mixes[t], source(t), extra)
            if n % 2 == 0:
                tl.planted.append(Planted("triple", t, start))
            else:
                fld = "channel" if n % 4 == 1 else "product"
                values = CHANNELS if fld == "channel" else PRODUCTS
                rare = values[int(np.argmin(mixes[t][fld]))]
                tl.planted.append(Planted("segment", t, start, (fld, rare)))
                for seg in segs:
                    seg[fld] = [rare]
            for seg in segs:
                tl.items.append(Item(start + int(rng.integers(3)), t, seg))
        for t in sorted(held_out):
            start = int(rng.integers(FIRST_CHECKED_DAY + 7, DAYS - 14))
            tl.planted.append(Planted("new", t, start))
            n = int(len(themes[t][1]) * scale / DAYS * (DAYS - start))
            for day, seg in zip(
                random_days(rng, start, DAYS, n), draw_segments(rng, mixes[t], source(t), n), strict=True
            ):
                tl.items.append(Item(day, t, seg))
    return tl, {t: themes[t][0] for t in names}


@dataclass
class Recorded:
    incident_id: int
    event: Event
    theme: str
    segments: list[tuple[str, str]]


def replay(tl: Timeline, parents: dict[str, str], th: Thresholds) -> tuple[list[Recorded], int]:
    """Run the daily detection over weeks 9-16; returns the incidents and the number of themes."""
    leaf_names = sorted({i.theme for i in tl.items})
    parent_names = sorted({parents[t] for t in leaf_names})
    ids = {name: n + 1 for n, name in enumerate(leaf_names + parent_names)}
    names = {v: k for k, v in ids.items()}
    row = {t: n for n, t in enumerate(leaf_names)}
    counts = np.zeros((len(leaf_names), DAYS), dtype=np.int64)
    first: dict[str, int] = {}
    by_day: dict[str, list[list[dict[str, list[str]]]]] = {t: [[] for _ in range(DAYS)] for t in ids}
    for it in tl.items:
        counts[row[it.theme], it.day] += 1
        first[it.theme] = min(first.get(it.theme, DAYS), it.day)
        by_day[it.theme][it.day].append(it.segments)
        by_day[parents[it.theme]][it.day].append(it.segments)

    def segments_between(theme: str, lo: int, hi: int) -> list[dict[str, list[str]]]:
        return [s for d in range(max(lo, 0), min(hi, DAYS)) for s in by_day[theme][d]]

    parent_of = {ids[t]: ids[parents[t]] for t in leaf_names}
    recorded: list[Recorded] = []
    for day in range(FIRST_CHECKED_DAY, DAYS):
        leaves = [Series(ids[t], "leaf", "spike", first[t], counts[n, : day + 1]) for n, t in enumerate(leaf_names)]
        series = leaves + roll_up(leaves, parent_of)
        events = detect(series, day, day % 7, th)
        known = [
            OpenIncident(r.incident_id, r.event.kind, r.event.theme_id, r.event.level,
                         r.event.start_day, r.event.end_day, r.event.score)
            for r in recorded
        ]  # fmt: skip
        for d in merge(events, known):
            e = d.event
            theme = names[e.theme_id]
            start = (
                e.start_day if d.incident_id is None else min(e.start_day, recorded[d.incident_id - 1].event.start_day)
            )
            window = segments_between(theme, start, e.end_day + 1)
            base = segments_between(theme, start - 56, start)
            segs = [(s.field, s.value) for s in over_represented(window, base)]
            if d.incident_id is None:
                recorded.append(Recorded(len(recorded) + 1, e, theme, segs))
            else:
                r = recorded[d.incident_id - 1]
                start = min(r.event.start_day, e.start_day)
                peak = e if e.score >= r.event.score else r.event
                r.event = Event(peak.kind, peak.theme_id, peak.level, r.event.granularity, start,
                                max(r.event.end_day, e.end_day), peak.observed, peak.expected, peak.score)  # fmt: skip
                r.segments = segs
    return recorded, len(leaf_names) + len(parent_names)


def score_planted(tl: Timeline, recorded: Sequence[Recorded]) -> int:
    """Marks planted events found; returns the number of incidents that match no planted event."""
    matched: set[int] = set()
    for p in tl.planted:
        kind = "emerging" if p.kind == "new" else "spike"
        for r in recorded:
            if r.theme != p.theme or r.event.kind != kind or r.event.level != "leaf":
                continue
            if r.event.end_day >= p.start_day and r.event.start_day <= p.start_day + 9:
                p.detected = True
                matched.add(r.incident_id)
                if p.segment is not None:
                    p.segment_rank = r.segments.index(p.segment) + 1 if p.segment in r.segments else None
        # the same event seen at the parent level is not a false incident
    return sum(1 for r in recorded if r.incident_id not in matched and r.event.level == "leaf")


def quality(seeds: int, th: Thresholds, scale: int) -> None:
    themes = load_labels()
    planted: list[Planted] = []
    false_planted = 0
    false_quiet = 0
    theme_count = 0
    quiet_kinds: Counter[str] = Counter()
    for seed in range(seeds):
        tl, parents = build(themes, seed, plant=True, scale=scale)
        recorded, _ = replay(tl, parents, th)
        false_planted += score_planted(tl, recorded)
        planted += tl.planted
        quiet, _ = build(themes, 1000 + seed, plant=False, scale=scale)
        rec_quiet, n_themes = replay(quiet, parents, th)
        false_quiet += len(rec_quiet)
        quiet_kinds.update(f"{r.event.level}/{r.event.granularity}" for r in rec_quiet)
        theme_count += n_themes
    by_kind: dict[str, list[Planted]] = {}
    for p in planted:
        by_kind.setdefault(p.kind, []).append(p)
    recall = sum(p.detected for p in planted) / len(planted)
    print(f"thresholds: p < {th.p_value}, >= {th.min_excess} above the mean; scale x{scale}; {seeds} seeds")
    print(f"incident recall: {recall:.3f} ({sum(p.detected for p in planted)}/{len(planted)})")
    for kind, ps in sorted(by_kind.items()):
        print(f"  {kind}: {sum(p.detected for p in ps)}/{len(ps)}")
    seg = [p for p in planted if p.kind == "segment" and p.detected]
    top2 = sum(1 for p in seg if p.segment_rank is not None and p.segment_rank <= 2)
    print(f"planted segment in the top 2: {top2}/{len(seg)} = {top2 / max(len(seg), 1):.3f}")
    print(
        f"false incidents without planted events: {false_quiet} over {theme_count} theme-runs of 8 weeks"
        f" = {100 * false_quiet / theme_count:.2f} per 100 themes ({dict(quiet_kinds)})"
    )
    print(f"unmatched leaf incidents in planted runs: {false_planted}")


LATENCY_THEMES = ("card_arrival", "exchange_rate", "pin_blocked", "lost_or_stolen_card", "top_up_failed")


def latency(trials: int) -> None:
    """Ingest -> the message leaving: a real API and worker (relay, detection, delivery), a real
    receiver on 127.0.0.1. Each trial: a theme with 9 weeks of steady history (3 a day, written
    to Postgres with their theme), then 40 new tickets about it posted through the API; the worker
    embeds them, assigns them to the theme by its centroid, the schedule runs detection and the
    delivery job posts to the receiver."""
    import asyncio
    import time as clock

    from bench.common import ADMIN_KEY, service, stores
    from clustering.embed import build_embedder
    from clustering.text import prepare_text
    from schemas.settings import Settings
    from tests.outbound.loopback import Receiver

    themes = load_labels()
    receiver = Receiver().start()
    arrivals: list[float] = []
    original = receiver.received

    class Timed(list):  # type: ignore[type-arg]
        def append(self, item: object) -> None:
            arrivals.append(clock.time())
            super().append(item)

    receiver.received = Timed(original)
    settings = Settings()
    embedder = build_embedder(settings.embedder, settings.model_cache_dir)
    extra = {
        "OUTBOUND_ALLOWED_HOSTS": '["127.0.0.1"]',
        "SECRET_KEY": "bench-secret-key-0123456789abcdef-0123456789",
        "ALERTS_DETECT_EVERY_S": str(settings.alerts_detect_every_s),
        "CLUSTER_EVERY_NEW_ITEMS": "10000000",  # no reclustering mid-bench: the themes are planted
    }
    with stores() as (db_url, redis_url), service(db_url, redis_url, workers=1, extra_env=extra) as svc:
        import asyncpg
        import httpx

        async def run() -> None:
            conn = await asyncpg.connect(db_url)
            admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
            async with httpx.AsyncClient(base_url=svc.base_url, timeout=30) as http:
                dest = (
                    await http.post(
                        "/v1/alerts/destinations",
                        json={"kind": "slack", "name": "bench", "url": receiver.url("/slack")},
                        headers=admin,
                    )
                ).json()["destination_id"]
                r = await http.post(
                    "/v1/alerts/rules", json={"name": "all", "on": ["spike"], "destination_ids": [dest]}, headers=admin
                )
                assert r.status_code == 201, r.text
                deadline = clock.monotonic() + 300
                while not await conn.fetchval("SELECT count(*) FROM worker_heartbeat"):
                    assert clock.monotonic() < deadline, "no worker"
                    await asyncio.sleep(1)
                results = []
                for trial in range(trials):
                    label = LATENCY_THEMES[trial % len(LATENCY_THEMES)]
                    texts = themes["b77:" + label][1]
                    history, fresh = texts[:-40], texts[-40:]
                    vectors = embedder.embed([prepare_text(None, t) for t in history])
                    centroid = vectors.mean(axis=0)
                    centroid /= np.linalg.norm(centroid)
                    theme_id = await conn.fetchval(
                        "INSERT INTO theme (label, status, size, centroid, first_seen_at)"
                        " VALUES ($1, 'active', 186, $2, now() - interval '70 days') RETURNING theme_id",
                        label, centroid.astype("<f4").tobytes(),
                    )  # fmt: skip
                    await conn.executemany(
                        "INSERT INTO item (source, external_id, kind, body, created_at, payload_hash, theme_id,"
                        " pending, processed_at) VALUES ('hist', $1, 'ticket', $2, now() - $3::interval,"
                        " '\\x00', $4, false, now())",
                        [(f"{label}-{d}-{n}", history[n], timedelta(days=d, hours=n + 1), theme_id)
                         for d in range(1, 63) for n in range(3)],
                    )  # fmt: skip
                    burst = [
                        {"source": "bench", "external_id": f"{label}-burst-{n}", "kind": "ticket",
                         "body": fresh[n], "created_at": datetime.now(UTC).isoformat(), "channel": "chat"}
                        for n in range(40)
                    ]  # fmt: skip
                    before = len(arrivals)
                    started = clock.time()
                    resp = await http.post("/v1/items/bulk", json=burst, headers=admin)
                    assert resp.status_code == 202, resp.text
                    deadline = clock.monotonic() + 300
                    while len(arrivals) == before:
                        assert clock.monotonic() < deadline, "no message within 300 s"
                        await asyncio.sleep(0.2)
                    left = arrivals[before] - started
                    processed = await conn.fetchval(
                        "SELECT extract(epoch FROM max(processed_at)) FROM item WHERE source = 'bench'"
                    )
                    assigned = await conn.fetchval(
                        "SELECT count(*) FROM item WHERE source = 'bench' AND theme_id = $1", theme_id
                    )
                    results.append(left)
                    print(
                        f"trial {trial + 1} ({label}): ingest -> message {left:.1f} s"
                        f" (items processed after {float(processed) - started:.1f} s, {assigned}/40 in the theme)"
                    )
                    await asyncio.sleep(5)
                print(f"ingest -> message leaving: max {max(results):.1f} s over {len(results)} trials")
            await conn.close()

        asyncio.run(run())
    receiver.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--p-value", type=float, default=Thresholds().p_value)
    parser.add_argument("--scale", type=int, default=1)
    parser.add_argument("--latency", action="store_true")
    parser.add_argument("--trials", type=int, default=3)
    args = parser.parse_args()
    quality(args.seeds, Thresholds(p_value=args.p_value), args.scale)
    if args.latency:
        latency(args.trials)


if __name__ == "__main__":
    main()

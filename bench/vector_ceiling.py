"""How far the MiniLM vectors let any clusterer go: KMeans told the true number of intents, on the
vectors as the service stores them and on transformations of them that a clusterer could apply.

    python bench/vector_ceiling.py                       # every set, every transformation
    python bench/vector_ceiling.py --sets hwu64 --only raw,lexical-0.5

Issue 21's leaf goals (HWU64 NMI >= 0.80, ARI >= 0.56; Banking77 test 0.84 / 0.60) sit above what
KMeans reaches when it is given the true k on these vectors, so the map's quality is bounded by
the vectors' geometry more than by the clusterer. This script measures that bound and whether a
cheap change of representation lifts it:

- ``raw``: the L2-normalised MiniLM vectors (what the service clusters).
- ``lexical-A``: the vectors beside an LSA block of the items' own words (TF-IDF of 1-2 grams,
  sublinear, English stop words dropped, 100 SVD dimensions, L2-normalised) at weight A, then
  normalised again: intents that differ by one verb ("set alarm" / "remove alarm") might be told
  apart by words that the sentence vector blurs.
- ``whiten-D``: PCA whitening to D dimensions, eigenvalues shrunk by their mean (the
  anisotropy correction of Su et al. 2021, "Whitening sentence representations").

HWU64 is also scored against its 18 scenarios with KMeans told k = 18. Vectors come from the
cache of bench/themes_quality.py (var/emb). KMeans: 3 starts, seed 0, one BLAS thread.
"""

import argparse
import sys
from pathlib import Path

import numpy as np
import numpy.typing as npt
from sklearn.cluster import KMeans
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.themes_quality import Dataset, banking77, codes, hwu64

Vectors = npt.NDArray[np.float32]
TRANSFORMS = ("raw", "lexical-0.5", "lexical-1.0", "whiten-384", "whiten-128")


def _unit(x: npt.NDArray[np.float64]) -> Vectors:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    unit: Vectors = (x / norms).astype(np.float32)
    return unit


def lexical(data: Dataset, weight: float) -> Vectors:
    terms = TfidfVectorizer(sublinear_tf=True, min_df=2, ngram_range=(1, 2), stop_words="english")
    lsa = TruncatedSVD(100, random_state=0).fit_transform(terms.fit_transform(data.texts))
    return _unit(np.hstack([data.vectors.astype(np.float64), weight * _unit(lsa)]))


def whiten(data: Dataset, dims: int) -> Vectors:
    x = data.vectors.astype(np.float64)
    centred = x - x.mean(axis=0)
    eigenvalues, eigenvectors = np.linalg.eigh(np.cov(centred.T))
    top = np.argsort(eigenvalues)[::-1][:dims]
    return _unit(centred @ (eigenvectors[:, top] / np.sqrt(eigenvalues[top] + eigenvalues.mean())))


def transformed(data: Dataset, name: str) -> Vectors:
    kind, _, value = name.partition("-")
    if kind == "raw":
        raw: Vectors = data.vectors
        return raw
    if kind == "lexical":
        return lexical(data, float(value))
    if kind == "whiten":
        return whiten(data, int(value))
    raise SystemExit(f"unknown transformation {name!r}; use {', '.join(TRANSFORMS)}")


def kmeans_scores(vectors: Vectors, gold: list[str]) -> str:
    truth = codes(gold)
    with threadpool_limits(1):
        labels = KMeans(len(set(gold)), n_init=3, random_state=0).fit_predict(vectors)
    return f"NMI {normalized_mutual_info_score(truth, labels):.3f} ARI {adjusted_rand_score(truth, labels):.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", default="b77_test,b77_train,hwu64")
    parser.add_argument("--only", default=",".join(TRANSFORMS), help="transformations, comma-separated")
    args = parser.parse_args()
    loaders = {"b77_test": lambda: banking77("test"), "b77_train": lambda: banking77("train"), "hwu64": hwu64}
    for set_name in args.sets.split(","):
        if set_name not in loaders:
            raise SystemExit(f"unknown set {set_name!r}; use {', '.join(loaders)}")
        data = loaders[set_name]()
        for name in args.only.split(","):
            vectors = transformed(data, name)
            line = f"{set_name:10s} {name:12s} intents: {kmeans_scores(vectors, data.intents)}"
            if data.scenarios is not None:
                line += f" | scenarios: {kmeans_scores(vectors, data.scenarios)}"
            print(line, flush=True)


if __name__ == "__main__":
    main()

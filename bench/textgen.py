"""Synthetic text classification data shaped like 20 newsgroups, for the sparse benchmarks.

Each class has its own word distribution: a Zipf background over the vocabulary, reweighted
per class by log-normal factors (every word leans a little towards some classes, as real words
do). A document draws a log-normal number of tokens, each from its class's distribution with
probability ``topical``, else from the background. Every vocabulary word is planted once in a
training document, so the vectorizer's vocabulary is the whole vocabulary.

``newsgroups_like()`` gives TF-IDF matrices (TfidfVectorizer over generated text) with the
shape of scikit-learn's 20 newsgroups: 11,314 training and 7,532 test documents, 20 classes,
74,731 features, about 1.45M non-zeros in the training matrix. ``hashed(n)`` gives n documents
through HashingVectorizer (2^20 features by default), generated and vectorised in chunks.

Run it to print the shapes and time the generation:
    .venv/bin/python bench/textgen.py [--hashed N]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

N_TRAIN, N_TEST, N_CLASSES, VOCABULARY = 11_314, 7_532, 20, 74_731


class Corpus:
    """The word distributions of ``n_classes`` classes over ``vocabulary`` words, fixed by ``seed``."""

    def __init__(self, n_classes: int = N_CLASSES, vocabulary: int = VOCABULARY, seed: int = 0,
                 spread: float = 1.1, topical: float = 0.3, mean_tokens: float = 167.0):
        rng = np.random.default_rng(seed)
        self.n_classes, self.vocabulary = n_classes, vocabulary
        self.topical, self.mean_tokens = topical, mean_tokens
        background = 1.0 / (np.arange(vocabulary) + 2.7) ** 1.07  # Zipf
        self.background_cdf = np.cumsum(background / background.sum())
        self.class_cdf = []
        for _ in range(n_classes):
            p = background * np.exp(spread * rng.standard_normal(vocabulary))
            self.class_cdf.append(np.cumsum(p / p.sum()))
        self.words = np.array([f"w{i}" for i in range(vocabulary)], dtype=object)

    def tokens(self, y: np.ndarray, rng) -> tuple[np.ndarray, np.ndarray]:
        """(token ids of all documents, one after the other; each document's length) for labels y."""
        lengths = np.maximum(5, rng.lognormal(np.log(self.mean_tokens) - 0.32, 0.8, size=len(y))).astype(np.int64)
        tokens = np.empty(lengths.sum(), dtype=np.int64)
        ends = np.cumsum(lengths)
        owner = np.repeat(y, lengths)
        topical = rng.random(len(tokens)) < self.topical
        u = rng.random(len(tokens))
        tokens[~topical] = np.searchsorted(self.background_cdf, u[~topical])
        for c in range(self.n_classes):
            mine = topical & (owner == c)
            tokens[mine] = np.searchsorted(self.class_cdf[c], u[mine])
        np.minimum(tokens, self.vocabulary - 1, out=tokens)  # u can round past the last cdf value
        return tokens, ends

    def documents(self, y: np.ndarray, rng, plant: bool = False) -> list[str]:
        """Text documents for labels y; with ``plant``, every vocabulary word once somewhere."""
        tokens, ends = self.tokens(y, rng)
        docs = [" ".join(self.words[tokens[a:b]]) for a, b in zip(np.r_[0, ends[:-1]], ends)]
        if plant:
            homes = rng.integers(0, len(docs), size=self.vocabulary)
            extra: dict[int, list[str]] = {}
            for word, home in enumerate(homes):
                extra.setdefault(int(home), []).append(self.words[word])
            for home, words in extra.items():
                docs[home] += " " + " ".join(words)
        return docs


def labels(n: int, n_classes: int, rng) -> np.ndarray:
    """Labels with slightly unequal class sizes, as in 20 newsgroups (about 3-5% of documents each)."""
    weights = rng.uniform(0.6, 1.0, size=n_classes)
    return rng.choice(n_classes, size=n, p=weights / weights.sum())


def newsgroups_like(seed: int = 0, **corpus_options):
    """(X_train, X_test, y_train, y_test): TF-IDF (float64 CSR, as TfidfVectorizer gives), full vocabulary."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    rng = np.random.default_rng(seed + 1)
    corpus = Corpus(seed=seed, **corpus_options)
    y_train, y_test = labels(N_TRAIN, corpus.n_classes, rng), labels(N_TEST, corpus.n_classes, rng)
    train = corpus.documents(y_train, rng, plant=True)
    test = corpus.documents(y_test, rng)
    vectorizer = TfidfVectorizer(token_pattern=r"\S+", lowercase=False)
    return vectorizer.fit_transform(train), vectorizer.transform(test), y_train, y_test


def hashed(n_docs: int, n_features: int = 2**20, seed: int = 0, chunk: int = 50_000, n_test: int = 0,
           **corpus_options):
    """(X, y) or, with n_test, (X_train, X_test, y_train, y_test): HashingVectorizer (l2-normalised
    counts, float32 CSR) over generated documents, made ``chunk`` documents at a time."""
    import scipy.sparse as sp
    from sklearn.feature_extraction.text import HashingVectorizer

    rng = np.random.default_rng(seed + 2)
    corpus = Corpus(seed=seed, **corpus_options)
    vectorizer = HashingVectorizer(n_features=n_features, token_pattern=r"\S+", lowercase=False,
                                   alternate_sign=False, dtype=np.float32)
    y = labels(n_docs + n_test, corpus.n_classes, rng)
    parts = [vectorizer.transform(corpus.documents(y[a : a + chunk], rng)) for a in range(0, len(y), chunk)]
    X = sp.vstack(parts, format="csr")
    if not n_test:
        return X, y
    return X[:n_docs], X[n_docs:], y[:n_docs], y[n_docs:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hashed", type=int, default=0, help="also make this many hashed documents")
    args = parser.parse_args()
    tic = time.perf_counter()
    X_train, X_test, y_train, y_test = newsgroups_like()
    print(f"newsgroups-like: train {X_train.shape} nnz {X_train.nnz:,}, test {X_test.shape} nnz {X_test.nnz:,}, "
          f"{len(np.unique(y_train))} classes, {time.perf_counter() - tic:.1f} s")
    if args.hashed:
        tic = time.perf_counter()
        X, y = hashed(args.hashed)
        print(f"hashed: {X.shape} nnz {X.nnz:,}, {time.perf_counter() - tic:.1f} s")


if __name__ == "__main__":
    main()

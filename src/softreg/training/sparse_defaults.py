"""The command line's settings for sparse rows (svmlight files) that the user left out.

The default recipe (lr 0.1, L2 1e-3, features standardised) was tuned on dense, standardised
data. Sparse rows such as TF-IDF or hashed text are l2-normalised already, and dividing each
column by its spread blows rare words up: on the 20-newsgroups-shaped problem the recipe
reached 0.27 test accuracy (BENCHMARKS.md, "Sparse text"). For a linear model trained by the
default recipe on sparse rows, what the user did not give is set as the estimators set it:

- features as they are (``--preprocess auto`` means none for sparse rows; ``--preprocess
  scale`` or ``standardize`` divides each column by its spread, without centring);
- L2 1/n, scikit-learn's ``LogisticRegression(C=1)``;
- the batch at least F / (2 x non-zeros per row), and the step from the data's scale
  (softreg.training.auto: STEP / (lambda / K + l2)).
"""

from __future__ import annotations

from softreg.system.processes import SINGLE, Comm
from softreg.training.config import TrainConfig, with_settings

NAMES = ("lr", "l2", "batch_size")  # the settings chosen here when the user leaves them out


def applies(dataset, config: TrainConfig) -> bool:
    """Sparse rows used as they are, a linear model, the default recipe's SGD."""
    return (getattr(dataset, "index_base", None) is not None and config.data.preprocess in ("auto", "none")
            and config.model.kind != "mlp" and config.recipe == "default" and config.optim.optimizer == "sgd")


def sparse_settings(dataset, config: TrainConfig, given: set[str] | frozenset[str]) -> dict:
    """{setting: value} for the names in NAMES that ``given`` lacks (empty when nothing applies)."""
    if not applies(dataset, config):
        return {}
    from softreg.training import auto as _auto
    from softreg.training.plan import auto_batch_size

    sample = _sample(dataset)
    n = len(dataset.train)
    settings: dict = {}
    l2 = config.optim.l2
    if "l2" not in given:
        l2 = settings["l2"] = 1.0 / max(n, 1)
    batch = config.optim.batch_size
    if "batch_size" not in given:
        nnz = sample.nnz * n / max(sample.shape[0], 1)
        batch = settings["batch_size"] = max(auto_batch_size(n), _auto.sparse_batch(n, dataset.n_features, int(nnz)))
    if "lr" not in given:  # with --l2 auto: the step for weak penalties (each path stage shortens it for its own)
        head = 4.0 if dataset.n_classes == 2 else float(dataset.n_classes)
        settings["lr"] = _auto.sgd_learning_rate(sample, head, batch or n, sparse=True,
                                                 l2=0.0 if l2 == "auto" else float(l2))
    return settings


def with_sparse_settings(dataset, config: TrainConfig, given, comm: Comm = SINGLE) -> tuple[TrainConfig, dict]:
    """(config with ``sparse_settings`` applied, those settings); with several processes rank 0's
    values are taken by all (each may hold different rows)."""
    settings = comm.broadcast(sparse_settings(dataset, config, given))
    return (with_settings(config, **settings) if settings else config), settings


def _sample(dataset):
    """SciPy CSR rows to estimate the data's scale from: every training row in memory (curvature()
    draws its own sample), or a streamed split's first rows."""
    from softreg.training import auto as _auto
    from softreg.models.sparse import to_scipy

    train = dataset.train
    if hasattr(train, "X"):
        return to_scipy(train.X)
    return to_scipy(next(iter(train.chunks(_auto.PROBE_ROWS))).X)


def describe_settings(settings: dict) -> str:
    """One line saying what was set from the data and how to choose otherwise."""
    parts = []
    if "lr" in settings:
        parts.append(f"lr {settings['lr']:.3g} from the rows' scale")
    if "l2" in settings:
        parts.append(f"L2 1/n = {settings['l2']:.3g}")
    if "batch_size" in settings:
        parts.append(f"batch {settings['batch_size']}")
    flags = ", ".join({"lr": "--lr", "l2": "--l2", "batch_size": "--batch-size"}[k] for k in NAMES if k in settings)
    return f"sparse rows: {', '.join(parts)} (give {flags} to choose)"

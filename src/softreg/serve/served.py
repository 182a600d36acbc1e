"""The models a server holds, shared by both protocols: look-up by name and version, readiness,
one micro-batcher per model, and the scoring call every endpoint makes.

A model is ready once its run's data is loaded and the novelty check fitted (``Predictor.warm_up``,
in a background thread started with the server): until then the server is live but not ready,
and scoring requests get 503.
"""

from __future__ import annotations

import logging
import threading

from softreg.serve.batching import MicroBatcher
from softreg.serve.errors import RequestError
from softreg.serve.metrics import Metrics

log = logging.getLogger("softreg.serve")


class Served:
    """Predictors by (name, version); ``latest[name]`` answers paths without a version.

    batching : score concurrent requests for one model in one call (``MicroBatcher``).
    """

    def __init__(self, predictors: list, metrics: Metrics, *, batching: bool = True, max_wait_ms: float = 0.0,
                 max_batch_rows: int = 2048):
        self.metrics = metrics
        self.batching = batching
        self.by_key = {(p.name, p.version): p for p in predictors}
        self.latest = {}
        for p in sorted(predictors, key=lambda p: int(p.version)):
            self.latest[p.name] = p
        self._ready: set[tuple[str, str]] = set()
        self._failed: dict[tuple[str, str], str] = {}
        self.loaded = threading.Event()
        self.batchers = {key: MicroBatcher(p.score, max_batch_rows, max_wait_ms / 1000.0,
                                           on_batch=lambda rows, name=key[0]: metrics.batch(name, rows))
                         for key, p in self.by_key.items()} if batching else {}

    # ------------------------------------------------------------------ look-up

    def names(self) -> list[str]:
        return sorted(self.latest)

    def versions(self, name: str) -> list[str]:
        return sorted((v for n, v in self.by_key if n == name), key=int)

    def get(self, name: str, version: str | None = None):
        """The predictor of ``name`` (its highest version unless ``version``); RequestError 404 otherwise."""
        if name not in self.latest:
            raise RequestError(404, f"no model named {name!r}; this server has {', '.join(self.names())} "
                                    "(GET /v1/models or GET /v2 lists them).")
        if version is None:
            return self.latest[name]
        if (name, version) not in self.by_key:
            raise RequestError(404, f"model {name!r} has no version {version!r}; its versions are "
                                    f"{', '.join(self.versions(name))}.")
        return self.by_key[(name, version)]

    # ------------------------------------------------------------------ readiness

    def start_loading(self) -> None:
        threading.Thread(target=self._load, name="softreg-warm-up", daemon=True).start()

    def _load(self) -> None:
        for key, predictor in self.by_key.items():  # one at a time: the cores serve requests meanwhile
            try:
                predictor.warm_up()
                self._ready.add(key)
            except Exception as exc:  # noqa: BLE001  the model stays not ready; the server goes on
                self._failed[key] = f"{type(exc).__name__}: {exc}"
                log.error("model %s version %s could not be loaded: %s", *key, self._failed[key])
        self.loaded.set()

    def is_ready(self, predictor) -> bool:
        return (predictor.name, predictor.version) in self._ready

    def all_ready(self) -> bool:
        return len(self._ready) == len(self.by_key)

    def not_ready(self) -> list[str]:
        return sorted(f"{n} (version {v})" for n, v in self.by_key if (n, v) not in self._ready)

    def require_ready(self, predictor) -> None:
        key = (predictor.name, predictor.version)
        if key in self._ready:
            return
        if key in self._failed:
            raise RequestError(503, f"model {key[0]!r} could not be loaded ({self._failed[key]}); see the "
                                    "server's log.", extra={"ready": False})
        raise RequestError(503, f"model {key[0]!r} is still loading; retry when GET /v2/models/{key[0]}/ready "
                                "answers 200.", extra={"ready": False}, headers={"Retry-After": "1"})

    # ------------------------------------------------------------------ scoring

    async def score(self, predictor, X, notes):
        """``predictor.score(X, notes)`` (a ``Scores``), batched with concurrent requests for the same model."""
        from starlette.concurrency import run_in_threadpool

        self.require_ready(predictor)
        if self.batching:
            scores = await self.batchers[(predictor.name, predictor.version)].submit(X, notes)
        else:
            scores = await run_in_threadpool(predictor.score, X, notes)
            self.metrics.batch(predictor.name, X.shape[0])
        self.metrics.scored(predictor.name, X.shape[0])
        return scores

    async def close(self) -> None:
        for batcher in self.batchers.values():
            await batcher.close()

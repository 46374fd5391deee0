"""Vector indexes kept in sync with the catalog, one per (kind, model).

The catalog is the truth; an index is derived from it: built from the embeddings table,
caught up by id watermark, saved as a snapshot (index file + watermark) under the data
dir. A missing, corrupt or stale snapshot (vectors deleted by a re-ingest) is rebuilt.
Writes to a snapshot happen under a file lock, so no two processes write one file.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sqlalchemy import func, select

from footage.catalog import Embedding
from footage.db import Catalog
from footage.errors import NoVectors, SnapshotUnusable
from footage.files import file_lock
from footage.settings import Settings
from search.vector_index import IndexParams, VectorIndex

log = logging.getLogger(__name__)

_CHUNK = 50_000


@dataclass(frozen=True, order=True)
class IndexKey:
    kind: str
    model: str

    @property
    def slug(self) -> str:
        return re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{self.kind}__{self.model}")


def _vector(data: bytes | None, dim: int) -> np.ndarray | None:
    """`data` as `dim` float32 values, or None when it is not that (or not finite)."""
    if data is None or len(data) != dim * 4 or dim == 0:
        return None
    vector = np.frombuffer(data, np.float32)
    return vector if np.isfinite(vector).all() else None


def index_params(settings: Settings) -> IndexParams:
    return IndexParams(settings.exact_index_max, settings.ivf_nlist, settings.ivf_nprobe)


class IndexStore:
    def __init__(self, catalog: Catalog, settings: Settings) -> None:
        self.catalog = catalog
        self.folder = settings.data_dir / "index"
        self.params = index_params(settings)
        self._open: dict[IndexKey, tuple[VectorIndex, int]] = {}
        self._guards: dict[IndexKey, threading.RLock] = {}
        self._counted: dict[IndexKey, float] = {}  # when each open index was last recounted
        self.recheck_s = settings.index_recheck_s
        self._guards_lock = threading.Lock()
        self._skipped: dict[IndexKey, set[int]] = {}  # bad rows' ids, per index

    def path(self, key: IndexKey) -> Path:
        return self.folder / f"{key.slug}.faiss"

    def _lock(self, key: IndexKey) -> AbstractContextManager[None]:
        """No two processes write one snapshot."""
        return file_lock(self.folder / f"{key.slug}.lock")

    def _rows(
        self, key: IndexKey, after: int, dim: int | None = None
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(ids, vectors) in id order above `after`. A row whose bytes are not `dim` finite
        float32 values (a truncated write, a hand-edited row) is skipped and remembered:
        one bad row used to fail every rebuild, and with it every search. `dim`, when not
        given, is the most common length of the first rows."""
        last = after
        while True:
            with self.catalog.engine.connect() as conn:
                rows = conn.execute(
                    select(Embedding.id, Embedding.vector)
                    .where(
                        Embedding.kind == key.kind,
                        Embedding.model == key.model,
                        Embedding.id > last,
                    )
                    .order_by(Embedding.id)
                    .limit(_CHUNK)
                ).all()
            if not rows:
                return
            last = int(rows[-1][0])
            if dim is None:
                sizes = Counter(len(r[1] or b"") for r in rows)
                dim = sizes.most_common(1)[0][0] // 4
            good: list[tuple[int, np.ndarray]] = []
            bad: list[int] = []
            for row_id, data in rows:
                vector = _vector(data, dim)
                if vector is None:
                    bad.append(int(row_id))
                else:
                    good.append((int(row_id), vector))
            if bad:
                self._note_skipped(key, bad)
            if good:
                ids = np.fromiter((g[0] for g in good), np.int64, len(good))
                yield ids, np.stack([g[1] for g in good])

    def _note_skipped(self, key: IndexKey, ids: list[int]) -> None:
        found = self._skipped.setdefault(key, set())
        found.update(ids)
        shown = ", ".join(map(str, sorted(ids)[:10])) + (" ..." if len(ids) > 10 else "")
        log.warning(
            "%s: skipped %d vector row(s) that are not whole vectors (embeddings ids %s); "
            "re-ingest their videos to embed them again",
            key.slug,
            len(ids),
            shown,
        )

    def skipped(self, key: IndexKey) -> list[int]:
        """Embedding ids of rows the index left out because their bytes are not a vector."""
        return sorted(self._skipped.get(key, ()))

    def _count(self, key: IndexKey, up_to: int) -> int:
        with self.catalog.engine.connect() as conn:
            return int(
                conn.execute(
                    select(func.count())
                    .select_from(Embedding)
                    .where(
                        Embedding.kind == key.kind,
                        Embedding.model == key.model,
                        Embedding.id <= up_to,
                    )
                ).scalar_one()
            )

    def rebuild(self, key: IndexKey) -> VectorIndex:
        with self._lock(key):
            return self._rebuild(key)

    def _any(self, key: IndexKey) -> bool:
        """Whether the kind has any vector: one lookup in the (kind, model, id) index. The
        id-ordered read in `_rows` may walk the primary key instead (SQLite does after
        ANALYZE when most vectors are one kind): 0.35 s at 1M to find that there is none."""
        with self.catalog.engine.connect() as conn:
            found = conn.execute(
                select(Embedding.id)
                .where(Embedding.kind == key.kind, Embedding.model == key.model)
                .limit(1)
            ).first()
        return found is not None

    def _rebuild(self, key: IndexKey) -> VectorIndex:
        if not self._any(key):
            self.path(key).unlink(missing_ok=True)
            raise NoVectors(f"no {key.kind} vectors of {key.model} in the catalog")
        self._skipped.pop(key, None)
        chunks = list(self._rows(key, after=0))
        if not chunks:
            self.path(key).unlink(missing_ok=True)
            raise NoVectors(f"no usable {key.kind} vectors of {key.model} in the catalog")
        ids = np.concatenate([c[0] for c in chunks])
        vectors = np.concatenate([c[1] for c in chunks])
        index = VectorIndex.build(ids, vectors, self.params)
        watermark = max(int(ids.max()), max(self._skipped.get(key, {0})))
        index.save(self.path(key), self._meta(key, index, watermark))
        self._open[key] = (index, watermark)
        self._counted[key] = time.monotonic()
        log.info("built %s index of %d vectors", key.slug, len(index))
        return index

    def get(self, key: IndexKey) -> VectorIndex:
        """The index for `key`, caught up with the catalog (raises NoVectors when empty).

        Catching up adds to the open index in place: a thread that searches it holds
        `searching(key)`, which keeps catch-up out meanwhile.
        """
        with self._guard(key), self._lock(key):
            index, watermark = self._load(key)
            if index is None:
                return self._rebuild(key)
            added, skipped = 0, len(self._skipped.get(key, ()))
            for ids, vectors in self._rows(key, after=watermark, dim=index.dim):
                index.add(ids, vectors)
                watermark, added = int(ids[-1]), added + len(ids)
            if len(self._skipped.get(key, ())) > skipped:  # bad rows above the last good one
                watermark = max(watermark, max(self._skipped[key]))
            if index.exact and len(index) > self.params.exact_max:
                return self._rebuild(key)  # grown past exact search: switch to IVF
            if added or len(self._skipped.get(key, ())) > skipped:
                index.save(self.path(key), self._meta(key, index, watermark))
            self._open[key] = (index, watermark)
            return index

    def _meta(self, key: IndexKey, index: VectorIndex, watermark: int) -> dict[str, object]:
        return {"watermark": watermark, "count": len(index), "skipped": self.skipped(key)}

    def _guard(self, key: IndexKey) -> threading.RLock:
        with self._guards_lock:
            return self._guards.setdefault(key, threading.RLock())

    @contextmanager
    def searching(self, key: IndexKey) -> Iterator[None]:
        """Held while a thread searches the index `get` returned: FAISS may not search an
        index while vectors are added to it, and the service's threads share this store.
        (One query already uses every core inside FAISS, so little is lost.)"""
        with self._guard(key):
            yield

    def state(self, key: IndexKey) -> tuple[int, int] | None:
        """(watermark, count) of the index `get` last returned for `key`: what the catalog's
        vectors of that kind were then. New vectors raise the watermark; deleted ones change
        the count. (SQLite may give a new row the id of a deleted newest row: then neither
        changes, a blind spot this shares with `get`'s own staleness check.)"""
        if key not in self._open:
            return None
        index, watermark = self._open[key]
        return watermark, len(index)

    def _load(self, key: IndexKey) -> tuple[VectorIndex | None, int]:
        if key in self._open:
            index, watermark = self._open[key]
        else:
            try:
                index, meta = VectorIndex.load(self.path(key), self.params)
                watermark = int(meta["watermark"])  # type: ignore[call-overload]
                skipped = meta.get("skipped", [])
                self._skipped[key] = set(map(int, skipped))  # type: ignore[call-overload]
            except SnapshotUnusable as exc:
                if self.path(key).exists():
                    log.warning("rebuilding %s: %s", key.slug, exc)
                return None, 0
        # Vectors deleted by a re-ingest leave ids in the index that the catalog lacks.
        # Counting the kind costs ~0.4 s at 1M (SQLite): an open index is recounted at most
        # every `recheck_s`; meanwhile a removed vector's id is dropped by the planner's
        # catalog lookup (`_hits`), so it is never shown.
        now = time.monotonic()
        if key in self._counted and now - self._counted[key] < self.recheck_s:
            return index, watermark
        if self._count(key, watermark) != len(index) + len(self._skipped.get(key, ())):
            log.info("index %s is stale (vectors were removed); rebuilding", key.slug)
            return None, 0
        self._counted[key] = now
        return index, watermark

    def stored_keys(self) -> list[IndexKey]:
        with self.catalog.engine.connect() as conn:
            rows = conn.execute(select(Embedding.kind, Embedding.model).distinct()).all()
        return sorted(IndexKey(k, m) for k, m in rows)

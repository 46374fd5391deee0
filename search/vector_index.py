"""A FAISS index over one kind of vector; ids are the catalog's embedding ids.

Exact (flat, inner product on unit vectors = cosine) up to `exact_max` vectors, IVF above
it. Two ways to search, chosen by the planner:
- `search`: plain nearest neighbours;
- `search_among`: nearest neighbours among given ids (a filter's, from SQL), in one
  search: few are gathered and scored exactly (`score_ids`), many become a bitmap that the
  index skips the others with, probing more IVF lists the more the filter removes, and
  all of them (exact) while few enough pass.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import faiss
import numpy as np
import numpy.typing as npt

from footage.errors import SnapshotUnusable

IdArray = npt.NDArray[np.int64]
ScoreArray = npt.NDArray[np.float32]
# IVF indexes keep a hashtable from id to vector, so candidates can be scored exactly.
_HASHTABLE = faiss.DirectMap.Hashtable  # type: ignore[attr-defined]
# search_among: up to this many ids, gather their vectors and score them (~1 us each at 1M)
# rather than walk every IVF list with a bitmap (5-10 ms at 1M, however few pass).
GATHER_MAX = 10_000
# search_among: passing vectors one filtered IVF search compares at most, beyond the bitmap
# checks (~0.2 us each at 512-d: 45-55 ms on a shared core); below it the search is exact,
# above it probes a share of the lists (recall@10 0.993 at a 50% filter of 1M; VECTOR.md).
COMPARE_MAX = 200_000


@dataclass(frozen=True)
class IndexParams:
    exact_max: int = 50_000
    nlist: int = 0  # 0: about 4 * sqrt(n)
    nprobe: int = 256

    def lists_for(self, n: int) -> int:
        return self.nlist or max(16, min(65_536, int(4 * math.sqrt(n))))


def gpu_count() -> int:
    return faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0


class VectorIndex:
    def __init__(self, index: faiss.Index, ids: IdArray, params: IndexParams) -> None:
        self.index = index
        self.ids = np.sort(np.asarray(ids, np.int64))
        self.params = params
        self._gpu: faiss.Index | None = None
        if gpu_count() and isinstance(index, faiss.IndexIVF):
            self._gpu = faiss.index_cpu_to_all_gpus(index)  # pragma: no cover - no GPU in CI

    # -- building -----------------------------------------------------------------------
    @classmethod
    def build(cls, ids: IdArray, vectors: np.ndarray, params: IndexParams) -> VectorIndex:
        vectors = np.ascontiguousarray(vectors, np.float32)
        ids = np.ascontiguousarray(ids, np.int64)
        dim = vectors.shape[1]
        if len(ids) <= params.exact_max:
            index: faiss.Index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        else:
            nlist = params.lists_for(len(ids))
            quantizer = faiss.IndexFlatIP(dim)
            ivf = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
            rng = np.random.default_rng(0)
            sample = vectors[rng.choice(len(vectors), min(len(vectors), nlist * 64), replace=False)]
            ivf.train(sample)
            ivf.set_direct_map_type(_HASHTABLE)
            ivf.nprobe = params.nprobe
            index = ivf
        if len(ids):
            index.add_with_ids(vectors, ids)
        return cls(index, ids, params)

    @property
    def exact(self) -> bool:
        return not isinstance(self.index, faiss.IndexIVF)

    def __len__(self) -> int:
        return int(self.index.ntotal)

    @property
    def dim(self) -> int:
        return int(self.index.d)

    def add(self, ids: IdArray, vectors: np.ndarray) -> None:
        if not len(ids):
            return
        ids = np.asarray(ids, np.int64)
        self.index.add_with_ids(np.ascontiguousarray(vectors, np.float32), ids)
        # New rows come in id order above the watermark: appending keeps `ids` sorted
        # (np.union1d re-sorted all of them, ~1 s per call at 1M).
        in_order = not len(self.ids) or self.ids[-1] < ids[0]
        self.ids = np.concatenate([self.ids, ids])
        if not (in_order and np.all(ids[1:] > ids[:-1])):
            self.ids = np.unique(self.ids)
        if self._gpu is not None:  # pragma: no cover
            self._gpu = faiss.index_cpu_to_all_gpus(self.index)

    # -- searching ----------------------------------------------------------------------
    def _search(
        self, q: np.ndarray, k: int, nprobe: int | None = None
    ) -> tuple[ScoreArray, IdArray]:
        q = np.ascontiguousarray(q.reshape(1, -1), np.float32)
        k = min(k, len(self))
        if k <= 0:
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        index = self._gpu if self._gpu is not None and nprobe is None else self.index
        if nprobe is not None and isinstance(self.index, faiss.IndexIVF):
            params = faiss.SearchParametersIVF(nprobe=min(nprobe, self.index.nlist))  # type: ignore[call-arg]
            scores, ids = self.index.search(q, k, params=params)
        else:
            scores, ids = index.search(q, k)
        keep = ids[0] >= 0
        return scores[0][keep], ids[0][keep]

    def search(self, q: np.ndarray, k: int) -> tuple[ScoreArray, IdArray]:
        return self._search(q, k)

    def score_ids(self, q: np.ndarray, ids: IdArray, k: int) -> tuple[ScoreArray, IdArray]:
        """Exact top-k among the given ids (those not in the index are ignored), by
        gathering their vectors: for a few thousand ids (`search_among` chooses)."""
        ids = np.unique(np.asarray(ids, np.int64))
        pos = np.searchsorted(self.ids, ids).clip(0, max(len(self.ids) - 1, 0))
        ids = ids[self.ids[pos] == ids] if len(self.ids) else ids[:0]
        if not len(ids):
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        # In chunks of 1,000: faiss reconstructs a larger batch on all OpenMP threads, and
        # one busy core then stalls it (8 ms for 1,001 vectors on a shared machine, against
        # 0.2 ms); einsum, not `@`, for the same reason (BLAS threads).
        vectors = np.concatenate(
            [self.index.reconstruct_batch(ids[i : i + 1000]) for i in range(0, len(ids), 1000)]
        )
        scores = np.einsum("ij,j->i", vectors, np.asarray(q, np.float32).reshape(-1))
        top = np.argpartition(-scores, k)[:k] if len(scores) > k else np.arange(len(scores))
        top = top[np.argsort(-scores[top], kind="stable")]
        return scores[top].astype(np.float32), ids[top]

    def search_among(
        self,
        q: np.ndarray,
        ids: IdArray,
        k: int,
        gather_max: int = GATHER_MAX,
        compare_max: int = COMPARE_MAX,
    ) -> tuple[ScoreArray, IdArray, str]:
        """Top-k among `ids` (the vectors a filter lets through), in one search.

        Up to `gather_max` ids: their vectors are gathered and scored exactly. More: a
        bitmap of the ids is the search's selector, so only passing vectors are scored. A
        flat index then scans everything (exact); an IVF probes every list (exact) while at
        most `compare_max` vectors pass, else as many lists as compare about `compare_max`
        passing vectors (`among_nprobe`). Ids not in the index are ignored. Returns scores,
        ids, and how it searched ("exact" or "N of M lists").
        """
        ids = np.asarray(ids, np.int64)
        if len(ids) <= gather_max:
            scores, found = self.score_ids(q, ids, k)
            return scores, found, "exact"
        bits = np.zeros(int(ids.max()) + 1, bool)
        bits[ids] = True
        selector = faiss.IDSelectorBitmap(np.packbits(bits, bitorder="little"))  # type: ignore[call-arg, arg-type]
        how = "exact"
        params: faiss.SearchParameters
        if isinstance(self.index, faiss.IndexIVF):
            nlist = self.index.nlist
            nprobe = among_nprobe(self.index.nprobe, nlist, len(ids), compare_max)
            if nprobe < nlist:
                how = f"{nprobe} of {nlist} lists"
            params = faiss.SearchParametersIVF(sel=selector, nprobe=nprobe)  # type: ignore[call-arg]
        else:
            params = faiss.SearchParameters(sel=selector)  # type: ignore[call-arg]
        scores, found = self.index.search(
            np.ascontiguousarray(q.reshape(1, -1), np.float32), min(k, len(ids)), params=params
        )
        keep = found[0] >= 0
        return scores[0][keep], found[0][keep], how

    # -- snapshots ----------------------------------------------------------------------
    def save(self, path: Path, meta: dict[str, object]) -> None:
        """Atomically writes the index file and its metadata (watermark, counts)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + f".tmp{os.getpid()}")
        faiss.write_index(self.index, str(tmp))
        meta_tmp = tmp.with_suffix(".json")
        meta_tmp.write_text(json.dumps({**meta, "params": asdict(self.params)}))
        os.replace(tmp, path)
        os.replace(meta_tmp, path.with_suffix(".json"))

    @classmethod
    def load(cls, path: Path, params: IndexParams) -> tuple[VectorIndex, dict[str, object]]:
        """Raises SnapshotUnusable when the snapshot is missing, partial or corrupt."""
        meta_path = path.with_suffix(".json")
        try:
            meta = json.loads(meta_path.read_text())
            index = faiss.read_index(str(path))
        except (OSError, RuntimeError, json.JSONDecodeError) as exc:
            raise SnapshotUnusable(f"no usable index snapshot at {path}: {exc}") from exc
        if isinstance(index, faiss.IndexIVF):
            index.set_direct_map_type(_HASHTABLE)
            index.nprobe = params.nprobe
            ids = _ivf_ids(index)
        else:
            id_map = faiss.downcast_index(index).id_map  # type: ignore[attr-defined]
            ids = faiss.vector_to_array(id_map).astype(np.int64)
        if len(ids) != index.ntotal or meta.get("count") != index.ntotal:
            raise SnapshotUnusable(f"index snapshot at {path} is inconsistent with its metadata")
        return cls(index, ids, params), meta


def _ivf_ids(index: faiss.IndexIVF) -> IdArray:
    lists = index.invlists
    assert lists is not None
    parts = []
    for i in range(index.nlist):
        size = lists.list_size(i)
        if size:
            ptr = lists.get_ids(i)
            parts.append(faiss.rev_swig_ptr(ptr, size).copy())
    return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)


def among_nprobe(nprobe: int, nlist: int, passing: int, compare_max: int) -> int:
    """IVF lists a filtered search probes: all while at most `compare_max` vectors pass
    (exact), else the share of lists whose passing vectors number about `compare_max`
    (at 1M, 200k: a filter passing 50% probes 40% of the lists), never fewer than an
    unfiltered search."""
    if passing <= compare_max:
        return nlist
    return min(nlist, max(nprobe, math.ceil(nlist * compare_max / passing)))

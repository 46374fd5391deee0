"""Fit the relevance calibration of the text model on the shared annotations.

    python -m bench.calibrate [--data-dir DIR]   # ingests the annotated clips (a few minutes)

Positives: every query of ../shared/footage/annotations/intervals_approx.csv, searched on
its own clip; its best raw similarity inside an annotated interval. Negatives: queries
about things no clip shows, searched over everything; their best raw similarity. The
calibration puts `floor` at the negatives' 90th percentile, `threshold` just above the
best negative (no nonsense query is relevant by similarity alone), and `high` at the
positives' best. It is written into search/calibration.json under the model's name.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np

from footage.catalog import VectorKind
from footage.db import Catalog
from footage.embedding import load_text
from footage.settings import Settings
from indexer.ingest import Ingestor, IngestRequest
from search.planner import Searcher
from search.query import Filters, SearchRequest
from search.relevance import CALIBRATION_FILE

SHARED = Path(os.environ.get("FOOTAGE_SHARED_DIR", Path(__file__).parents[2] / "shared"))
FOOTAGE = SHARED / "footage"
INTERVALS = FOOTAGE / "annotations" / "intervals_approx.csv"
DETECTOR = SHARED / "models" / "centernet_mb3_coco.json"

NEGATIVES = (
    "zebra giraffe helicopter", "a pink elephant", "submarine underwater", "violin concert",
    "snowboarder jumping", "birthday cake with candles", "airplane landing", "a cat sleeping",
    "horse riding", "fireworks over the sea", "boat on a lake", "pizza delivery box",
    "a helicopter", "surfing on big waves", "a wedding ceremony", "tennis match",
    "a camel in the desert", "ice hockey game", "a hot air balloon", "penguins on ice",
)  # fmt: skip


def _camera(name: str) -> str:
    return name.rsplit(".", 1)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=Path("bench/results/calibrate"))
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    settings = Settings(
        data_dir=args.data_dir, detector=f"onnx:{DETECTOR}", embed_images=False, stable_s=0.0
    )
    catalog = Catalog(settings)
    queries: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
    with INTERVALS.open() as handle:
        for row in csv.DictReader(handle):
            queries[(row["clip"], row["query_label"])].append(
                (float(row["start_s"]), float(row["end_s"]))
            )
    ingestor = Ingestor(catalog, settings)
    start = datetime(2023, 2, 6, 21, 0, tzinfo=UTC)
    for i, name in enumerate(sorted({c for c, _ in queries})):
        at = start + timedelta(minutes=10 * i)
        outcome = ingestor.ingest(IngestRequest(FOOTAGE / name, _camera(name), start=at))
        print(f"{name}: {outcome.status}")
    text = load_text(settings)
    searcher = Searcher(catalog, settings)

    def best_raw(query: str, cameras: tuple[str, ...]) -> list[tuple[float, float]]:
        """(raw similarity, second) of the best hits of the text view's kinds."""
        request = SearchRequest(text=query, filters=Filters(cameras=cameras), limit=10)
        vector = text.embed_texts([query])[0]
        found = []
        for kind in VectorKind.TEXT:
            hits = searcher.rank(request, kind, text.name, vector, 50)
            found += [(h.score, h.at_s) for h in hits]
        return sorted(found, reverse=True)

    positives = []
    for (name, label), intervals in queries.items():
        inside = [s for s, at in best_raw(label, (_camera(name),)) if any(
            a - 2 <= at <= b + 2 for a, b in intervals)]  # fmt: skip
        if inside:
            positives.append(max(inside))
    negatives = [best_raw(q, ())[0][0] for q in NEGATIVES]
    floor = float(np.percentile(negatives, 90))
    threshold = round(max(negatives) + 0.02, 3)
    high = round(max(max(positives), threshold + 0.15), 3)
    print(f"positives (best inside the truth): {np.round(sorted(positives), 3).tolist()}")
    print(f"negatives (best anywhere):        {np.round(sorted(negatives), 3).tolist()}")
    print(f"{text.name}: floor {floor:.3f}, threshold {threshold:.3f}, high {high:.3f}")
    data = json.loads(CALIBRATION_FILE.read_text())
    data["models"][text.name] = {
        "floor": round(floor, 3),
        "threshold": threshold,
        "high": high,
        "source": f"bench.calibrate on {date.today()}: {len(positives)} annotated queries, "
        f"{len(negatives)} queries about absent things",
    }
    CALIBRATION_FILE.write_text(json.dumps(data, indent=2) + "\n")
    print(f"written: {CALIBRATION_FILE}")
    catalog.dispose()


if __name__ == "__main__":
    main()

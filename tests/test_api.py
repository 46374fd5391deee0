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
from typing import Any
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
            env=cli_env(settings, **{"FOOTAGE_LLM_BACKEND": "none", **env}),
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
    assert health["questions"] == {"answering": 0, "waiting": 0, "abandoned": 0}
    assert str(service.settings.data_dir) not in json.dumps(health)


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


def test_uploads_are_refused_unread_when_image_similarity_is_off(service: Service) -> None:
    """Nothing here could search by an image (FOOTAGE_EMBED_IMAGES=false): an upload is
    refused before its body is read, so a hostile picture costs nothing. (What is checked in
    a picture when it can be used: tests/test_inputs.py and the console's upload tests.)"""
    uploads = service.settings.cache_dir / "uploads"
    before = sorted(uploads.glob("*")) if uploads.exists() else []
    url = f"{service.url}/search/image"
    result = httpx.get(f"{service.url}/search", params={"q": "person", "limit": 1}).json()[0]
    real = Path(result["thumbnail"]).read_bytes()
    for files in ({"image": ("door.jpg", real)}, {"image": ("x.jpg", b"%PDF-1.4")}):
        off = httpx.post(url, files=files)
        assert off.status_code == 503 and "image similarity is off" in off.json()["detail"]
    assert (sorted(uploads.glob("*")) if uploads.exists() else []) == before


def _send_body(url: str, path: str, head: dict[str, str], total: int) -> tuple[int, int]:
    """Sends a request whose body is `total` zero bytes in 1 MiB pieces, on a raw socket;
    returns (status, bytes sent before the answer came or the server closed)."""
    import socket

    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as conn:
        lines = [
            f"POST {path} HTTP/1.1",
            f"Host: {host}:{port}",
            *(f"{k}: {v}" for k, v in head.items()),
        ]
        conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        chunked = head.get("Transfer-Encoding") == "chunked"
        piece, sent = b"\0" * 2**20, 0
        conn.setblocking(False)
        answer = b""
        while sent < total and not answer:
            try:
                answer = conn.recv(65536)
                break
            except BlockingIOError:
                pass
            try:
                framed = b"100000\r\n" + piece + b"\r\n" if chunked else piece
                conn.setblocking(True)
                conn.sendall(framed)
                conn.setblocking(False)
                sent += len(piece)
            except (BrokenPipeError, ConnectionResetError):
                break
        conn.setblocking(True)
        while b"\r\n" not in answer:
            more = conn.recv(65536)
            if not more:
                break
            answer += more
    return int(answer.split(b" ", 2)[1]), sent


@pytest.mark.parametrize(
    ("path", "head", "status"),
    [
        # a declared length past the cap: refused before a byte is read
        ("/sql", {"Content-Type": "application/json", "Content-Length": "300000000"}, 413),
        (
            "/search/image",
            {"Content-Type": "multipart/form-data; boundary=x", "Content-Length": "300000000"},
            413,
        ),  # fmt: skip
        # a body that only says how long it is as it comes: cut once past the cap
        ("/sql", {"Content-Type": "application/json", "Transfer-Encoding": "chunked"}, 413),
        # refused before the body is read (nothing could search by an image here)
        (
            "/search/image",
            {"Content-Type": "multipart/form-data; boundary=x", "Transfer-Encoding": "chunked"},
            503,
        ),  # fmt: skip
    ],
)
def test_a_big_body_is_refused_without_being_read(
    service: Service, path: str, head: dict[str, str], status: int
) -> None:
    """A 300 MB upload was spooled whole to disk before the 413; a JSON body is read whole
    into memory. Now the service stops reading at the route's cap."""
    got, sent = _send_body(service.url, path, head, 300 * 2**20)
    assert got == status
    assert sent < 64 * 2**20, f"{sent / 2**20:.0f} MiB were taken before the answer"


# -- the token, the CLI's errors ---------------------------------------------------------------
def test_a_token_guards_everything_but_health_and_never_shows(
    service: Service, tmp_path: Path
) -> None:
    with serving(service.settings, tmp_path / "serve.log", FOOTAGE_API_TOKEN=TOKEN) as url:
        open_health = httpx.get(f"{url}/health")
        assert open_health.status_code == 200
        assert open_health.json()["llm"] == {"state": "off"}  # states, never paths
        detailed = httpx.get(f"{url}/health", headers={"Authorization": f"Bearer {TOKEN}"})
        assert detailed.json()["llm"]["detail"] == "FOOTAGE_LLM_BACKEND=none"
        paths = ["/search?q=car", "/videos", "/media/videos/1", "/moments/1", "/docs"]
        for path in (*paths, "/openapi.json"):
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


# -- what one client may hold ------------------------------------------------------------------
SLOW_SQL = (
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3000000) "
    "SELECT count(*) AS n FROM c"
)


@pytest.fixture(scope="module")
def tight(service: Service, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The same catalog served with small bounds and the real SmolLM2 answering."""
    from tests.llm_server import smollm2_gguf

    log = tmp_path_factory.mktemp("tight") / "serve.log"
    with serving(
        service.settings,
        log,
        FOOTAGE_SQL_MAX_CONCURRENT="1",
        FOOTAGE_API_HEADER_TIMEOUT_S="2",
        FOOTAGE_ASK_MAX_WAITING="1",
        FOOTAGE_LLM_BACKEND="local",
        FOOTAGE_LLM_MODEL=str(smollm2_gguf()),
    ) as url:
        yield url


def test_sql_runs_a_bounded_number_of_queries_at_once(tight: str) -> None:
    """8 concurrent queries of 80 MB each took a service from 419 MB to 2.2 GB: the bytes
    in flight are FOOTAGE_SQL_MAX_CONCURRENT x FOOTAGE_SQL_MAX_BYTES at most; more are 429."""

    def run(_: int) -> httpx.Response:
        return httpx.post(f"{tight}/sql", json={"query": SLOW_SQL}, timeout=120)

    with ThreadPoolExecutor(6) as pool:
        replies = list(pool.map(run, range(6)))
    statuses = sorted(r.status_code for r in replies)
    assert 200 in statuses and 429 in statuses, statuses
    busy = next(r for r in replies if r.status_code == 429)
    assert busy.headers["retry-after"] == "1"
    assert "FOOTAGE_SQL_MAX_CONCURRENT" in busy.json()["detail"]
    assert next(r for r in replies if r.status_code == 200).json() == [{"n": 3000000}]
    assert run(0).status_code == 200  # every slot was given back


def test_connections_that_never_finish_their_headers_are_closed(tight: str) -> None:
    import socket

    host, port = tight.removeprefix("http://").split(":")
    began = time.monotonic()
    held = [socket.create_connection((host, int(port)), timeout=30) for _ in range(40)]
    try:
        for conn in held:
            conn.sendall(f"GET /videos HTTP/1.1\r\nHost: {host}\r\n".encode())
        trickle = socket.create_connection((host, int(port)), timeout=30)
        held.append(trickle)
        with pytest.raises(OSError):  # one byte a half second never completes them
            for byte in f"GET /videos HTTP/1.1\r\nHost: {host}\r\nX-Slow: {'y' * 60}":
                trickle.sendall(byte.encode())
                time.sleep(0.5)
        for conn in held[:-1]:
            assert conn.recv(100) == b"", "closed, with nothing sent"
        assert time.monotonic() - began < 25
        # a client that sends its request is answered as before
        assert httpx.get(f"{tight}/videos").status_code == 200
    finally:
        for conn in held:
            conn.close()


def _questions(url: str) -> dict[str, int]:
    state: dict[str, int] = httpx.get(f"{url}/health", timeout=10).json()["questions"]
    return state


def _until(check: Any, what: str, within_s: float = 120) -> None:
    deadline = time.monotonic() + within_s
    while not check():
        assert time.monotonic() < deadline, f"not {what} in {within_s} s"
        time.sleep(0.05)


def test_questions_wait_in_a_bounded_line_and_leave_it_when_their_client_does(tight: str) -> None:
    """About 40 concurrent /ask held every server thread; now one is answered, at most
    FOOTAGE_ASK_MAX_WAITING wait (off the threads), more are 429, and a client that leaves
    gives up its place."""
    body = {"question": "What happened at the shop?", "camera": ["shop"]}
    with ThreadPoolExecutor(5) as pool:
        replies = list(
            pool.map(lambda _: httpx.post(f"{tight}/ask", json=body, timeout=300), range(5))
        )
    statuses = sorted(r.status_code for r in replies)
    assert statuses.count(200) >= 2 and 429 in statuses, statuses
    busy = next(r for r in replies if r.status_code == 429)
    assert busy.headers["retry-after"] == "5" and "FOOTAGE_ASK_MAX_WAITING" in busy.text
    assert all(r.json()["answer"] for r in replies if r.status_code == 200)
    assert _questions(tight) == {"answering": 0, "waiting": 0, "abandoned": 0}

    # One answered, one waiting: the waiting one's client goes, and its place is free.
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(httpx.post, f"{tight}/ask", json=body, timeout=300)
        _until(lambda: _questions(tight)["answering"] == 1, "answering")
        with httpx.stream("POST", f"{tight}/ask?stream=true", json=body, timeout=300) as gone:
            assert gone.status_code == 200
            _until(lambda: _questions(tight)["waiting"] == 1, "waiting")
        _until(lambda: _questions(tight)["abandoned"] == 1, "abandoned")
        assert first.result().status_code == 200
    _until(lambda: _questions(tight)["answering"] == 0, "idle")
    assert _questions(tight) == {"answering": 0, "waiting": 0, "abandoned": 1}


def test_serving_beyond_this_machine_needs_a_token_or_insecure(service: Service) -> None:
    refused = _cli(service.settings, "serve", "--host", "0.0.0.0", "--port", str(free_port()))
    assert refused.returncode == 2 and "FOOTAGE_API_TOKEN" in refused.stderr
    assert "--insecure" in refused.stderr and "Traceback" not in refused.stderr


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
    line = next(x for x in run.stdout.splitlines() if x.strip("│ ").startswith("service"))
    assert "ready" in line and "text_model ready" in line, run.stdout
    gone = _cli(service.settings, "doctor", FOOTAGE_API_URL=f"http://127.0.0.1:{free_port()}")
    assert "unreachable" in gone.stdout and "footage serve" in gone.stdout

"""Model work is routed by task name to FOOTAGE_INGEST_QUEUE; workers choose their queues.
(tests/test_watch.py runs a worker on each queue and checks which one took the video.)"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from footage.errors import InvalidInput
from tests.conftest import FOOTAGE_CLI, cli_env, make_settings
from workers.app import (
    MODEL_TASKS,
    TASK,
    catalog_id,
    make_celery,
    queue_for,
    routed_queues,
    scoped,
    worker_queues,
)


def test_every_model_task_goes_to_the_configured_queue(tmp_path: Path, onnx_spec: Path) -> None:
    settings = make_settings(
        tmp_path, None, onnx_spec, broker_url="redis://127.0.0.1:1/0", ingest_queue="footage.gpu"
    )
    app = make_celery(settings)
    gpu = scoped("footage.gpu", catalog_id(settings.resolved_database_url))
    assert gpu.startswith("footage.gpu:") and len(gpu) == len("footage.gpu:") + 12
    assert {"footage.ingest_video", "footage.ingest_chunk", "footage.join_chunks"} <= set(
        MODEL_TASKS
    )
    for name in MODEL_TASKS:
        assert queue_for(app, name) == gpu
        routed = app.amqp.router.route({}, name)  # what Celery itself does when sending
        assert routed["queue"].name == gpu, name
    assert routed_queues(app) == (gpu,)
    default = make_celery(settings.model_copy(update={"ingest_queue": "footage.ingest"}))
    assert queue_for(default, TASK) == gpu.replace("footage.gpu", "footage.ingest")


def test_a_worker_s_queues(tmp_path: Path, onnx_spec: Path) -> None:
    settings = make_settings(tmp_path, None, onnx_spec, ingest_queue="footage.gpu")
    ours = "0123456789abcdef0123456789abcdef"
    assert worker_queues(settings, None, ours) == ("footage.gpu:0123456789ab",)
    assert worker_queues(settings, " footage.ingest, footage.gpu,footage.ingest ", ours) == (
        "footage.ingest:0123456789ab",
        "footage.gpu:0123456789ab",
    )
    for bad in ("", " , ", "bad name", "x;rm -rf", "a" * 300):
        with pytest.raises(InvalidInput, match="queue names"):
            worker_queues(settings, bad, ours)


@pytest.mark.parametrize(
    ("args", "wanted"),
    [
        (["--queues", "bad name"], "queue names are letters"),
        (["--name", "a b"], "--name"),
    ],
)
def test_a_bad_worker_option_is_one_clear_line(
    tmp_path: Path, onnx_spec: Path, args: list[str], wanted: str
) -> None:
    settings = make_settings(tmp_path, None, onnx_spec)
    run = subprocess.run(
        [*FOOTAGE_CLI, "worker", *args],
        env=cli_env(settings, FOOTAGE_BROKER_URL="redis://127.0.0.1:1/0"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2, run.stdout + run.stderr
    assert wanted in run.stderr and "Traceback" not in run.stderr, run.stderr


def test_an_invalid_ingest_queue_setting_is_refused(tmp_path: Path, onnx_spec: Path) -> None:
    with pytest.raises(ValueError, match="ingest_queue"):
        make_settings(tmp_path, None, onnx_spec, ingest_queue="no spaces allowed")

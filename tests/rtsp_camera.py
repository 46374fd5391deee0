"""A live camera for tests and benchmarks: real RTSP servers (PyPI `rtsp`, pure Python,
H.264 by PyAV's libx264) looping a shared clip in real time, one per port.

    python -m tests.rtsp_camera CLIP PORT [PORT ...] [--fps N] [--frames N]

prints `ready` once every server has its first encoded frames, and serves until SIGTERM or
SIGINT. Keyframes come every second (the server's GOP is its frame rate). The servers bind
every interface (the package ignores the URL's host); tests connect to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

import av
import rtsp


def frames(clip: str, limit: int) -> list[object]:
    with av.open(clip) as container:
        found = []
        for frame in container.decode(video=0):
            found.append(frame.to_image())
            if len(found) >= limit:
                break
        return found


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("clip")
    parser.add_argument("ports", type=int, nargs="+")
    parser.add_argument("--fps", type=float, default=15.0)
    parser.add_argument("--frames", type=int, default=600)
    args = parser.parse_args()
    images = frames(args.clip, args.frames)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    sources = []
    for port in args.ports:
        source = rtsp.Source(f"rtsp://127.0.0.1:{port}/live", fps=args.fps)
        for image in images:
            source.put(image)
        sources.append(source)
    for source in sources:
        if not (source.wait_ready(20) and source.wait_encoding_started(20)):
            print("not ready", flush=True)
            sys.exit(1)
    print("ready", flush=True)
    stop.wait()
    for source in sources:
        source.close()


if __name__ == "__main__":
    main()

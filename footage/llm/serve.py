"""`python -m footage.llm.serve MODEL.gguf`: llama.cpp's OpenAI-compatible server, in one process.

Loads a GGUF with xllamacpp and serves `/v1/chat/completions` (streaming, JSON-schema
`response_format`) on 127.0.0.1; the port is free one unless `--port` says otherwise. The
first line on stdout is the base URL (`http://127.0.0.1:PORT/v1`); the server runs until
the process is stopped (SIGTERM, Ctrl-C) or its stdin closes. The API key, if any, is read
from FOOTAGE_SERVE_API_KEY (not an argument: those are visible to every local user).
It is what the openai backend's tests talk to, and a way to share one model between hosts.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from types import FrameType

from footage.llm.local import cpu_threads, import_xllamacpp


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m footage.llm.serve")
    parser.add_argument("gguf")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--context", type=int, default=4096)
    args = parser.parse_args(argv)
    xllamacpp = import_xllamacpp()
    params = xllamacpp.CommonParams()
    params.model.path = args.gguf
    params.port = args.port
    params.n_ctx = args.context
    params.n_parallel = 1
    params.cpuparams.n_threads = params.cpuparams_batch.n_threads = cpu_threads(args.threads)
    params.verbosity = -1
    key = os.environ.get("FOOTAGE_SERVE_API_KEY")
    if key:
        params.api_keys = [key]
    server = xllamacpp.Server(params)
    print(f"{server.listening_address}/v1", flush=True)

    done = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    def until_stdin_closes() -> None:
        sys.stdin.read()
        done.set()

    threading.Thread(target=until_stdin_closes, daemon=True).start()
    done.wait()
    del server
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

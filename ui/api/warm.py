"""What the service keeps loaded, once per process: the catalog, the one Searcher, the
Asker, the models and the vector indexes.

The catalog opens (and migrates) before the first request. Models and indexes load on a
background thread; until each is ready a request that needs it waits for the same load (the
model loaders are locked and cached), never a second copy. `/health` reports each part.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from footage.db import Catalog
from footage.embedding import EmbedderUnavailable, load_clip, load_text
from footage.errors import NoVectors
from footage.llm import LLM, describe_llm, load_llm
from footage.secrets import mask_secrets
from footage.settings import Settings
from search.ask.answer import Asker
from search.planner import Searcher

log = logging.getLogger(__name__)


class Readiness(StrEnum):
    WAITING = "waiting"  # not started yet
    LOADING = "loading"
    READY = "ready"
    OFF = "off"  # turned off by the settings
    FAILED = "failed"  # cannot be used: `detail` says why


@dataclass(frozen=True)
class Part:
    state: Readiness
    detail: str = ""
    seconds: float | None = None  # how long its load took

    def as_dict(self) -> dict[str, object]:
        found: dict[str, object] = {"state": self.state.value}
        if self.detail:
            found["detail"] = self.detail
        if self.seconds is not None:
            found["seconds"] = round(self.seconds, 2)
        return found


_PATH = re.compile(r"(?<![\w.:/])/(?:[^\s/,;()]+/)*([^\s/,;()]+)")


def without_paths(text: str) -> str:
    """`text` with each absolute path cut to its last part (what the file is called)."""
    return _PATH.sub(r"\1", text)


def _reason(exc: BaseException) -> str:
    return mask_secrets((str(exc).strip().splitlines() or [type(exc).__name__])[0])[:300]


class Warm:
    """One per service process; every request and thread shares it."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.catalog = Catalog(settings)  # the service's start migrates the schema
        self.searcher = Searcher(self.catalog, settings)
        self.asker = Asker(self.catalog, settings, llm=None, load_llm=self._llm)
        names = ("text_model", "image_model", "indexes", "llm")
        self._parts: dict[str, Part] = {name: Part(Readiness.WAITING) for name in names}
        self._lock = threading.Lock()
        self.started = time.monotonic()

    # -- loading --------------------------------------------------------------------------
    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.load, name="footage-warm-up", daemon=True)
        thread.start()
        return thread

    def _set(self, name: str, part: Part) -> None:
        with self._lock:
            self._parts[name] = part

    def _timed(self, name: str, load: Callable[[], str]) -> None:
        """Runs `load` (its return: what is ready), recording the part's state and time."""
        self._set(name, Part(Readiness.LOADING))
        began = time.monotonic()
        try:
            detail = load()
        except EmbedderUnavailable as exc:
            self._set(name, Part(Readiness.FAILED, _reason(exc)))
        except Exception as exc:  # a part that cannot load is reported, never fatal
            log.warning("%s did not load: %s", name, _reason(exc))
            self._set(name, Part(Readiness.FAILED, _reason(exc)))
        else:
            self._set(name, Part(Readiness.READY, detail, time.monotonic() - began))

    def load(self) -> None:
        settings = self.settings
        if settings.embed_text:
            self._timed("text_model", lambda: load_text(settings).name)
        else:
            self._set("text_model", Part(Readiness.OFF, "FOOTAGE_EMBED_TEXT is false"))
        if settings.embed_images:
            self._timed("image_model", lambda: load_clip(settings).name)
        else:
            self._set("image_model", Part(Readiness.OFF, "FOOTAGE_EMBED_IMAGES is false"))
        self._timed("indexes", self._indexes)
        if settings.llm_backend == "none":
            self._set("llm", Part(Readiness.OFF, "FOOTAGE_LLM_BACKEND=none"))
        else:
            self._timed("llm", lambda: describe_llm(settings)[1] if self._llm() else "")

    def _indexes(self) -> str:
        store = self.searcher.indexes
        sizes = []
        for key in store.stored_keys():
            try:
                sizes.append(f"{key.kind}/{key.model}: {len(store.get(key))}")
            except NoVectors:
                continue
        return ", ".join(sizes) or "no vectors yet"

    def _llm(self) -> LLM | None:
        """The language model, loaded once (load_llm caches it per process)."""
        return load_llm(self.settings)

    # -- reporting ------------------------------------------------------------------------
    @property
    def ready(self) -> bool:
        with self._lock:
            parts = list(self._parts.values())
        return all(p.state not in (Readiness.WAITING, Readiness.LOADING) for p in parts)

    def health(self, details: bool) -> dict[str, object]:
        """Each part's state; with `details` (a caller with the token) what it is, with
        file names but never a path of this machine."""
        with self._lock:
            parts = {
                name: part.as_dict() if details else {"state": part.state.value}
                for name, part in self._parts.items()
            }
        if details:
            for part in parts.values():
                if "detail" in part:
                    part["detail"] = without_paths(str(part["detail"]))
        return {
            "status": "ready" if self.ready else "loading",
            "uptime_s": round(time.monotonic() - self.started, 1),
            "catalog": {"state": Readiness.READY.value},
            **parts,
        }

    def close(self) -> None:
        self.catalog.dispose()

"""The command line's client of `footage serve` (used when FOOTAGE_API_URL is set).

It sends what the CLI would run in-process and returns the same values; it imports no
model, index or database code, so `footage search` through the service starts in a
fraction of a second.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx

from footage.errors import FootageError, InvalidInput, NotFound, Unavailable
from footage.secrets import mask_url
from footage.settings import Settings

NOTICE_HEADER = "Footage-Notice"


@dataclass(frozen=True)
class Reply:
    body: Any  # the JSON the CLI's --json prints
    notices: tuple[str, ...]


class ServiceClient:
    def __init__(self, settings: Settings) -> None:
        assert settings.api_url
        self.url = settings.api_url.rstrip("/")
        self.max_image_bytes = settings.max_image_bytes
        headers = {}
        if settings.api_token is not None:
            headers["Authorization"] = f"Bearer {settings.api_token.get_secret_value()}"
        self._http = httpx.Client(
            base_url=self.url, headers=headers, timeout=settings.api_timeout_s
        )

    def close(self) -> None:
        self._http.close()

    def _send(self, method: str, path: str, **kwargs: Any) -> Reply:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            raise Unavailable(
                f"the footage service at {mask_url(self.url)} did not answer in time "
                "(FOOTAGE_API_TIMEOUT_S)"
            ) from exc
        except httpx.HTTPError as exc:
            raise Unavailable(
                f"the footage service at {mask_url(self.url)} is unreachable "
                f"({type(exc).__name__}): start it with `footage serve`, or unset "
                "FOOTAGE_API_URL to work without it"
            ) from exc
        notices = tuple(unquote(v) for v in response.headers.get_list(NOTICE_HEADER))
        if response.status_code >= 400:
            try:
                detail = str(response.json().get("detail", ""))
            except ValueError:
                detail = response.text[:300]
            if response.status_code == 404:
                raise NotFound(detail)
            if response.status_code == 400 and detail == "Invalid host header":
                host = httpx.URL(self.url).host
                raise Unavailable(
                    f"the footage service does not answer to the name {host!r}: add it to "
                    "FOOTAGE_ALLOWED_HOSTS where the service runs (DNS rebinding protection)"
                )
            if response.status_code in (400, 413, 422):
                raise InvalidInput(detail)
            if response.status_code == 401:
                raise Unavailable(f"{detail} (set FOOTAGE_API_TOKEN to the service's token)")
            raise FootageError(f"the footage service answered {response.status_code}: {detail}")
        return Reply(response.json(), notices)

    def search(self, params: list[tuple[str, str]], image: Path | None = None) -> Reply:
        if image is None:
            return self._send("GET", "/search", params=params)
        from footage.images import read_limited  # numpy and Pillow: only for an image

        data = read_limited(image, self.max_image_bytes)  # the service checks the format
        return self._send(
            "POST", "/search/image", params=params, files={"image": (image.name, data)}
        )

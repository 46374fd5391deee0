"""Domain errors: each message says what went wrong and how to fix it.

The command line, the console and the API catch `FootageError` and show its message (exit
code 2, an HTTP 4xx/503); anything else is a bug and is reported as one. Domain errors are
not ValueError/LookupError: code that catches those (a KeyError is a LookupError) would
turn a bug into "no results".
"""

from __future__ import annotations


class FootageError(Exception):
    """Base of every error a user may see; the message is for them."""


class InvalidInput(FootageError):
    """Something the user gave (a query, a name, a time, an image, an id) is not usable."""


class NotFound(FootageError):
    """What the user named (a segment, a video, a camera) is not in the catalog."""


class Unavailable(FootageError):
    """A service or model that the request needs cannot be reached or loaded."""


class Busy(FootageError):
    """The service is doing as much of this at once as it is allowed to: try again shortly
    (HTTP 429 with Retry-After)."""

    def __init__(self, message: str, retry_after_s: int = 1) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class QueryError(FootageError):
    """A user's SQL query failed: the database's message (first line), or a limit it hit."""


class QueryRefused(QueryError):
    """A user's SQL query was not run, or was stopped, because it is not a read-only query
    (or the sandbox it must run in is not set up); the message says which and why."""


class NoVectors(FootageError):
    """Nothing of a kind has been embedded yet: there is no index to search for it."""


class SnapshotUnusable(FootageError):
    """A saved vector index is missing, partial or corrupt: it is rebuilt from the catalog."""

"""Passwords never reach a screen or a log: URLs are shown with `***` for the password.

`mask_url` renders one URL safely; `mask_secrets` masks every `scheme://user:password@`
and `password=...` inside free text (exception messages, log lines); `SecretFilter` does
that to every log record. `install_secret_filter()` puts it on the root logger's handlers:
the CLI calls it after setting up logging, and so must anything that sets up its own
handlers (a Celery worker: call it from the `after_setup_logger` signal).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from urllib.parse import SplitResult, parse_qsl, quote, unquote, urlencode, urlsplit

MASK = "***"
# Passwords shorter than this are not masked as bare words (it would garble every line);
# inside URLs and `password=` they are always masked.
_LITERAL_MIN = 4
# SQLAlchemy dialects: their URLs are parsed (and rendered) the way the engine reads them.
_DATABASE_SCHEMES = {"postgresql", "postgres", "sqlite", "mysql", "mariadb", "oracle", "mssql"}
_SECRET_KEYS = {"password", "passwd", "pwd", "pass", "secret", "token", "access_token"}
# scheme://user:password@ ; the password runs to the last '@' before white space.
_URL_CREDENTIALS = re.compile(
    r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s:/@'\"]*):(?P<password>[^\s]*)@"
)
# password=... in query strings and libpq-style "key=value" connection strings.
_KEY_VALUE = re.compile(
    r"(?P<key>\b(?:" + "|".join(sorted(_SECRET_KEYS)) + r"))(?P<sep>\s*=\s*)"
    r"(?P<value>'[^']*'|\"[^\"]*\"|[^\s&;,'\"]+)",
    re.IGNORECASE,
)


def mask_url(url: str | None) -> str:
    """The URL with its password (and secret query parameters) replaced by ***."""
    if not url:
        return url or ""
    scheme = url.split(":", 1)[0].split("+", 1)[0].lower()
    if scheme in _DATABASE_SCHEMES:
        # Imported here: the CLI's client of the service never loads SQLAlchemy.
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            return mask_secrets(make_url(url).render_as_string(hide_password=True))
        except (ArgumentError, ValueError):
            return mask_secrets(url)
    try:
        parts = urlsplit(url)
        _ = parts.port  # validates the port
    except ValueError:
        return mask_secrets(url)
    return _render(parts)


def _render(parts: SplitResult) -> str:
    netloc = parts.netloc
    if parts.password is not None:
        host = netloc.rpartition("@")[2]
        user = quote(unquote(parts.username or ""), safe="")
        netloc = f"{user}:{MASK}@{host}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(key.lower() in _SECRET_KEYS for key, _ in pairs):
            query = urlencode(
                [(k, MASK if k.lower() in _SECRET_KEYS else v) for k, v in pairs], safe="*"
            )
    return SplitResult(parts.scheme, netloc, parts.path, query, parts.fragment).geturl()


def mask_secrets(text: str, also: Iterable[str] = ()) -> str:
    """`text` with URL passwords, `password=...` values and the strings in `also` masked."""
    text = _URL_CREDENTIALS.sub(lambda m: f"{m['head']}:{MASK}@", text)
    text = _KEY_VALUE.sub(lambda m: f"{m['key']}{m['sep']}{MASK}", text)
    for secret in also:
        if len(secret) >= _LITERAL_MIN:
            text = text.replace(secret, MASK)
    return text


def url_passwords(*urls: str | None) -> list[str]:
    """The passwords in these URLs, raw and percent-decoded (to mask them wherever they go)."""
    found: list[str] = []
    for url in urls:
        if not url:
            continue
        try:
            password = urlsplit(url).password
        except ValueError:
            continue
        if password:
            found += [password, unquote(password)]
    # Longest first, so a password is masked whole before any shorter one inside it.
    return sorted(set(found), key=len, reverse=True)


class SecretFilter(logging.Filter):
    """Masks URL passwords in every record's message, arguments and traceback text."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = mask_secrets(record.msg)
        if isinstance(record.args, dict):
            record.args = {k: _masked_arg(v) for k, v in record.args.items()}
        elif isinstance(record.args, tuple):
            record.args = tuple(_masked_arg(a) for a in record.args)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_secrets(record.exc_text)
        if record.stack_info:
            record.stack_info = mask_secrets(record.stack_info)
        return True


def _masked_arg(value: object) -> object:
    if isinstance(value, str):
        return mask_secrets(value)
    if isinstance(value, int | float | bool) or value is None:
        return value
    try:
        text = str(value)
    except Exception:  # a broken __str__ must not break logging; the formatter reports it
        return value
    masked = mask_secrets(text)
    return value if masked == text else masked


def install_secret_filter(logger: logging.Logger | None = None) -> None:
    """Adds a SecretFilter to the handlers of `logger` (default: root), once each."""
    target = logger or logging.getLogger()
    for handler in target.handlers:
        if not any(isinstance(f, SecretFilter) for f in handler.filters):
            handler.addFilter(SecretFilter())

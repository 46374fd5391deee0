"""The model answers in JSON (`{"answer": "...", "citations": [...]}`); people should see the
answer's words as they are generated, not JSON. `AnswerText` reads the "answer" string out
of the growing JSON, decoding escapes, and hands on only the new characters."""

from __future__ import annotations

import contextlib
import json
import re
from typing import Any

ANSWER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "answer": {"type": "string"},
        "citations": {"type": "array", "items": {"type": "integer"}},
    },
    "required": ["answer", "citations"],
    "additionalProperties": False,
}

_START = re.compile(r'"answer"\s*:\s*"')
_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


class AnswerText:
    def __init__(self) -> None:
        self.raw = ""
        self._pos: int | None = None  # where the answer string's next character is
        self.done = False
        self.text = ""

    def feed(self, delta: str) -> str:
        """Add the model's next output; returns the answer's newly decoded characters."""
        self.raw += delta
        if self.done:
            return ""
        if self._pos is None:
            match = _START.search(self.raw)
            if match is None:
                return ""
            self._pos = match.end()
        new = []
        raw, i = self.raw, self._pos
        while i < len(raw):
            c = raw[i]
            if c == '"':
                self.done = True
                i += 1
                break
            if c == "\\":
                if i + 1 >= len(raw):
                    break  # the escape is not complete yet
                e = raw[i + 1]
                if e == "u":
                    if i + 6 > len(raw):
                        break
                    with contextlib.suppress(ValueError):
                        new.append(chr(int(raw[i + 2 : i + 6], 16)))
                    i += 6
                    continue
                new.append(_ESCAPES.get(e, e))
                i += 2
                continue
            new.append(c)
            i += 1
        self._pos = i
        text = "".join(new)
        self.text += text
        return text


def parse_reply(raw: str) -> tuple[str, list[int], bool]:
    """(answer, cited ids, whether the reply was the JSON asked for).

    A reply that is not valid JSON still gives its answer text, and the ids written as
    [S123] in it."""
    try:
        data = json.loads(raw)
        answer = data["answer"]
        cited = data.get("citations", [])
        if isinstance(answer, str) and isinstance(cited, list):
            ids = [int(c) for c in cited if isinstance(c, int | str) and str(c).isdigit()]
            return answer.strip(), ids, True
    except (ValueError, TypeError, KeyError):
        pass
    reader = AnswerText()
    reader.feed(raw)
    text = reader.text or raw
    ids = [int(x) for x in re.findall(r"\bS(\d{1,18})\b", text)]
    return text.strip(), ids, False

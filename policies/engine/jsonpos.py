"""A strict JSON parser that remembers where every value came from.

Python's ``json`` module tells us *that* a document is malformed but not where each value
sits once it parses, and validation findings and the simulator's ``MatchedStatements`` both
need line/column positions in the text the user submitted. This parser accepts exactly RFC
8259 JSON (no NaN/Infinity, no trailing commas, no comments) and records, for every value,
its span as ``(start_line, start_col, end_line, end_col)``: 1-based, end column inclusive of
the last character.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Path = tuple[str | int, ...]
Span = tuple[int, int, int, int]

_WS = " \t\n\r"
_DIGITS = frozenset("0123456789")
_ESCAPES = {
    '"': '"',
    "\\": "\\",
    "/": "/",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
}


class JsonSyntaxError(ValueError):
    """The text is not JSON; ``line`` and ``column`` are 1-based."""

    def __init__(self, message: str, line: int, column: int) -> None:
        super().__init__(f"{message} at line {line}, column {column}")
        self.message = message
        self.line = line
        self.column = column


@dataclass
class Located:
    """A parsed document with the span of every value and of every object key."""

    value: Any
    spans: dict[Path, Span] = field(default_factory=dict)
    key_spans: dict[Path, Span] = field(default_factory=dict)
    duplicate_keys: list[Path] = field(default_factory=list)

    def span_of(self, path: Path) -> Span | None:
        """The span of the value at ``path``, or of its nearest ancestor that has one."""
        p = path
        while True:
            span = self.spans.get(p)
            if span is not None:
                return span
            if not p:
                return None
            p = p[:-1]


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.n = len(text)
        # Offsets at which each line starts, to turn an offset into (line, column).
        self.line_starts = [0]
        for i, ch in enumerate(text):
            if ch == "\n":
                self.line_starts.append(i + 1)
        self.out = Located(None)

    def loc(self, offset: int) -> tuple[int, int]:
        lo, hi = 0, len(self.line_starts) - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.line_starts[mid] <= offset:
                lo = mid
            else:
                hi = mid - 1
        return lo + 1, offset - self.line_starts[lo] + 1

    def error(self, message: str, offset: int | None = None) -> JsonSyntaxError:
        line, col = self.loc(self.pos if offset is None else offset)
        return JsonSyntaxError(message, line, col)

    def skip_ws(self) -> None:
        text, n, pos = self.text, self.n, self.pos
        while pos < n and text[pos] in _WS:
            pos += 1
        self.pos = pos

    def span(self, start: int, end: int) -> Span:
        a = self.loc(start)
        b = self.loc(max(end - 1, start))
        return (a[0], a[1], b[0], b[1])

    def parse(self) -> Located:
        self.skip_ws()
        if self.pos >= self.n:
            raise self.error("Expecting value")
        self.out.value = self.value(())
        self.skip_ws()
        if self.pos != self.n:
            raise self.error("Extra data")
        return self.out

    def value(self, path: Path) -> Any:
        start = self.pos
        ch = self.text[start] if start < self.n else ""
        result: Any
        if ch == "{":
            result = self.obj(path)
        elif ch == "[":
            result = self.arr(path)
        elif ch == '"':
            result = self.string()
        elif ch == "t" and self.text.startswith("true", start):
            self.pos += 4
            result = True
        elif ch == "f" and self.text.startswith("false", start):
            self.pos += 5
            result = False
        elif ch == "n" and self.text.startswith("null", start):
            self.pos += 4
            result = None
        elif ch == "-" or ch in _DIGITS:
            result = self.number()
        else:
            raise self.error("Expecting value")
        self.out.spans[path] = self.span(start, self.pos)
        return result

    def obj(self, path: Path) -> dict[str, Any]:
        self.pos += 1
        result: dict[str, Any] = {}
        self.skip_ws()
        if self.pos < self.n and self.text[self.pos] == "}":
            self.pos += 1
            return result
        while True:
            self.skip_ws()
            if self.pos >= self.n or self.text[self.pos] != '"':
                raise self.error("Expecting property name enclosed in double quotes")
            kstart = self.pos
            key = self.string()
            child: Path = (*path, key)
            if key in result:
                self.out.duplicate_keys.append(child)
            self.out.key_spans[child] = self.span(kstart, self.pos)
            self.skip_ws()
            if self.pos >= self.n or self.text[self.pos] != ":":
                raise self.error("Expecting ':' delimiter")
            self.pos += 1
            self.skip_ws()
            result[key] = self.value(child)
            self.skip_ws()
            if self.pos < self.n and self.text[self.pos] == ",":
                self.pos += 1
                continue
            if self.pos < self.n and self.text[self.pos] == "}":
                self.pos += 1
                return result
            raise self.error("Expecting ',' delimiter")

    def arr(self, path: Path) -> list[Any]:
        self.pos += 1
        result: list[Any] = []
        self.skip_ws()
        if self.pos < self.n and self.text[self.pos] == "]":
            self.pos += 1
            return result
        while True:
            self.skip_ws()
            result.append(self.value((*path, len(result))))
            self.skip_ws()
            if self.pos < self.n and self.text[self.pos] == ",":
                self.pos += 1
                continue
            if self.pos < self.n and self.text[self.pos] == "]":
                self.pos += 1
                return result
            raise self.error("Expecting ',' delimiter")

    def string(self) -> str:
        text = self.text
        start = self.pos
        pos = start + 1
        parts: list[str] = []
        chunk = pos
        while True:
            if pos >= self.n:
                raise self.error("Unterminated string starting", start)
            ch = text[pos]
            if ch == '"':
                parts.append(text[chunk:pos])
                self.pos = pos + 1
                return "".join(parts)
            if ch == "\\":
                parts.append(text[chunk:pos])
                esc = text[pos + 1 : pos + 2]
                if esc in _ESCAPES:
                    parts.append(_ESCAPES[esc])
                    pos += 2
                elif esc == "u":
                    code = self.hex4(pos + 2)
                    pos += 6
                    if 0xD800 <= code < 0xDC00 and text.startswith("\\u", pos):
                        low = self.hex4(pos + 2)
                        if 0xDC00 <= low < 0xE000:
                            code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                            pos += 6
                    parts.append(chr(code))
                else:
                    raise self.error("Invalid \\escape", pos)
                chunk = pos
                continue
            if ch < " ":
                raise self.error("Invalid control character", pos)
            pos += 1

    def hex4(self, at: int) -> int:
        digits = self.text[at : at + 4]
        if len(digits) != 4 or any(c not in "0123456789abcdefABCDEF" for c in digits):
            raise self.error("Invalid \\uXXXX escape", at - 2)
        return int(digits, 16)

    def number(self) -> int | float:
        text, n = self.text, self.n
        start = pos = self.pos
        if pos < n and text[pos] == "-":
            pos += 1
        if pos < n and text[pos] == "0":
            pos += 1
        elif pos < n and text[pos] in _DIGITS:
            while pos < n and text[pos] in _DIGITS:
                pos += 1
        else:
            raise self.error("Expecting value", start)
        is_float = False
        if pos < n and text[pos] == ".":
            pos += 1
            if not (pos < n and text[pos] in _DIGITS):
                raise self.error("Expecting value", start)
            while pos < n and text[pos] in _DIGITS:
                pos += 1
            is_float = True
        if pos < n and text[pos] in "eE":
            pos += 1
            if pos < n and text[pos] in "+-":
                pos += 1
            if not (pos < n and text[pos] in _DIGITS):
                raise self.error("Expecting value", start)
            while pos < n and text[pos] in _DIGITS:
                pos += 1
            is_float = True
        self.pos = pos
        literal = text[start:pos]
        return float(literal) if is_float else int(literal)


def parse_located(text: str) -> Located:
    """Parse ``text`` as strict JSON, recording spans; raises :class:`JsonSyntaxError`."""
    return _Parser(text).parse()

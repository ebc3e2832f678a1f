"""Wildcard patterns and policy variables, compiled once and matched fast.

Three kinds of pattern appear in IAM policies:

* actions (``iam:Get*``): case-insensitive, ``*`` and ``?`` match any characters;
* ``StringLike`` values: case-sensitive, ``*`` and ``?`` match any characters;
* ARNs in ``Resource``/``NotResource`` and the ``Arn*`` operators: case-sensitive and
  segment-aware. AWS: "You can use wildcard characters (* and ?) within the individual
  segments of an ARN (the parts separated by colons) ... If the * wildcard is the last
  character of a resource ARN segment, it can expand to match beyond the colon boundaries."
  (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_resource.html)
  So inside the first five segments (``arn``, partition, service, region, account) a ``*``
  or ``?`` does not cross a colon unless the ``*`` ends its segment; in the sixth segment
  (the resource id, which may itself contain colons and slashes) wildcards match anything.

Policy variables (``${aws:username}``, ``${aws:PrincipalTag/team, 'default'}``, and the
escapes ``${*}``, ``${?}``, ``${$}``) are only recognised in documents of Version
2012-10-17 (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html).
A substituted value is literal text: a ``*`` inside a user name or tag value is not a
wildcard. A variable with no value in the request and no default makes the pattern
not match.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

# A token is a literal string, STAR, QMARK or a Var.
STAR = 0
QMARK = 1


@dataclass(frozen=True, slots=True)
class Var:
    """A policy variable: the lower-cased context key and its default, if any."""

    key: str
    default: str | None
    text: str


Token = str | int | Var
VarLookup = Callable[[str], "str | None"]

_VAR_RE = re.compile(r"\$\{([^}]*)\}")
_DEFAULT_RE = re.compile(r"^\s*([^,\s][^,]*?)\s*,\s*'([^']*)'\s*$")
_ESCAPE_VARS = {"*": "*", "?": "?", "$": "$"}
_WILD_SPLIT = re.compile(r"([*?])")


def tokenize(pattern: str, *, wildcards: bool, variables: bool) -> list[Token]:
    """Split ``pattern`` into literal text, wildcard and variable tokens."""
    tokens: list[Token] = []
    buf: list[str] = []

    def flush_text(text: str) -> None:
        if not wildcards:
            buf.append(text)
            return
        for piece in _WILD_SPLIT.split(text):
            if piece == "*" or piece == "?":
                if buf:
                    tokens.append("".join(buf))
                    buf.clear()
                tokens.append(STAR if piece == "*" else QMARK)
            elif piece:
                buf.append(piece)

    pos = 0
    if variables:
        for m in _VAR_RE.finditer(pattern):
            flush_text(pattern[pos : m.start()])
            pos = m.end()
            inner = m.group(1)
            if inner in _ESCAPE_VARS:
                buf.append(_ESCAPE_VARS[inner])
                continue
            dm = _DEFAULT_RE.match(inner)
            if dm:
                key, default = dm.group(1), dm.group(2)
            else:
                key, default = inner.strip(), None
            if not key:
                buf.append(m.group(0))
                continue
            if buf:
                tokens.append("".join(buf))
                buf.clear()
            tokens.append(Var(key.lower(), default, m.group(0)))
    flush_text(pattern[pos:])
    if buf:
        tokens.append("".join(buf))
    return tokens


def has_variables(tokens: list[Token]) -> bool:
    return any(isinstance(t, Var) for t in tokens)


def _regex_fragments(tokens: list[Token], *, arn: bool) -> list[str | Var]:
    """Regex source fragments; Var tokens stay as placeholders for per-request values."""
    out: list[str | Var] = []
    segment = 0  # index of the ARN segment being written, capped at 5
    for i, tok in enumerate(tokens):
        if isinstance(tok, str):
            out.append(re.escape(tok))
            if arn and segment < 5:
                segment = min(5, segment + tok.count(":"))
        elif isinstance(tok, Var):
            out.append(tok)
        elif not arn or segment >= 5:
            out.append(".*" if tok == STAR else ".")
        elif tok == QMARK:
            out.append("[^:]")
        else:
            nxt = tokens[i + 1] if i + 1 < len(tokens) else None
            ends_segment = nxt is None or (isinstance(nxt, str) and nxt.startswith(":"))
            out.append(".*" if ends_segment else "[^:]*")
    return out


@lru_cache(maxsize=4096)
def _compiled(source: str, flags: int) -> re.Pattern[str]:
    return re.compile(source, flags | re.DOTALL)


def _always(_value: str) -> bool:
    return True


class Pattern:
    """A compiled pattern. ``match(value, lookup)`` tests a whole string; an
    ``ignore_case`` pattern (actions) expects the value lower-cased, as every caller has it.

    ``static`` is the fastest matcher available when the pattern has no variables
    (``None`` otherwise), and ``is_any`` says the pattern is a bare ``*``.
    """

    __slots__ = (
        "_flags",
        "_fragments",
        "_one",
        "_plain",
        "_plain_prefix_only",
        "is_any",
        "literal",
        "prefix",
        "prefix_only",
        "source",
        "static",
    )

    def __init__(
        self, source: str, *, arn: bool, ignore_case: bool = False, variables: bool = False
    ) -> None:
        self.source = source
        text = source.lower() if ignore_case else source
        self._flags = re.IGNORECASE if ignore_case else 0
        self._fragments: list[str | Var] = []
        self._plain: list[str | Var] | None = None
        self._one: tuple[str, str, str | None, str] | None = None
        self._plain_prefix_only = False
        # True when the pattern is exactly "``prefix`` then anything" (no variables), so an
        # index can find it by its prefix.
        self.prefix_only = False
        # Fast paths for the shapes most patterns take: "*", a literal, "prefix*".
        body = text[:-1] if text.endswith("*") else text
        if "*" not in body and "?" not in body and not (variables and "${" in body):
            self.is_any = text == "*"
            if body is text:
                self.literal: str | None = text
                self.prefix = text
                self.static: Callable[[str], bool] | None = text.__eq__
            else:
                self.literal = None
                self.prefix = body
                self.prefix_only = not self.is_any
                self.static = _always if self.is_any else _startswith(body)
            return
        tokens = tokenize(text, wildcards=True, variables=variables)
        self.is_any = tokens == [STAR]
        self.literal = None
        # The literal text before the first wildcard or variable: a cheap first rejection.
        prefix_parts: list[str] = []
        for tok in tokens:
            if not isinstance(tok, str):
                break
            prefix_parts.append(tok)
        self.prefix = "".join(prefix_parts)
        if has_variables(tokens):
            self.static = None
            wild = [t for t in tokens if t in (STAR, QMARK)]
            if not wild or (len(wild) == 1 and tokens[-1] == STAR):
                # Literal text and variables only (perhaps a trailing *): compare strings,
                # no regex needed.
                self._plain = [t for t in tokens if isinstance(t, str | Var)]
                self._plain_prefix_only = bool(wild)
                parts = self._plain
                if not ignore_case and sum(isinstance(t, Var) for t in parts) == 1:
                    i = next(j for j, t in enumerate(parts) if isinstance(t, Var))
                    before = "".join(str(t) for t in parts[:i])
                    after = "".join(str(t) for t in parts[i + 1 :])
                    var = parts[i]
                    assert isinstance(var, Var)
                    self._one = (before, var.key, var.default, after)
            else:
                self._fragments = _regex_fragments(tokens, arn=arn)
            return
        wild_tokens = [t for t in tokens if not isinstance(t, str)]
        if self.is_any:
            self.static = _always
        elif not wild_tokens:
            literal = "".join(t for t in tokens if isinstance(t, str))
            self.literal = literal
            self.static = literal.__eq__
        elif len(wild_tokens) == 1 and tokens[-1] == STAR:
            # A trailing * always ends its ARN segment, so it may cross colons: a prefix test.
            prefix = "".join(t for t in tokens[:-1] if isinstance(t, str))
            self.prefix = prefix
            self.prefix_only = True
            self.static = _startswith(prefix)
        else:
            pieces = _glob_pieces(tokens, arn=arn)
            if pieces is not None:
                self.static = _glob(pieces)
            else:
                source_re = "".join(
                    f for f in _regex_fragments(tokens, arn=arn) if isinstance(f, str)
                )
                fullmatch = _compiled(source_re, self._flags).fullmatch
                self.static = lambda value: fullmatch(value) is not None

    def match(self, value: str, lookup: VarLookup | None) -> bool:
        static = self.static
        if static is not None:
            return static(value)
        if not value.startswith(self.prefix):
            return False
        one = self._one
        if one is not None:
            resolved = lookup(one[1]) if lookup is not None else None
            if resolved is None:
                resolved = one[2]
                if resolved is None:
                    return False
            expected = one[0] + resolved + one[3]
            return value.startswith(expected) if self._plain_prefix_only else value == expected
        plain = self._plain
        if plain is not None:
            text: list[str] = []
            for tok in plain:
                if isinstance(tok, str):
                    text.append(tok)
                    continue
                resolved = lookup(tok.key) if lookup is not None else None
                if resolved is None:
                    resolved = tok.default
                    if resolved is None:
                        return False
                text.append(resolved)
            joined = "".join(text)
            if self._flags:
                value, joined = value.lower(), joined.lower()
            return value.startswith(joined) if self._plain_prefix_only else value == joined
        parts: list[str] = []
        for frag in self._fragments:
            if isinstance(frag, str):
                parts.append(frag)
                continue
            resolved = lookup(frag.key) if lookup is not None else None
            if resolved is None:
                resolved = frag.default
                if resolved is None:
                    return False
            parts.append(re.escape(resolved))
        return _compiled("".join(parts), self._flags).fullmatch(value) is not None


@lru_cache(maxsize=8192)
def shared_pattern(source: str, arn: bool, ignore_case: bool, variables: bool) -> Pattern:
    """The compiled form of a pattern, shared by every compile in the process: a Pattern
    never changes once built, and the same actions, ARNs and values recur across the
    policies of many principals. Bounded, so odd documents cannot grow it without limit."""
    return Pattern(source, arn=arn, ignore_case=ignore_case, variables=variables)


def _startswith(prefix: str) -> Callable[[str], bool]:
    return lambda value: value.startswith(prefix)


def _glob_pieces(tokens: list[Token], *, arn: bool) -> list[str] | None:
    """The literal pieces between the ``*`` of a pattern whose every wildcard is a ``*``
    that may match any characters (``iam:*User*``, ``arn:aws:iam::*:user/x``), or None when
    it has a ``?`` or an ARN ``*`` that must stay inside its segment (see
    _regex_fragments): those still go to a regular expression. Star-only patterns are
    matched with string methods, with no regular expression to compile."""
    pieces = [""]
    segment = 0
    for i, tok in enumerate(tokens):
        if isinstance(tok, str):
            pieces[-1] += tok
            if arn and segment < 5:
                segment = min(5, segment + tok.count(":"))
        elif tok != STAR:
            return None
        else:
            if arn and segment < 5:
                nxt = tokens[i + 1] if i + 1 < len(tokens) else None
                if not (nxt is None or (isinstance(nxt, str) and nxt.startswith(":"))):
                    return None
            pieces.append("")
    return pieces


def _glob(pieces: list[str]) -> Callable[[str], bool]:
    """A matcher for ``pieces[0] * pieces[1] * ... * pieces[-1]``: the first piece starts
    the value, the last ends it, and the ones between are found left to right, each as
    early as it occurs (for patterns of ``*`` alone the earliest place is never worse)."""
    head, tail = pieces[0], pieces[-1]
    middle = tuple(p for p in pieces[1:-1] if p)
    least = sum(len(p) for p in pieces)
    end_at = -len(tail) if tail else None
    if not middle:
        if not tail:
            return _startswith(head)
        if not head:
            return lambda value: value.endswith(tail)
        return lambda value: len(value) >= least and value.startswith(head) and value.endswith(tail)

    def match(value: str) -> bool:
        if len(value) < least or not value.startswith(head) or not value.endswith(tail):
            return False
        inner = value[len(head) : end_at]
        pos = 0
        for piece in middle:
            pos = inner.find(piece, pos)
            if pos < 0:
                return False
            pos += len(piece)
        return True

    return match


class Template:
    """A condition value with policy variables, resolved per request to a plain string."""

    __slots__ = ("source", "tokens")

    def __init__(self, source: str) -> None:
        self.source = source
        self.tokens = tokenize(source, wildcards=False, variables=True)

    def resolve(self, lookup: VarLookup) -> str | None:
        parts: list[str] = []
        for tok in self.tokens:
            if isinstance(tok, Var):
                value = lookup(tok.key)
                if value is None:
                    value = tok.default
                    if value is None:
                        return None
                parts.append(value)
            else:
                parts.append(str(tok))
        return "".join(parts)


def template_or_text(value: str, *, variables: bool) -> str | Template:
    """The value itself when it has no variables (the common case), else a Template."""
    if variables and "${" in value:
        template = Template(value)
        if any(isinstance(t, Var) for t in template.tokens):
            return template
        return "".join(str(t) for t in template.tokens)
    return value


def escape_like(text: str) -> str:
    """Turn literal text into a StringLike pattern that matches only itself."""
    return text.replace("$", "${$}").replace("*", "${*}").replace("?", "${?}")

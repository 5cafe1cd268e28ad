"""Raw iCalendar content lines: unfold, split into components, fold again.

Used only to keep, byte for byte, what the CRM does not model (SPEC 3.10).
vobject (as Radicale uses it) cuts X- values at the first comma and
re-orders properties, and icalendar re-escapes unknown values, so the lines a
client sent are carried verbatim instead of through either parser.

Layer: storage_plugin (pure; no I/O).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_FOLD = re.compile(r"\r?\n[ \t]")
_LINE_BREAK = re.compile(r"\r?\n")  # RFC 5545 3.1 (CRLF; a bare LF as icalendar takes it): not U+2028 and the like


def unfold(text: str) -> list[str]:
    """Content lines of ``text`` with RFC 5545 folding removed (blank lines dropped)."""
    return [line for line in _LINE_BREAK.split(_FOLD.sub("", text)) if line.strip()]


_OCTET_FOLD = re.compile(rb"\r?\n[ \t]")
# A fold inside a UTF-8 sequence: its lead octet (and continuation octets) before the fold, more after.
_FOLD_IN_CHARACTER = re.compile(rb"([\xc0-\xf7][\x80-\xbf]{0,2})(\r?\n[ \t])(?=[\x80-\xbf])")


@dataclass(frozen=True)
class DecodedBody:
    """A client's iCalendar body as text.

    ``text`` is the client's own bytes, decoded, when they are UTF-8 as sent
    (``exact``); else the same bytes with every fold that splits a UTF-8
    sequence moved to just before that character, so the content is unchanged
    and the text is UTF-8 (``exact`` False: it is not octet for octet the body).
    """

    text: str
    exact: bool


def decode_body(body: bytes) -> DecodedBody:
    """Decode an iCalendar body, unfolding octets first (RFC 5545 3.1 folds at octets).

    A line may be folded between two octets of one UTF-8 character; the body
    is UTF-8 when its unfolded octets are. Folding is CRLF (or LF) and one
    space or tab.

    Raises:
        UnicodeDecodeError: when the unfolded body is not UTF-8.
    """
    content = _OCTET_FOLD.sub(b"", body).decode("utf-8")
    try:
        return DecodedBody(body.decode("utf-8"), True)
    except UnicodeDecodeError:
        pass
    moved, previous = body, b""
    while moved != previous:  # one pass per fold inside one character: at most three for four octets
        previous, moved = moved, _FOLD_IN_CHARACTER.sub(rb"\2\1", moved)
    try:
        return DecodedBody(moved.decode("utf-8"), False)
    except UnicodeDecodeError:  # folds that are no simple split (a fold right after a fold): fold anew
        return DecodedBody("".join(fold(line) for line in _LINE_BREAK.split(content) if line), False)


def fold(line: str) -> str:
    """One content line folded at 75 octets, CRLF-terminated (RFC 5545 3.1)."""
    data = line.encode("utf-8")
    if len(data) <= 75:
        return line + "\r\n"
    parts, start, limit = [], 0, 75
    while start < len(data):
        end = min(start + limit, len(data))
        while end < len(data) and (data[end] & 0xC0) == 0x80:  # never split a UTF-8 sequence
            end -= 1
        parts.append(data[start:end].decode("utf-8"))
        start, limit = end, 74  # continuation lines start with a space
    return "\r\n ".join(parts) + "\r\n"


def property_name(line: str) -> str:
    """The upper-cased name of a content line (before the first ';' or ':')."""
    match = re.match(r"[^;:]*", line)
    return (match.group(0) if match else line).upper()


def _value_start(line: str) -> int:
    """Index of the ':' that starts the value (the first one outside quoted parameters), or -1."""
    quoted = False
    for index, char in enumerate(line):
        if char == '"':
            quoted = not quoted
        elif char == ":" and not quoted:
            return index
    return -1


def value_of(line: str) -> str:
    """The value of a content line: after the first ':' outside quoted parameters."""
    index = _value_start(line)
    return line[index + 1:] if index >= 0 else ""


def parameters_of(line: str) -> str:
    """The raw parameter text of a content line (between the name and the value), or ""."""
    index = _value_start(line)
    head = line[:index] if index >= 0 else line
    name_end = len(property_name(head))
    return head[name_end + 1:] if len(head) > name_end else ""


def parameter(line: str, name: str) -> str | None:
    """One parameter's value (unquoted, as sent), or None when the line does not have it."""
    wanted = name.upper()
    for match in re.finditer(r'([^;=]+)=("[^"]*"|[^;]*)', parameters_of(line)):
        if match.group(1).strip().upper() == wanted:
            return match.group(2).strip('"')
    return None


def mailto_address(line: str) -> str:
    """The address of an ATTENDEE or ORGANIZER line, "mailto:" removed, as sent."""
    value = value_of(line).strip()
    return value[len("mailto:"):] if value.lower().startswith("mailto:") else value


@dataclass
class Component:
    """A component with its own property lines and its sub-components."""

    name: str
    lines: list[str] = field(default_factory=list)
    children: list[Component] = field(default_factory=list)

    def to_lines(self) -> list[str]:
        """The component as unfolded content lines, BEGIN and END included."""
        out = [f"BEGIN:{self.name}", *self.lines]
        for child in self.children:
            out.extend(child.to_lines())
        out.append(f"END:{self.name}")
        return out


def parse_components(text: str) -> list[Component]:
    """Top-level components of ``text``; raises ValueError on unbalanced BEGIN/END."""
    roots: list[Component] = []
    stack: list[Component] = []
    for line in unfold(text):
        name = property_name(line)
        value = line.split(":", 1)[1].strip().upper() if ":" in line else ""
        if name == "BEGIN":
            component = Component(value)
            (stack[-1].children if stack else roots).append(component)
            stack.append(component)
        elif name == "END":
            if not stack or stack[-1].name != value:
                raise ValueError(f"unbalanced END:{value}")
            stack.pop()
        elif stack:
            stack[-1].lines.append(line)
        else:
            raise ValueError("content line outside of any component")
    if stack:
        raise ValueError(f"missing END:{stack[-1].name}")
    return roots

"""Checks of a request body before anything parses it: each failure is a Refusal with a clear 4xx.

An XML body is read twice after these checks: by our own parser
(``storage_plugin.reports``, the bytes in the encoding the document declares)
and by Radicale (the text decoded with the Content-Type charset, then parsed).
Both readings are checked here, so that no body reaches a parser that would
expand entities, recurse past Python's limit or fail with something other than
a parse error, and Radicale is sent only the shapes of request it handles
without crashing (its own checks end in 500 for several of them).

Layer: server.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from urllib.parse import unquote, urlsplit
from xml.parsers import expat

from storage_plugin.refusals import Refusal

XML_METHODS = frozenset({"PROPFIND", "PROPPATCH", "REPORT", "MKCALENDAR", "MKCOL"})
MAX_PROPPATCH_BYTES = 64 * 1024  # Apple's colour, order and default-alarm bodies are under 2 KiB
MAX_XML_DEPTH = 40  # calendar-query filters, the deepest bodies clients send, need about 8
DAV = "{DAV:}"
CALDAV = "{urn:ietf:params:xml:ns:caldav}"
DTD_MESSAGE = "XML with a DOCTYPE or entity declarations is not accepted."
DEPTH_MESSAGE = f"XML nested more than {MAX_XML_DEPTH} levels deep is not accepted."
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")  # PostgreSQL refuses NUL in text; none names anything
_DECLARED_ENCODING = re.compile(rb"""\s*<\?xml[^>]*?encoding\s*=\s*["']([^"']*)""")
_ASCII_READINGS = frozenset({b"utf-8", b"utf8", b"us-ascii", b"ascii"})
PATH_MESSAGE = "A path with control characters (such as %00) names nothing on this server."
# An href of printable ASCII without brackets, whose escapes are none of %00-%1F and %7F: urlsplit()
# cannot fail on it and its decoded path holds no control character, so the check needs no
# urlsplit()/unquote() (25 us of a multiget of 50 hrefs); any other href is checked in full.
_PLAIN_HREF = re.compile(r"(?:[!$&-;=?-Z_a-z~]+|%(?![01]|7[Ff])[0-9A-Fa-f]{2})+")  # runs: 0.3 us an href


class _Stop(Exception):
    """Ends a scan from inside an expat handler."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def check_body(method: str, body: bytes, content_type: str) -> ET.Element | None:
    """Refuse a body that no DAV client sends and that parsers handle badly.

    Returns the XML root element when both readings are one document (every
    recorded client body): the hot path reads that tree instead of parsing the
    body a third time (measured: 38 us of a multiget of 50). None otherwise.

    Raises:
        Refusal: 415 for a Content-Type charset that does not decode text;
            400 for XML with a DOCTYPE or entity declarations (billion laughs,
            external entities), nested more than MAX_XML_DEPTH levels,
            declaring an encoding Python's XML parser does not read, or of a
            shape Radicale cannot answer (see ``_check_shape``);
            413 for a PROPPATCH over MAX_PROPPATCH_BYTES (its values are
            stored on the user's row and sent back with every PROPFIND).
    """
    if method not in XML_METHODS:
        return None
    if method == "PROPPATCH" and len(body) > MAX_PROPPATCH_BYTES:
        raise Refusal(413, f"A PROPPATCH body is larger than the limit of {MAX_PROPPATCH_BYTES} bytes.")
    text = radicale_text(body, content_type)
    if not body:
        return None
    well_formed = _scan(body)  # our parser's reading
    alike = _reads_alike(body, text)
    if not alike:
        well_formed = _scan(text)  # Radicale's reading; a malformed one gets Radicale's own 400
    if not well_formed:
        return None
    root = ET.fromstring(text)
    _check_shape(method, root)
    return root if alike else None


def _reads_alike(body: bytes, text: str) -> bool:
    """Whether both parsers read the same document: ASCII bytes, declared (if at all) as UTF-8 or
    ASCII, and decoded by Radicale to the same text (true of every recorded client body)."""
    if not body.isascii():
        return False
    declared = _DECLARED_ENCODING.match(body)
    return (declared is None or declared[1].lower() in _ASCII_READINGS) and text == body.decode("ascii")


def check_path(path: str) -> None:
    """Refuse a request path (decoded, as in PATH_INFO) holding control characters.

    Raises:
        Refusal: 400; a NUL would otherwise reach PostgreSQL (500 there).
    """
    if CONTROL_CHARACTERS.search(path):
        raise Refusal(400, PATH_MESSAGE)


def radicale_text(body: bytes, content_type: str) -> str:
    """The body decoded as Radicale decodes it (httputils.decode_request).

    Radicale takes everything after "charset=" up to ";" as a codec name, then
    falls back to UTF-8 and ISO-8859-1; only UnicodeDecodeError moves it on,
    so an unknown or non-text codec (LookupError, or UnicodeError from e.g.
    "idna") would end in 500 there.
    """
    charsets = []
    if "charset=" in content_type:
        charsets.append(content_type.split("charset=")[1].split(";")[0].strip())
    charsets += ["utf-8", "iso8859-1"]
    for charset in dict.fromkeys(charsets):
        try:
            return body.decode(charset)
        except UnicodeDecodeError:
            continue
        except (LookupError, ValueError, TypeError):
            raise Refusal(415, f"The charset {charset!r} of the Content-Type is not one this "
                               "server reads; send UTF-8.") from None
    raise AssertionError("ISO-8859-1 decodes any bytes")  # pragma: no cover


def _scan(data: bytes | str) -> bool:
    """Whether ``data`` is well-formed XML; refused when it has a DOCTYPE, nests too deep
    or declares an encoding the parser does not read. Expat is not recursive."""
    parser = expat.ParserCreate(namespace_separator=" ")
    depth = 0

    def start(_name: str, _attributes: dict[str, str]) -> None:
        nonlocal depth
        depth += 1
        if depth > MAX_XML_DEPTH:
            raise _Stop(DEPTH_MESSAGE)

    def end(_name: str) -> None:
        nonlocal depth
        depth -= 1

    def declaration(*_args: object) -> None:
        raise _Stop(DTD_MESSAGE)

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.StartDoctypeDeclHandler = declaration
    parser.EntityDeclHandler = declaration
    try:
        parser.Parse(data, True)
    except expat.ExpatError:
        return False
    except _Stop as stop:
        raise Refusal(400, stop.message) from None
    except (LookupError, ValueError):  # encoding="bogus", "utf-7", "idna"; text not encodable as UTF-8
        raise Refusal(400, "The XML declares an encoding this server does not read; send UTF-8.") from None
    return True


# --- shapes Radicale answers with 500 -------------------------------------------

def _check_shape(method: str, root: ET.Element) -> None:
    """Refuse what Radicale would fail on: the request element of another method,
    a PROPFIND without its one child, properties without a namespace, and the
    REPORT arguments its code asserts on."""
    expected = {"PROPFIND": f"{DAV}propfind", "PROPPATCH": f"{DAV}propertyupdate"}.get(method)
    if expected is not None and root.tag != expected:
        raise Refusal(400, f"A {method} body is a {_local(expected)} element.")
    if not root.tag.startswith("{"):
        raise Refusal(400, "The XML request element needs a namespace (DAV: or CalDAV).")
    if method == "PROPFIND" and len(root) == 0:
        raise Refusal(400, "A propfind element holds prop, allprop or propname.")
    for prop in root.iter(f"{DAV}prop"):
        if any(not child.tag.startswith("{") for child in prop):
            raise Refusal(400, "Every property name needs a namespace.")
    for components in root.iter(f"{CALDAV}supported-calendar-component-set"):
        if any(comp.tag == f"{CALDAV}comp" and "name" not in comp.attrib for comp in components):
            raise Refusal(400, "Each comp of supported-calendar-component-set needs a name.")
    if method == "REPORT":
        _REPORT_CHECKS.get(root.tag, lambda _root: None)(root)


def _check_multiget(root: ET.Element) -> None:
    for href in root.iter(f"{DAV}href"):
        text = (href.text or "").strip()
        if _PLAIN_HREF.fullmatch(text):
            continue  # the usual href: its decoded path holds no control character (see _PLAIN_HREF)
        try:
            path: str | None = unquote(urlsplit(text).path) if text else None
        except ValueError:  # "http://[::1/x"
            path = None
        if path is None:
            raise Refusal(400, "Each href of a calendar-multiget is the URL of an event.")
        if CONTROL_CHARACTERS.search(path):
            raise Refusal(400, PATH_MESSAGE)


def _check_free_busy(root: ET.Element) -> None:
    if root.find(f"{CALDAV}time-range") is None:
        raise Refusal(400, "A free-busy-query holds a time-range.", "C:valid-filter")


def _local(clark: str) -> str:
    return clark.rpartition("}")[2]


_REPORT_CHECKS: dict[str, Callable[[ET.Element], None]] = {
    f"{CALDAV}calendar-multiget": _check_multiget,
    f"{CALDAV}free-busy-query": _check_free_busy,
}

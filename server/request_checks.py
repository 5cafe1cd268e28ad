"""Checks of a request body before anything parses it: each failure is a Refusal with a clear 4xx.

Layer: server.
"""

from __future__ import annotations

from storage_plugin.refusals import Refusal

XML_METHODS = frozenset({"PROPFIND", "PROPPATCH", "REPORT", "MKCALENDAR", "MKCOL"})


def check_body(method: str, body: bytes, content_type: str) -> None:
    """Refuse a body that no DAV client sends and that parsers handle badly.

    Raises:
        Refusal: 400 for XML with a DOCTYPE or entity declarations (billion
            laughs, external entities).
    """
    if method in XML_METHODS and (b"<!DOCTYPE" in body or b"<!ENTITY" in body):
        raise Refusal(400, "XML with a DOCTYPE or entity declarations is not accepted.")

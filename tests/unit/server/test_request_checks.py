"""Issue 9: server.request_checks refuses, with a clear 4xx, the XML bodies that
made a parser or Radicale fail with 500; ordinary client bodies pass untouched.

No server: check_body alone (the running server is driven by
tests/test_hostile_corpus.py).
"""

from __future__ import annotations

import pytest

from server import request_checks
from server.request_checks import MAX_XML_DEPTH, check_body, check_path, radicale_text
from storage_plugin.refusals import Refusal
from tests import dav

PROPFIND = '<?xml version="1.0"?><d:propfind xmlns:d="DAV:"><d:prop><d:displayname/></d:prop></d:propfind>'
DOCTYPE = '<!DOCTYPE x [<!ENTITY a "aaaa">]><d:propfind xmlns:d="DAV:"><d:prop>&a;</d:prop></d:propfind>'
C = 'xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav"'


def _status(method: str, body: bytes | str, content_type: str = "text/xml") -> int | None:
    data = body.encode() if isinstance(body, str) else body
    try:
        check_body(method, data, content_type)
    except Refusal as refusal:
        return refusal.status
    return None


def test_every_recorded_ios_body_passes():
    for path in sorted(dav.IOS_REQUESTS.glob("*.xml")):
        body = path.read_bytes()
        root = body.split(b">", 2)[-1] if body.startswith(b"<?xml") else body
        method = "PROPPATCH" if b"propertyupdate" in root else "PROPFIND" if b"propfind" in root else "REPORT"
        assert _status(method, body) is None, path.name


def test_empty_body_and_non_xml_methods_pass():
    assert _status("PROPFIND", b"") is None
    assert _status("PUT", b"<!DOCTYPE x>") is None
    assert _status("GET", b"\xff" * 10, "text/xml; charset=bogus") is None


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16", "utf-16-le", "utf-32"])
@pytest.mark.parametrize("method", ["PROPFIND", "REPORT", "PROPPATCH"])
def test_doctype_is_refused_in_any_encoding(method, encoding):
    declared = f'<?xml version="1.0" encoding="{encoding.upper()}"?>' + DOCTYPE
    body = declared.encode(encoding) if encoding != "utf-16-le" else b"\xff\xfe" + declared.encode(encoding)
    assert _status(method, body) in (400, None)  # None: not XML to anyone (UTF-32 read as Latin-1)
    assert _status(method, body, f"text/xml; charset={encoding}") == 400


@pytest.mark.parametrize("levels,refused", [(MAX_XML_DEPTH, False), (MAX_XML_DEPTH + 1, True), (100_000, True)])
def test_nesting_beyond_the_limit_is_refused(levels, refused):
    inner = "<d:x>" * (levels - 2) + "</d:x>" * (levels - 2)
    body = f'<d:propfind xmlns:d="DAV:"><d:prop>{inner}</d:prop></d:propfind>'
    assert _status("PROPFIND", body) == (400 if refused else None)


def test_deep_nesting_even_in_a_truncated_body_is_refused():
    assert _status("REPORT", "<a>" * 100_000) == 400


@pytest.mark.parametrize("content_type", ["text/xml; charset=bogus", "text/xml; charset=base64",
                                          "text/xml; xcharset=rot13", "text/xml; charset=hex;q=1"])
def test_a_charset_that_decodes_no_text_gets_415(content_type):
    assert _status("PROPFIND", PROPFIND, content_type) == 415
    assert _status("REPORT", PROPFIND, content_type) == 415
    assert _status("PROPFIND", b"", content_type) is None  # an empty body decodes with any name


def test_charsets_that_decode_text_pass():
    for content_type in ["text/xml", "text/xml; charset=utf-8", "text/xml;charset=ISO-8859-1",
                         'text/xml; charset="utf-8"', "text/xml; charset=idna", "application/xml; charset=utf-16"]:
        assert _status("PROPFIND", PROPFIND, content_type) is None, content_type
    assert radicale_text("é!".encode(), "text/xml; charset=utf-16") == "é!"  # odd length: UTF-8 next
    assert radicale_text("é".encode(), "text/xml; charset=idna") == "é"  # not ASCII: UTF-8 next


@pytest.mark.parametrize("declared", ["bogus", "utf-7", "idna", "base64", "shift_jis"])
def test_an_encoding_declaration_the_parser_cannot_read_gets_400(declared):
    body = PROPFIND.replace('version="1.0"', f'version="1.0" encoding="{declared}"')
    assert _status("PROPFIND", body) == 400


@pytest.mark.parametrize("method,body", [
    ("PROPFIND", '<d:foo xmlns:d="DAV:"/>'),
    ("PROPFIND", '<d:propfind xmlns:d="DAV:"/>'),
    ("PROPFIND", '<d:propfind xmlns:d="DAV:"><d:prop><x/></d:prop></d:propfind>'),
    ("PROPPATCH", '<d:propfind xmlns:d="DAV:"><d:prop><d:displayname/></d:prop></d:propfind>'),
    ("PROPPATCH", '<d:propertyupdate xmlns:d="DAV:"><d:set><d:prop><color>red</color></d:prop></d:set>'
                  '</d:propertyupdate>'),
    ("PROPPATCH", f'<d:propertyupdate {C}><d:set><d:prop><c:supported-calendar-component-set><c:comp/>'
                  '</c:supported-calendar-component-set></d:prop></d:set></d:propertyupdate>'),
    ("REPORT", "<sync-collection/>"),
    ("REPORT", f'<c:calendar-multiget {C}><d:prop><d:getetag/></d:prop><d:href/></c:calendar-multiget>'),
    ("REPORT", f'<c:calendar-multiget {C}><d:prop><d:getetag/></d:prop><d:href>http://[::1/x</d:href>'
               '</c:calendar-multiget>'),
    ("REPORT", f'<c:free-busy-query {C}/>'),
])
def test_shapes_radicale_fails_on_get_400(method, body):
    assert _status(method, body) == 400


@pytest.mark.parametrize("method,body", [
    ("PROPFIND", '<d:propfind xmlns:d="DAV:"><d:allprop/></d:propfind>'),
    ("PROPFIND", '<d:propfind xmlns:d="DAV:"><d:propname/></d:propfind>'),
    ("PROPPATCH", '<d:propertyupdate xmlns:d="DAV:"><d:remove><d:prop><x:a xmlns:x="urn:x"/></d:prop>'
                  '</d:remove></d:propertyupdate>'),
    ("REPORT", f'<c:free-busy-query {C}><c:time-range start="20260101T000000Z"/></c:free-busy-query>'),
    ("REPORT", '<x:unknown-report xmlns:x="urn:x"/>'),
    ("REPORT", "<<< not xml"),  # malformed: Radicale answers its own 400
])
def test_shapes_radicale_answers_pass(method, body):
    assert _status(method, body) is None


@pytest.mark.parametrize("path,refused", [("/a@b.c/crm/x.ics", False), ("/a@b.c/crm/\x00.ics", True),
                                          ("/a\x01/", True), ("/a@b.c/crm/\x7f", True), ("/é/ÿ.ics", False)])
def test_a_path_with_control_characters_is_refused(path, refused):
    try:
        check_path(path)
    except Refusal as refusal:
        assert refused and refusal.status == 400
    else:
        assert not refused


def test_a_multiget_href_with_control_characters_is_refused():
    body = (f"<c:calendar-multiget {C}><d:prop><d:getetag/></d:prop><d:href>/a/crm/%00.ics</d:href>"
            "</c:calendar-multiget>")
    assert _status("REPORT", body) == 400
    assert _status("REPORT", body.replace("%00", "%C3%A9")) is None


def test_a_proppatch_over_the_limit_is_refused_with_413() -> None:
    value = "x" * request_checks.MAX_PROPPATCH_BYTES
    body = (f'<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:"><D:set><D:prop>'
            f'<D:displayname>{value}</D:displayname></D:prop></D:set></D:propertyupdate>').encode()
    with pytest.raises(Refusal) as refused:
        request_checks.check_body("PROPPATCH", body, "text/xml")
    assert refused.value.status == 413 and "PROPPATCH" in refused.value.message

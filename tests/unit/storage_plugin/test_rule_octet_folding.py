"""RFC 5545 3.1 folds at octets: a body is read after unfolding its octets (issue 10), and
content lines are split only at CRLF / LF.

No server: storage_plugin.ical_lines.decode_body and unfold, from_ical.read_event, to_ical.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from crm_model.records import ActivityRecord
from storage_plugin import from_ical, ical_lines, rules, to_ical

GREETING = "Grüße aus München, 3 € bar 😀"


def _body(description: str, extra: str = "") -> bytes:
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//test//EN", "BEGIN:VEVENT", "UID:fold-1",
             "DTSTAMP:20260901T000000Z", "DTSTART:20260917T110000Z", "DTEND:20260917T120000Z",
             "SUMMARY:Call", f"DESCRIPTION:{description}", *([extra] if extra else []), "END:VEVENT",
             "END:VCALENDAR"]
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def _fold_inside(body: bytes, character: str, *, after_octets: tuple[int, ...] = (1,),
                 fold: bytes = b"\r\n ") -> bytes:
    """``body`` with a fold inserted after the given octets of ``character``'s first occurrence."""
    encoded = character.encode("utf-8")
    at = body.index(encoded)
    pieces, last = [body[:at]], 0
    for cut in after_octets:
        pieces += [encoded[last:cut], fold]
        last = cut
    return b"".join([*pieces, encoded[last:], body[at + len(encoded):]])


def _read(text: str) -> from_ical.EventReading:
    return from_ical.read_event(text, default_timezone="UTC", recurrence=rules.RECURRENCE_REJECT)


def test_body_that_is_utf8_as_sent_is_its_own_text():
    body = _body(GREETING)
    assert ical_lines.decode_body(body) == ical_lines.DecodedBody(body.decode("utf-8"), exact=True)


@pytest.mark.parametrize("character,after_octets,fold", [
    ("ü", (1,), b"\r\n "),  # two octets, CRLF + space
    ("€", (2,), b"\n\t"),  # three octets, LF + tab
    ("😀", (1, 2, 3), b"\r\n "),  # four octets, folded three times
])
def test_fold_inside_a_character_is_unfolded_before_decoding(character, after_octets, fold):
    body = _fold_inside(_body(GREETING), character, after_octets=after_octets, fold=fold)
    with pytest.raises(UnicodeDecodeError):
        body.decode("utf-8")
    decoded = ical_lines.decode_body(body)
    assert not decoded.exact
    assert ical_lines.unfold(decoded.text) == ical_lines.unfold(_body(GREETING).decode("utf-8"))
    assert _read(decoded.text).draft.description == GREETING


def test_moved_fold_keeps_every_other_octet_of_the_body():
    body = _fold_inside(_body(GREETING), "ü")
    assert ical_lines.decode_body(body).text.encode("utf-8") == body.replace(b"\xc3\r\n \xbc", b"\r\n \xc3\xbc")


def test_body_not_utf8_once_unfolded_is_refused():
    with pytest.raises(UnicodeDecodeError):
        ical_lines.decode_body(_body("x").replace(b"DESCRIPTION:x", b"DESCRIPTION:Gr\xfc\xdfe"))


def test_fold_after_a_fold_inside_a_character_is_folded_anew():
    body = _body(GREETING).replace("ü".encode(), b"\xc3\r\n \r\n \xbc")
    decoded = ical_lines.decode_body(body)
    assert _read(decoded.text).draft.description == GREETING
    assert all(len(line.encode("utf-8")) <= 75 for line in decoded.text.split("\r\n"))


def test_unicode_line_separators_inside_a_value_do_not_split_the_content_line():
    note = "X-NOTE:first\u2028second\u0085third"
    assert ical_lines.unfold(f"BEGIN:VEVENT\r\n{note}\r\n line\nEND:VEVENT\r\n") == \
        ["BEGIN:VEVENT", f"{note}line", "END:VEVENT"]
    draft = _read(_body("d", extra=note).decode("utf-8")).draft
    now = datetime(2026, 9, 1, tzinfo=UTC)
    record = ActivityRecord(
        id="a-1", uid=draft.uid, href="fold-1.ics", owner_id=1, owner_email="alice@example.com",
        owner_name="Alice", owner_timezone="UTC", type="meeting", title=draft.title, starts_at=draft.starts_at,
        ends_at=draft.ends_at, all_day=False, tzid=None, floating=False, location=None, description=draft.description,
        private=False, reminder_minutes=None, participants=(), source="caldav", created_at=now, updated_at=now,
        change_pos=1, client_extras=draft.client_extras)
    assert f"{note}\r\n" in to_ical.render_vcalendar(record)

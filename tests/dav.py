"""Raw WebDAV helpers for replaying client requests with httpx."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from urllib.parse import unquote

import httpx

from tests.factories import IOS_REQUESTS

NS = {"D": "DAV:", "C": "urn:ietf:params:xml:ns:caldav", "CS": "http://calendarserver.org/ns/"}
IOS_HEADERS = {
    "User-Agent": "iOS/18.1.1 (22B91) dataaccessd/1.0", "Content-Type": "text/xml",
    "Brief": "t", "Prefer": "return=minimal", "Accept": "*/*",
}


@dataclass
class Multistatus:
    """A parsed 207 answer: per href its status, etag and calendar-data; the sync-token."""

    responses: dict[str, dict] = field(default_factory=dict)
    sync_token: str | None = None
    root: ET.Element | None = None

    def hrefs(self, status: int | None = None) -> set[str]:
        return {h for h, r in self.responses.items() if status is None or r["status"] == status}


def body(name: str, **placeholders: str) -> str:
    text = (IOS_REQUESTS / name).read_text()
    for key, value in placeholders.items():
        text = text.replace("{{" + key + "}}", value)
    return text


def multiget_body(hrefs: list[str]) -> str:
    template = body("05-multiget.xml")
    head, _, _ = template.partition('  <A:href xmlns:A="DAV:">')
    refs = "".join(f'  <A:href xmlns:A="DAV:">{h}</A:href>\n' for h in hrefs)
    return head + refs + "</G:calendar-multiget>\n"


def request(client: httpx.Client, method: str, path: str, content: str, depth: str | None = "1") -> httpx.Response:
    headers = dict(IOS_HEADERS)
    if depth is not None:
        headers["Depth"] = depth
    return client.request(method, path, content=content.encode(), headers=headers)


def parse(response: httpx.Response) -> Multistatus:
    assert response.status_code == 207, (response.status_code, response.text)
    root = ET.fromstring(response.content)
    result = Multistatus(root=root)
    token = root.find("D:sync-token", NS)
    result.sync_token = token.text if token is not None else None
    for item in root.findall("D:response", NS):
        href = unquote(item.findtext("D:href", namespaces=NS))
        status_text = item.findtext("D:status", namespaces=NS) or item.findtext("D:propstat/D:status", namespaces=NS)
        result.responses[href] = {
            "status": int(status_text.split()[1]),
            "etag": item.findtext("D:propstat/D:prop/D:getetag", namespaces=NS),
            "calendar_data": item.findtext("D:propstat/D:prop/C:calendar-data", namespaces=NS),
            "element": item,
        }
    return result


# --- Replays of Thunderbird, DAVx5 and Evolution (tests/test_client_replays.py) ---

from collections.abc import Iterator  # noqa: E402
from datetime import UTC, datetime  # noqa: E402
from typing import Any  # noqa: E402
from urllib.parse import quote  # noqa: E402

FIXTURES = IOS_REQUESTS.parent


@dataclass(frozen=True)
class ClientProfile:
    """How one client sends its requests: fixture folder, headers on every request,
    the Content-Type of its XML and of its iCalendar bodies."""

    folder: str
    headers: dict[str, str]
    xml_type: str
    ics_type: str

    def body(self, name: str, **placeholders: str) -> str:
        text = (FIXTURES / self.folder / name).read_text()
        for key, value in placeholders.items():
            text = text.replace("{{" + key + "}}", value)
        return text

    def ics(self, name: str) -> bytes:
        return (FIXTURES / self.folder / name).read_bytes()


def client_request(client: httpx.Client, profile: ClientProfile, method: str, path: str,
                   body: str | None = None, depth: str | None = None, *,
                   ics: bytes | Iterator[bytes] | None = None, **headers: str) -> httpx.Response:
    """One request as ``profile`` sends it: an XML ``body`` or an iCalendar ``ics`` (an
    iterator is sent chunked); extra headers by name (If_Match -> If-Match)."""
    sent = dict(profile.headers)
    if body is not None:
        sent["Content-Type"] = profile.xml_type
    if ics is not None:
        sent["Content-Type"] = profile.ics_type
    if depth is not None:
        sent["Depth"] = depth
    sent.update({name.replace("_", "-"): value for name, value in headers.items()})
    content = body.encode() if body is not None else ics
    return client.request(method, path, content=content, headers=sent)


def href_elements(hrefs: list[str], tag: str) -> str:
    """``<tag>href</tag>`` for each href, as a multiget body lists them."""
    return "".join(f"<{tag}>{h}</{tag}>" for h in hrefs)


def prop_text(response: dict, path: str) -> str | None:
    """Text of ``path`` (NS prefixes of ``NS``) under one parsed response's element."""
    return response["element"].findtext(path, namespaces=NS)


def privileges(response: dict) -> set[str]:
    """Local names of the current-user-privilege-set of one parsed response."""
    found = response["element"].findall(".//D:current-user-privilege-set/D:privilege/*", NS)
    return {element.tag.split("}")[1] for element in found}


def reports(response: dict) -> set[str]:
    """Local names of the supported-report-set of one parsed response."""
    found = response["element"].findall(".//D:supported-report-set//D:report/*", NS)
    return {element.tag.split("}")[1] for element in found}


def encoded(href: str) -> str:
    """A decoded href percent-encoded as the clients send it ("@" as %40)."""
    return quote(href, safe="/")


def chunked(data: bytes, size: int = 256) -> Iterator[bytes]:
    """``data`` as an iterator, so httpx sends it with Transfer-Encoding: chunked."""
    yield from (data[i:i + size] for i in range(0, len(data), size))


def instant(value: str) -> datetime:
    """An exported ISO date-time as an aware UTC datetime."""
    return datetime.fromisoformat(value).astimezone(UTC)


@dataclass
class Replay:
    """One client's connection to a user's calendar, and the CRM behind it (a Crm)."""

    http: httpx.Client
    profile: ClientProfile
    crm: Any
    owner: str
    activities: list[dict[str, Any]]

    def send(self, method: str, path: str, body: str | None = None, depth: str | None = None,
             **headers: str) -> httpx.Response:
        return client_request(self.http, self.profile, method, path, body, depth, **headers)

    def put(self, href: str, name: str, **headers: str) -> httpx.Response:
        return client_request(self.http, self.profile, "PUT", encoded(href), ics=self.profile.ics(name), **headers)

    def xml(self, method: str, path: str, name: str, depth: str | None, **fill: str) -> Multistatus:
        return parse(self.send(method, path, self.profile.body(name, **fill), depth))

    def crm_retitle(self, index: int, title: str) -> None:
        """A change made in the CRM: the activity re-imported with a new title."""
        self.activities[index]["title"] = title
        self.crm.load({"activities": [self.activities[index]]})

    def exported(self) -> dict[str, dict[str, Any]]:
        return {a["uid"]: a for a in self.crm.export(self.owner)["activities"]}


THUNDERBIRD = ClientProfile(
    "thunderbird-requests",
    {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Thunderbird/128.5.0"},
    "text/xml; charset=utf-8", "text/calendar; charset=utf-8")
DAVX5 = ClientProfile(
    "davx5-requests", {"User-Agent": "DAVx5/4.5.4-ose (at.bitfire.davdroid)", "Accept": "application/xml, text/xml"},
    "application/xml; charset=UTF-8", "text/calendar;charset=utf-8")
EVOLUTION = ClientProfile(
    "evolution-requests", {"User-Agent": "Evolution/3.56.2"},
    'application/xml; charset="utf-8"', 'text/calendar; charset="utf-8"')


def offered(replay: Replay) -> set[str]:
    """The decoded hrefs of every event the CRM offers in the replay's calendar."""
    return {f"/{replay.owner}/crm/{a['href']}" for a in replay.exported().values()}


def href_of(replay: Replay, activity_id: str) -> str:
    return next(f"/{replay.owner}/crm/{a['href']}" for a in replay.exported().values() if a["id"] == activity_id)


def thunderbird_fetchable(listing: Multistatus) -> set[str]:
    """What Thunderbird's CalDavWebDavSyncHandler / CalDavEtagsHandler queue for a multiget:
    items with an ETag and a text/calendar content type, not collections."""
    return {h for h, r in listing.responses.items() if r["status"] == 200 and r["etag"]
            and (r["element"].findtext(".//D:getcontenttype", namespaces=NS) or "").startswith("text/calendar")
            and r["element"].find(".//D:resourcetype/D:collection", NS) is None}


def etag_after_put(replay: Replay, href: str, put: httpx.Response) -> str:
    """Evolution keeps the ETag of a PUT answer; without one it GETs the item for it
    (ecb_caldav_save_component_sync, then ecb_caldav_load_component_sync)."""
    if put.headers.get("ETag"):
        return put.headers["ETag"]
    got = replay.send("GET", encoded(href))
    assert got.status_code == 200 and got.headers["ETag"]
    return got.headers["ETag"]

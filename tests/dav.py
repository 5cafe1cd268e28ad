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

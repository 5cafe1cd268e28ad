"""The iPhone's CalDAV requests (bodies copied from shared/clients/ios-requests) and a
small timed HTTP client that parses the multistatus answers."""
from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from xml.sax.saxutils import escape

import httpx

# iOS 18.1.1 headers (ios-requests/README.md). Accept-Encoding without "br": httpx has
# no brotli decoder installed here, and gzip is what the servers actually offer.
IOS_HEADERS = {
    "User-Agent": "iOS/18.1.1 (22B91) dataaccessd/1.0",
    "Accept": "*/*",
    "Accept-Language": "en-US,en;q=0.9",
    "Accept-Encoding": "gzip, deflate",
}
XML_HEADERS = {"Content-Type": "text/xml", "Brief": "t", "Prefer": "return=minimal"}

# 03-propfind-home.xml (home, Depth 1)
PROPFIND_HOME = """<?xml version="1.0" encoding="UTF-8"?>
<A:propfind xmlns:A="DAV:">
  <A:prop>
    <A:add-member/>
    <C:allowed-sharing-modes xmlns:C="http://calendarserver.org/ns/"/>
    <D:autoprovisioned xmlns:D="http://apple.com/ns/ical/"/>
    <E:bulk-requests xmlns:E="http://me.com/_namespace/"/>
    <B:calendar-alarm xmlns:B="urn:ietf:params:xml:ns:caldav"/>
    <D:calendar-color xmlns:D="http://apple.com/ns/ical/"/>
    <B:calendar-description xmlns:B="urn:ietf:params:xml:ns:caldav"/>
    <B:calendar-free-busy-set xmlns:B="urn:ietf:params:xml:ns:caldav"/>
    <D:calendar-order xmlns:D="http://apple.com/ns/ical/"/>
    <B:calendar-timezone xmlns:B="urn:ietf:params:xml:ns:caldav"/>
    <A:current-user-privilege-set/>
    <B:default-alarm-vevent-date xmlns:B="urn:ietf:params:xml:ns:caldav"/>
    <B:default-alarm-vevent-datetime xmlns:B="urn:ietf:params:xml:ns:caldav"/>
    <A:displayname/>
    <C:getctag xmlns:C="http://calendarserver.org/ns/"/>
    <C:invite xmlns:C="http://calendarserver.org/ns/"/>
    <D:language-code xmlns:D="http://apple.com/ns/ical/"/>
    <D:location-code xmlns:D="http://apple.com/ns/ical/"/>
    <B:max-attendees-per-instance xmlns:B="urn:ietf:params:xml:ns:caldav"/>
    <A:owner/>
    <C:pre-publish-url xmlns:C="http://calendarserver.org/ns/"/>
    <C:publish-url xmlns:C="http://calendarserver.org/ns/"/>
    <C:push-transports xmlns:C="http://calendarserver.org/ns/"/>
    <C:pushkey xmlns:C="http://calendarserver.org/ns/"/>
    <A:quota-available-bytes/>
    <A:quota-used-bytes/>
    <D:refreshrate xmlns:D="http://apple.com/ns/ical/"/>
    <A:resource-id/>
    <A:resourcetype/>
    <B:schedule-calendar-transp xmlns:B="urn:ietf:params:xml:ns:caldav"/>
    <B:schedule-default-calendar-URL xmlns:B="urn:ietf:params:xml:ns:caldav"/>
    <C:source xmlns:C="http://calendarserver.org/ns/"/>
    <C:subscribed-strip-alarms xmlns:C="http://calendarserver.org/ns/"/>
    <C:subscribed-strip-attachments xmlns:C="http://calendarserver.org/ns/"/>
    <C:subscribed-strip-todos xmlns:C="http://calendarserver.org/ns/"/>
    <B:supported-calendar-component-set xmlns:B="urn:ietf:params:xml:ns:caldav"/>
    <B:supported-calendar-component-sets xmlns:B="urn:ietf:params:xml:ns:caldav"/>
    <A:supported-report-set/>
    <A:sync-token/>
  </A:prop>
</A:propfind>
"""

# 04a-propfind-calendar-ctag.xml (calendar, Depth 0)
PROPFIND_CTAG = """<?xml version="1.0" encoding="UTF-8"?>
<A:propfind xmlns:A="DAV:">
  <A:prop>
    <C:getctag xmlns:C="http://calendarserver.org/ns/"/>
    <A:sync-token/>
  </A:prop>
</A:propfind>
"""

# 04-sync-collection.xml; an empty token gives 04b-sync-collection-initial.xml
SYNC_COLLECTION = """<?xml version="1.0" encoding="UTF-8"?>
<A:sync-collection xmlns:A="DAV:">
  <A:sync-token>{token}</A:sync-token>
  <A:sync-level>1</A:sync-level>
  <A:prop>
    <A:getetag/>
  </A:prop>
</A:sync-collection>
"""

# 04f-calendar-query-vevent-range-macos.xml; {data} adds calendar-data for S4b
CALENDAR_QUERY = """<?xml version="1.0" encoding="UTF-8"?>
<B:calendar-query xmlns:B="urn:ietf:params:xml:ns:caldav">
  <A:prop xmlns:A="DAV:">
    <A:getetag/>
    <A:getcontenttype/>{data}
  </A:prop>
  <B:filter>
    <B:comp-filter name="VCALENDAR">
      <B:comp-filter name="VEVENT">
        <B:time-range start="{start}" end="{end}"/>
      </B:comp-filter>
    </B:comp-filter>
  </B:filter>
</B:calendar-query>
"""

# 05-multiget.xml, one <A:href> line per member (<= 50 per request on iOS)
MULTIGET_HEAD = """<?xml version="1.0" encoding="UTF-8"?>
<G:calendar-multiget xmlns:G="urn:ietf:params:xml:ns:caldav">
  <A:prop xmlns:A="DAV:">
    <A:getetag/>
    <G:calendar-data/>
    <G:schedule-tag/>
  </A:prop>
"""
MULTIGET_HREF = '  <A:href xmlns:A="DAV:">{href}</A:href>\n'
MULTIGET_TAIL = "</G:calendar-multiget>\n"

NS = {"D": "DAV:", "C": "urn:ietf:params:xml:ns:caldav", "CS": "http://calendarserver.org/ns/"}


class HTTPError(Exception):
    pass


@dataclass
class Member:
    href: str
    status: int          # status of the response (or of its first propstat)
    etag: str | None
    data: str | None     # calendar-data, when asked for


def multiget_body(hrefs: list[str]) -> str:
    return MULTIGET_HEAD + "".join(MULTIGET_HREF.format(href=escape(h)) for h in hrefs) + MULTIGET_TAIL


def _status_code(text: str | None) -> int:
    # "HTTP/1.1 200 OK" -> 200
    try:
        return int(text.split()[1]) if text else 0
    except (IndexError, ValueError):
        return 0


def parse_multistatus(body: bytes) -> tuple[list[Member], str | None, dict[str, str]]:
    """Members, the top-level sync-token, and the props of the first response by local name."""
    root = ET.fromstring(body)
    members, first_props = [], {}
    for resp in root.findall("D:response", NS):
        href = resp.findtext("D:href", default="", namespaces=NS)
        # A response has either its own status (404 in a multiget, deleted in a sync) or
        # propstats; it counts as 200 when any of its propstats is.
        status = _status_code(resp.findtext("D:status", namespaces=NS))
        etag = data = None
        for ps in resp.findall("D:propstat", NS):
            code = _status_code(ps.findtext("D:status", namespaces=NS))
            if code != 200:
                status = status or code
                continue
            status = 200
            props = ps.find("D:prop", NS)
            for prop in (props if props is not None else []):
                name = prop.tag.split("}")[-1]
                if not members:
                    first_props[name] = prop.text or ""
                if name == "getetag":
                    etag = prop.text
                elif name == "calendar-data":
                    data = prop.text
        members.append(Member(href, status, etag, data))
    return members, root.findtext("D:sync-token", namespaces=NS), first_props


class Dav:
    """httpx.Client that adds iOS headers and Basic auth and sums request time.

    `elapsed` counts only time spent waiting for and reading responses, so client-side
    XML parsing does not inflate the servers' numbers.
    """

    def __init__(self, base_url: str, auth: tuple[str, str] | None, timeout: float = 600):
        self.client = httpx.Client(base_url=base_url, auth=auth, headers=IOS_HEADERS,
                                   timeout=timeout, http1=True, http2=False)
        self.elapsed = 0.0
        self.requests = 0

    def close(self):
        self.client.close()

    def request(self, method: str, url: str, body: str | bytes | None = None,
                headers: dict | None = None, expect: tuple[int, ...] = (207,)) -> httpx.Response:
        t0 = time.perf_counter()
        resp = self.client.request(method, url, content=body, headers=headers)
        resp.read()
        self.elapsed += time.perf_counter() - t0
        self.requests += 1
        if resp.status_code not in expect:
            raise HTTPError(f"{method} {url} -> {resp.status_code} (expected {expect}): "
                            f"{resp.text[:600]}")
        return resp

    def xml(self, method: str, url: str, body: str, depth: str | None):
        headers = dict(XML_HEADERS)
        if depth is not None:
            headers["Depth"] = depth
        resp = self.request(method, url, body.encode(), headers)
        return parse_multistatus(resp.content)

    # The iPhone's requests, one method each.
    def propfind_home(self, home: str):
        return self.xml("PROPFIND", home, PROPFIND_HOME, "1")

    def propfind_ctag(self, cal: str) -> tuple[str | None, str | None]:
        _, _, props = self.xml("PROPFIND", cal, PROPFIND_CTAG, "0")
        return props.get("getctag"), props.get("sync-token")

    def sync_collection(self, cal: str, token: str = "") -> tuple[list[Member], str | None]:
        members, new_token, _ = self.xml("REPORT", cal, SYNC_COLLECTION.format(token=escape(token)), "1")
        return members, new_token

    def multiget(self, cal: str, hrefs: list[str]) -> list[Member]:
        # iOS sends the multiget without a Depth header (README step 15).
        return self.xml("REPORT", cal, multiget_body(hrefs), None)[0]

    def calendar_query(self, cal: str, start: str, end: str, with_data: bool) -> list[Member]:
        data = '\n    <B:calendar-data/>' if with_data else ""
        body = CALENDAR_QUERY.format(start=start, end=end, data=data)
        return self.xml("REPORT", cal, body, "1")[0]

    def put(self, href: str, ics: bytes, if_match: str | None = None, if_none_match: bool = False,
            expect=(201, 204)) -> httpx.Response:
        headers = {"Content-Type": "text/calendar; charset=utf-8"}
        if if_match:
            headers["If-Match"] = if_match
        if if_none_match:
            headers["If-None-Match"] = "*"
        return self.request("PUT", href, ics, headers, expect)

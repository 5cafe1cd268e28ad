"""The principal's calendar-user-address-set, completed with the user's mailto: address.

Apple clients decide "am I the organizer?" by comparing ORGANIZER with this set
(shared/clients/ios-caldav.md 3.4; RFC 6638 2.4.1); Radicale lists only the
principal's path there and has no hook for more, so the handler adds the
address to Radicale's PROPFIND answer.

Layer: server.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from urllib.parse import unquote

DAV_HREF = "{DAV:}href"
ADDRESS_SET = "{urn:ietf:params:xml:ns:caldav}calendar-user-address-set"


def with_user_address(body: bytes, *, base_prefix: str, email: str) -> bytes:
    """``body`` (a 207 multistatus) with mailto:``email`` first in the address set of ``email``'s principal.

    Other answers are returned unchanged.
    """
    if ADDRESS_SET.rsplit("}", 1)[1].encode() not in body:
        return body
    root = ET.fromstring(body)
    principal = f"{base_prefix}/{email}/"
    changed = False
    for response in root.iter("{DAV:}response"):
        if unquote(response.findtext(DAV_HREF) or "") != principal:
            continue
        for element in response.iter(ADDRESS_SET):
            href = ET.Element(DAV_HREF)
            href.text = f"mailto:{email}"
            element.insert(0, href)
            changed = True
    if not changed:
        return body
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)

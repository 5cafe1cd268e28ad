"""Apple configuration profiles (.mobileconfig) that add the CRM calendar to an iPhone, iPad or Mac.

One profile holds one ``com.apple.caldav.account`` payload with a device's
app password; host, port and TLS come from the server's public URL
(``CRM_CALDAV_PUBLIC_URL``). Written with plistlib, unsigned: iOS shows such a
profile as "Not Signed" and installs it all the same; README.md ("Admin page")
says how to sign one with ``openssl smime`` (the server does not).

Layer: server.
"""

from __future__ import annotations

import plistlib
import uuid
from urllib.parse import quote, urlsplit

CONTENT_TYPE = "application/x-apple-aspen-config"
PAYLOAD_TYPE = "com.apple.caldav.account"
PROFILE_TYPE = "Configuration"
DEFAULT_PORTS = {"https": 443, "http": 80}


def principal_url(public_url: str, email: str) -> str:
    """The absolute URL of ``email``'s principal (and calendar home) under ``public_url``."""
    return f"{public_url.rstrip('/')}/{quote(email, safe='@')}/"


def mobileconfig(*, public_url: str, email: str, password: str, label: str) -> bytes:
    """A configuration profile (XML plist) adding ``email``'s CRM calendar with ``password``.

    ``label`` names the device the password belongs to; it is shown in the
    profile's description, so that the user sees which password it holds.

    Raises:
        ValueError: ``public_url`` is not an absolute http(s) URL.
    """
    parts = urlsplit(public_url)
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        raise ValueError(f"the public URL must be an absolute http(s) URL, not {public_url!r}")
    host = parts.hostname
    profile_uuid = str(uuid.uuid4()).upper()
    identifier = f"crm-caldav.{host}.{profile_uuid}"
    account = {
        "CalDAVAccountDescription": f"CRM calendar ({email})",
        "CalDAVHostName": host,
        "CalDAVPort": parts.port or DEFAULT_PORTS[parts.scheme],
        "CalDAVUseSSL": parts.scheme == "https",
        "CalDAVPrincipalURL": principal_url(public_url, email),
        "CalDAVUsername": email,
        "CalDAVPassword": password,
        "PayloadType": PAYLOAD_TYPE,
        "PayloadIdentifier": f"{identifier}.caldav",
        "PayloadUUID": str(uuid.uuid4()).upper(),
        "PayloadVersion": 1,
        "PayloadDisplayName": "CRM calendar",
    }
    profile = {
        "PayloadContent": [account],
        "PayloadDisplayName": f"CRM calendar for {email}",
        "PayloadDescription": f"Adds the CRM calendar of {email} with the app password of {label!r}.",
        "PayloadIdentifier": identifier,
        "PayloadType": PROFILE_TYPE,
        "PayloadUUID": profile_uuid,
        "PayloadVersion": 1,
    }
    return plistlib.dumps(profile, fmt=plistlib.FMT_XML, sort_keys=True)

"""The admin web page at /admin/ (issue 11): users, CalDAV on and off, devices and their profiles.

Layer: server.
"""

from server.admin.mount import ADMIN_PATH, AdminApp, is_admin_path  # the pages are imported on first use
from server.admin.settings import PageSettings

__all__ = ["ADMIN_PATH", "AdminApp", "PageSettings", "is_admin_path"]

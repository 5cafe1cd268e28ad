"""The admin web page at /admin/ (issue 11): users, CalDAV on and off, devices and their profiles.

Layer: server.
"""

from server.admin.app import ADMIN_PATH, AdminApp, is_admin_path
from server.admin.pages import PageSettings

__all__ = ["ADMIN_PATH", "AdminApp", "PageSettings", "is_admin_path"]

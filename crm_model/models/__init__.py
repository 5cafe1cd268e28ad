"""All ORM models; importing this package completes ``Base.metadata``.

Layer: crm_model (private: other packages use crm_model.services and records).
"""

from crm_model.models.activities import Activity, Participant
from crm_model.models.admin_sessions import AdminSession, ProfileDownload
from crm_model.models.admins import Admin
from crm_model.models.changes import CalendarChange, InitialWindowEntry
from crm_model.models.devices import Device
from crm_model.models.feeds import Feed
from crm_model.models.parties import Contact, Lead
from crm_model.models.renderings import ActivityRendering, RendererState
from crm_model.models.users import User

__all__ = [
    "Activity",
    "ActivityRendering",
    "Admin",
    "AdminSession",
    "CalendarChange",
    "Contact",
    "Device",
    "Feed",
    "InitialWindowEntry",
    "Lead",
    "Participant",
    "ProfileDownload",
    "RendererState",
    "User",
]

"""Domain errors raised by crm_model services; callers translate them once at their edge.

Layer: crm_model.
"""


class CrmError(Exception):
    """Base of every error a CRM operation raises on purpose."""


class NotFoundError(CrmError):
    """A user, activity or record that was asked for does not exist."""


class InvalidDataError(CrmError):
    """Input that cannot be stored; the message names the place (``activities[3].start: ...``)."""


class ConflictError(CrmError):
    """The write collides with another resource (for example a UID already used elsewhere)."""


class ReadOnlyCalendarError(CrmError):
    """The user's calendar is CRM-to-calendar only; client writes are refused."""


class StaleRevisionError(CrmError):
    """The client's copy is older than the stored one."""

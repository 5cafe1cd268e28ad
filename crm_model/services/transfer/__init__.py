"""CRM data in and out as JSON-ready dicts (the format of SPEC 5).

``import_data`` (in ``importing``, with its checks in ``checks`` and its bulk
reads in ``reading``), ``export_data`` (in ``exporting``) and ``export_changes``
(what changed after a position, in ``changes``).

Layer: crm_model.
"""

from crm_model.services.transfer.changes import export_changes
from crm_model.services.transfer.exporting import export_data
from crm_model.services.transfer.importing import ImportSummary, import_data, progress_total, refresh_statistics

__all__ = ["ImportSummary", "export_changes", "export_data", "import_data", "progress_total", "refresh_statistics"]

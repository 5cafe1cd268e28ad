"""CRM data in and out as JSON-ready dicts (the format of SPEC 5).

``import_data`` (in ``importing``, with its checks in ``checks`` and its bulk
reads in ``reading``) and ``export_data`` (in ``exporting``).

Layer: crm_model.
"""

from crm_model.services.transfer.exporting import export_data
from crm_model.services.transfer.importing import ImportSummary, import_data, refresh_statistics

__all__ = ["ImportSummary", "export_data", "import_data", "refresh_statistics"]

"""IPC resource model (issue #3). ``fd``: the per-process fd-table state provider."""

from ftraceipc.model.fd import (FdModel, FdTable, Handle, IoAttribution, Origin, Reason, Slot,
                                rid_from_snapshot)

__all__ = ["FdModel", "FdTable", "Handle", "IoAttribution", "Origin", "Reason", "Slot",
           "rid_from_snapshot"]

"""IPC resource model (issue #3): capture -> tasks, resources and the edges between them.

``fd``: the fd-table state provider; ``syscalls``: enter/exit pairing; ``sched``: sleeps and
wakeups; ``ipc``: the Model and its columns; ``build``: the driver over a capture.
"""

from ftraceipc.model.fd import FdModel, FdTable, Handle, Origin, Reason, Resource, Slot, rid_from_snapshot
from ftraceipc.model.ipc import Model

__all__ = ["FdModel", "FdTable", "Handle", "Model", "Origin", "Reason", "Resource", "Slot", "rid_from_snapshot"]

"""Set reconciliation between CTB replicas (docs/sync.md).

    index = SetIndex.from_ids(ids); index.add(new_id)
    r = Reconciler(index, initiator=True); msg = r.start(); ... r.receive(reply) ...
    ids_we_lack, ids_they_lack = r.result()
"""
from .errors import SyncError
from .index import SetIndex
from .reconciler import Reconciler, reconcile

__all__ = ["SetIndex", "Reconciler", "SyncError", "reconcile"]

"""The analyzer: pure functions on frames and config objects.

No sockets, no files, no clock here (like Flask's ``sansio``): functions take sample frames (the
columns of ``store.SAMPLE_COLUMNS``) and :class:`config.Config` objects, and return result
dataclasses with a ``to_dict()`` for JSON. I/O lives in ``store`` and at the edges (cli, web).
"""
from cpaudit.analyzer.balance import BalanceResult, NodeBalance, material_balance
from cpaudit.analyzer.totals import StreamTotal, common_window, stream_totals, totalizer_amount

__all__ = ["BalanceResult", "NodeBalance", "StreamTotal", "common_window", "material_balance",
           "stream_totals", "totalizer_amount"]

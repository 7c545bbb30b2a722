"""Finance reports: one query per report, streamed to CSV or XLSX, plus the orders/payments reconciliation.

Reports read the ledger as it stands and never write to it. Who may see which
communities is decided by the caller through ``selectors.report_scope_for_user``
and handed in as ``ReportFilters.community_ids``.
"""

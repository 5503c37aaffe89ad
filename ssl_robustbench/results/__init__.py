"""Results: the one long table of ResultRows, its files, and the summary pivot."""

from ssl_robustbench.results.rows import COLUMNS, ResultRow, read_table, rows_to_frame, write_table

__all__ = ["COLUMNS", "ResultRow", "read_table", "rows_to_frame", "write_table"]

"""The ``robustbench`` command line (thin Click commands; the work lives in the package)."""

from ssl_robustbench.cli.main import main

__all__ = ["main"]

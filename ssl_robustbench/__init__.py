"""ssl-robustbench: measure and improve the robustness of self-supervised image representations.

Python API (``ssl_robustbench/api.py``): ``evaluate(model, mean=…, std=…, input_size=…, suites=[…])`` for any
``nn.Module``, ``list_models()`` and ``load_model(id)`` for the zoo.
"""

__version__ = "0.1.0"

__all__ = ["evaluate", "list_models", "load_model", "__version__"]


def __getattr__(name: str):
    """The API functions, imported on first use (``import ssl_robustbench`` stays light for the CLI)."""
    if name in ("evaluate", "list_models", "load_model", "Evaluation"):
        from ssl_robustbench import api

        return getattr(api, name)
    raise AttributeError(f"module 'ssl_robustbench' has no attribute {name!r}")

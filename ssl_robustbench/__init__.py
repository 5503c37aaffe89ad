"""ssl-robustbench: measure and improve the robustness of self-supervised image representations."""

__version__ = "0.1.0"

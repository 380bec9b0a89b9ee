"""pywg: a userspace WireGuard with a Python control plane and a C data plane."""

__version__ = "0.1.0"
__all__ = ["__version__"]

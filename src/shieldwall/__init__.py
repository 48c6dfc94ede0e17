"""shieldwall — collective defense for servers: an attack on one member is an attack on all."""

__version__ = "0.1.0"
__all__ = ["__version__"]

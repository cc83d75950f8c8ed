from .api import audit

__all__ = ["audit"]

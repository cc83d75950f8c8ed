"""The errors an audit raises for a reason its caller can act on, in one light module (no imports), so
that `shiftaudit.client` exports them without loading the engine. Each is also the built-in type code
written before it knew these expects (``ValueError`` for what the caller gave, ``RuntimeError`` for what
the model or the device cannot do)."""
from __future__ import annotations

MARK = "\x1f"  # around an option's name in a message: a control character no user types, no path holds


def named(name: str) -> str:
    """An option's name in an error message, marked: a Python or gRPC caller reads the name it passed
    (``rise``), a command line the flag its user typed (``--rise``, `shiftaudit.server.flags.with_flags`)."""
    return f"{MARK}{name}{MARK}"


class AuditError(Exception):
    """Base of every error below: ``except AuditError`` catches what an audit can fail with. Its message
    may name options with `named`; ``str()`` gives their names, ``marked`` keeps the marks."""

    def __init__(self, message: str = "") -> None:
        super().__init__(message.replace(MARK, ""))
        self.marked = message

    def __reduce__(self) -> tuple:  # pickled with its marks (a Ray actor's error reaches the driver so)
        return type(self), (self.marked,)


class InputError(AuditError, ValueError):
    """What the caller gave cannot be audited: images, paths, labels, or no usable image at all."""


class OptionError(InputError):
    """An option (or a preprocessing value) misspelt, of the wrong kind or out of range."""


class ModelError(AuditError, RuntimeError):
    """The model cannot be audited as it is (not a single-input image classifier, unloadable...)."""


class DeviceError(AuditError, RuntimeError):
    """A device was asked for (``device='cuda'``) and cannot be had here."""


class Cancelled(AuditError):
    """The caller asked the audit to stop."""

"""sdrt's errors: one hierarchy, each message naming the input at fault and the fix.

    SdrtError
    ├── BundleError          an engine bundle is missing, damaged, from another sdrt, or lacks a part
    ├── EngineError          an engine cannot load or run here (plan for another GPU, damaged graph)
    │   └── ProviderNotAvailableError   the provider's packages or a GPU are missing
    ├── InputError           a call's argument is out of range (InputTypeError: of the wrong type)
    └── ExportError          (the export stage's) a build stopped; any previous bundle is left as it was

The CLIs print any of them as one line on stderr and exit with status 2. Each also derives from the
built-in exception a caller would expect (``ValueError``, ``TypeError``, ``FileNotFoundError``,
``ImportError``, ``RuntimeError``), so ``except ValueError`` around a pipeline call keeps working.
"""

from __future__ import annotations


class SdrtError(Exception):
    """Base class of every error sdrt raises on purpose."""


class BundleError(SdrtError, ValueError):
    """An engine bundle cannot be used: missing, unreadable, another format version, a part missing."""


class BundleNotFoundError(BundleError, FileNotFoundError):
    """The bundle folder, its manifest, or a file its manifest lists does not exist."""


class EngineError(SdrtError, RuntimeError):
    """An engine cannot be loaded or run on this machine."""


class ProviderNotAvailableError(EngineError, ImportError):
    """The requested provider's packages (or a GPU) are missing; the message names the extra to install."""


class InputError(SdrtError, ValueError):
    """An argument of a call is out of range or inconsistent with the others or with the bundle."""


class InputTypeError(InputError, TypeError):
    """An argument of a call has the wrong type."""

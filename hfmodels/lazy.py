"""Names a package exports but imports only when first used (PEP 562), so importing the package stays cheap."""

from collections.abc import Callable
from importlib import import_module
from typing import Any


def lazy_exports(package: str, exports: dict[str, str]) -> Callable[[str], Any]:
    """A `__getattr__` for `package` that imports each name of `exports` (name -> module) when it is first read."""

    def __getattr__(name: str) -> Any:
        if name in exports:
            return getattr(import_module(exports[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__

"""Every change the lab makes to a library's internals, declared in one place.

A patch replaces one attribute of a library's class or module (its *target*). Each is a
``Patch``: the target, the replacement, why, the setting that turns it off, where the fix
belongs upstream (an issue or pull request, or which project should take it), and the
distribution version and the stock attribute's source it was written against. ``install()``
applies them once per process; a patch whose library is at another version, or whose target is
missing or no longer the code it was written for, is refused with one line on stderr
(``PatchRefused``, a SystemExit with gunicorn's APP_LOAD_ERROR: the worker does not start and the
arbiter stops) instead of changing code nobody has read.

Each patch has a unit test comparing it with the stock attribute on the same input
(tests/unit/test_patches_*.py).
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import sys
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import labsettings

# gunicorn's arbiter halts (instead of forking the worker again and again) when a worker exits
# with its APP_LOAD_ERROR.
APP_LOAD_ERROR = 4


class PatchRefused(SystemExit):
    """A patch's target is not the one it was written for: fix the patch, or pin the version.
    Its line goes to stderr; the process exits with APP_LOAD_ERROR."""

    def __init__(self, line: str) -> None:
        super().__init__(APP_LOAD_ERROR)
        self.line = line

    def __str__(self) -> str:
        return self.line


def source_digest(obj: Any) -> str:
    """The first 12 hex digits of sha256 over ``obj``'s source (its ``repr`` when it has none):
    what a patch records of its target, so that an upgrade that changes it is noticed."""
    try:
        text = inspect.getsource(obj)
    except (OSError, TypeError):
        text = repr(obj)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Patch:
    target: str  # "module:Class.attribute" or "module:attribute"
    replacement: Any
    why: str
    upstream: str  # the issue or pull request, or the project the fix belongs in
    distribution: str  # the PyPI name whose code the target is
    version: str  # the distribution's version the patch was written against
    digest: str  # source_digest of the stock target at that version; "" when the patch adds it
    setting: labsettings.Setting[bool] | None = None  # off: the stock target stays
    stock: Any = field(default=None, compare=False)  # filled by resolve()

    def owner_and_name(self) -> tuple[Any, str]:
        module_name, _, path = self.target.partition(":")
        owner: Any = importlib.import_module(module_name)
        *parents, name = path.split(".")
        for parent in parents:
            owner = getattr(owner, parent)
        return owner, name

    @property
    def adds(self) -> bool:
        return not self.digest

    def enabled(self) -> bool:
        return self.setting is None or bool(self.setting.value())

    def check(self) -> Any:
        """The stock attribute, after checking it is the one this patch was written for."""
        installed = metadata.version(self.distribution)
        if installed != self.version:
            raise PatchRefused(
                f"lab: patch of {self.target} was written for {self.distribution} {self.version}, "
                f"found {installed}: check it against the new code ({self.upstream})"
            )
        owner, name = self.owner_and_name()
        stock = _stock.get(self.target, getattr(owner, name, None))
        if self.adds:
            if stock is not None:
                raise PatchRefused(
                    f"lab: patch adds {self.target}, which {self.distribution} {installed} now has: "
                    f"check whether it is still needed ({self.upstream})"
                )
            return None
        if stock is None:
            raise PatchRefused(
                f"lab: patch of {self.target}: no such attribute in {self.distribution} {installed}"
            )
        found = source_digest(stock)
        if found != self.digest:
            raise PatchRefused(
                f"lab: patch of {self.target}: the stock code changed (digest {found}, written for "
                f"{self.digest}); check the patch against it ({self.upstream})"
            )
        return stock


# The stock attribute of every target, kept when first replaced: a second install() (another
# create_app in the same process) checks and restores against it, not against a replacement.
_stock: dict[str, Any] = {}


def stock(target: str) -> Any:
    """The library's own attribute behind ``target`` (whether or not it is patched)."""
    if target in _stock:
        return _stock[target]
    module_name, _, path = target.partition(":")
    owner: Any = importlib.import_module(module_name)
    for part in path.split("."):
        owner = getattr(owner, part)
    return owner


def install(patches: tuple[Patch, ...]) -> None:
    """Check every patch, then set each enabled one's replacement (a disabled one's stock)."""
    try:
        checked = [(patch, patch.check()) for patch in patches]
    except PatchRefused as refused:
        print(refused, file=sys.stderr, flush=True)
        raise
    for patch, original in checked:
        owner, name = patch.owner_and_name()
        _stock.setdefault(patch.target, original)
        if patch.enabled():
            setattr(owner, name, patch.replacement)
        elif patch.adds:
            if name in vars(owner):
                delattr(owner, name)
        else:
            setattr(owner, name, original)


def all_patches() -> tuple[Patch, ...]:
    from . import bodyinput, clienterrors, eiows, pywsgi, wsclose, wsdeflate, wsread, wssend, wsupgrade

    return (
        pywsgi.PATCHES
        + bodyinput.PATCHES
        + wsread.PATCHES
        + wssend.PATCHES
        + wsclose.PATCHES
        + wsupgrade.PATCHES
        + wsdeflate.PATCHES
        + clienterrors.PATCHES
        + eiows.PATCHES
    )

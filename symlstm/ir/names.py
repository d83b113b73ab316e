"""The one authority for generated names.

A ``Namer`` knows every name that is already spoken for (the spec's names, Python's keywords and
builtins, what a generated module imports) and hands out fresh identifiers from a readable hint:
``fresh("i_bar")`` is ``"i_bar"`` unless that is taken, then ``"i_bar_2"``, ``"i_bar_3"``, ...
Nothing else in symlstm makes up an identifier, so no valid spec name can collide with one, and no
name is reserved in the spec language beyond ``x``, ``<state>_prev`` and the function names.
"""

from __future__ import annotations

import builtins
import keyword
from collections.abc import Iterable, Iterator

#: names no generated identifier may take in any Python source symlstm writes
PYTHON_WORDS = (
    frozenset(keyword.kwlist)
    | frozenset(keyword.softkwlist)
    | frozenset(dir(builtins))
    # and what newer Pythons add, so that the generated text is the same under every version
    | frozenset({"type", "PythonFinalizationError", "_IncompleteInputError"})
)


class Namer:
    def __init__(self, taken: Iterable[str] = ()):
        self._taken: set[str] = set(taken)

    def __contains__(self, name: str) -> bool:
        return name in self._taken

    def claim(self, name: str) -> str:
        """Record ``name`` as spoken for (a name the user chose); returns it."""
        self._taken.add(name)
        return name

    def fresh(self, hint: str) -> str:
        """``hint`` if it is free, else ``hint_2``, ``hint_3``, ...; the result is then taken."""
        name, k = hint, 2
        while name in self._taken:
            name, k = f"{hint}_{k}", k + 1
        self._taken.add(name)
        return name

    def numbered(self, hint: str) -> Iterator[str]:
        """Fresh names ``hint0``, ``hint1``, ... (skipping taken ones), for CSE temporaries."""
        k = 0
        while True:
            name = f"{hint}{k}"
            k += 1
            if name not in self._taken:
                self._taken.add(name)
                yield name

    def child(self) -> Namer:
        """A namer that starts with everything this one has handed out or seen."""
        return Namer(self._taken)

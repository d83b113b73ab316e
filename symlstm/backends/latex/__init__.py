"""The LaTeX backend: the derivation typeset in vector notation (``printer``), in the notation
presets of ``notation`` (data in ``notations/``), as equations or a standalone document."""

from __future__ import annotations

from symlstm.ir.derive import Derivation


class LatexBackend:
    name = "latex"
    suffix = ".tex"

    def emit(self, derivation: Derivation) -> str:
        from symlstm.backends.latex.document import latex_document

        return latex_document(derivation)

"""The ONNX backend: a cell as an ONNX graph, a ``Scan`` over time of standard operators.

``emit`` writes the graph as text with the parameters as inputs (``generated/onnx/<cell>.onnxtxt``);
``export`` (``symlstm.onnx.export``) binds trained parameters as initializers and writes a
``.onnx`` file. The modules, one concern each: ``graph`` (building a graph, the opset),
``primitives`` (one ONNX lowering per primitive), ``expressions`` (SymPy -> nodes), ``interface``
(the graph's inputs and outputs), ``weights`` (stacked matrices, sizes), ``scan`` (the Scan and
its body), ``native`` (ONNX's own LSTM/GRU/RNN operators), ``model`` (the model and its text),
``params`` (checking the parameters), ``export`` (the file). The ``onnx`` package is imported
only when one of them is used.
"""

from __future__ import annotations

from symlstm.ir.derive import Derivation


class OnnxBackend:
    name = "onnx"
    suffix = ".onnxtxt"

    def emit(self, derivation: Derivation) -> str:
        from symlstm.backends.onnx.model import model_text

        return model_text(derivation)

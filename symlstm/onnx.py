"""Exporting a cell to ONNX: ``symlstm.onnx.export(cell, params, "model.onnx")``.

The graph is a ``Scan`` over time of standard ONNX operators, with the input projection of all
steps hoisted out of the loop as one MatMul; ``native=True`` uses ONNX's own LSTM/GRU/RNN
operator for the cells it has one for. Needs the ``onnx`` package (``pip install
"symlstm[onnx]"``); ``import symlstm`` does not import it. See ``symlstm.backends.onnx``.
"""

from __future__ import annotations

from symlstm.backends.onnx.export import export, to_model

__all__ = ["export", "to_model"]

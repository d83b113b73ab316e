"""Verification: finite differences and a Taylor test (``gradcheck``), and hand-written PyTorch
versions of the built-in cells (``torch_reference``)."""

"""symlstm's cells inside PyTorch: ``Recurrent``, an ``nn.Module`` mirroring ``torch.nn.LSTM``.

    >>> import torch, symlstm.torch
    >>> model = symlstm.torch.Recurrent("peephole", input_size=8, hidden_size=32, num_layers=2)
    >>> output, (h_n, c_n) = model(torch.randn(20, 4, 8))     # (T, B, 8), or a PackedSequence
    >>> output.shape, h_n.shape
    (torch.Size([20, 4, 32]), torch.Size([2, 4, 32]))
    >>> lstm = symlstm.torch.Recurrent.from_torch(torch.nn.LSTM(8, 32))   # and .to_torch()

The kernels run through one ``torch.library`` custom op per cell, with its autograd formula and
fake implementation, so ``torch.compile`` traces a model without graph breaks. CPU only; double
backward is not supported. The kernels run on PyTorch's own OpenMP threads (``set_threads``,
module ``threads``: why). Modules: ``module`` (the nn.Module), ``ops`` (the custom ops),
``packed`` (variable-length batches), ``masks`` (samplers of per-step inputs), ``threads``,
``checks`` (argument checks).

Requires torch (``pip install 'symlstm[torch]'``); ``import symlstm`` alone never imports it.
"""

from __future__ import annotations

try:
    import torch  # noqa: F401 - only to fail here, with the install hint, when it is missing
except ImportError:
    raise ImportError("symlstm.torch needs PyTorch: pip install 'symlstm[torch]' (or pip install torch)") from None

from symlstm.torch.masks import Bernoulli
from symlstm.torch.module import Recurrent
from symlstm.torch.threads import get_threads, set_threads, using_threads

__all__ = ["Bernoulli", "Recurrent", "get_threads", "set_threads", "using_threads"]

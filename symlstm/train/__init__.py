"""Training on the kernels with NumPy: layers (``nn``, exported as ``symlstm.nn``), optimizers
(``optim``), argument checks (``checks``), stacked PyTorch modules (``pytorch_modules``) and the
adding-problem demo (``demo``)."""

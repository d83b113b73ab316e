"""PyTorch weights <-> symlstm parameters (``pytorch``); torch is imported only when used."""

"""The command line (``cli``: ``symlstm`` and ``python -m symlstm``) and the benchmark (``bench``)."""

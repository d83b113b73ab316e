"""The documentation site (``symlstm docs``) and the Sphinx extension.

``docs`` (the entry: ``build_docs``, ``DocsError``) plans the files, ``build`` runs the steps;
``pages`` holds what the pages share, ``html``/``mathml``, ``markdown``, ``tex``/``sheet`` and
``mathtext`` write each format, ``greff`` the comparison with Greff et al. 2017, ``diagram`` the
Graphviz drawings, ``sphinx`` the ``.. symlstm::`` directive.
"""

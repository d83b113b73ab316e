"""Stage 2, the intermediate representation: the typed IR (``nodes``), its names (``names``), the
derivation of one step forward and backward (``derive``), sizes (``sizes``), the storage plan
(``plan``) and summaries of a cell (``summary``)."""

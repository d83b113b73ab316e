"""Stage 1, the spec language: spec text (TOML) -> ``CellSpec`` (``spec``), the functions a spec
may call (``primitives``) and the sizes of its vectors (``sizes``)."""

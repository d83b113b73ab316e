"""Built-in notation presets for the LaTeX printer, one TOML table each (see ``symlstm.backends.latex.notation``)."""

"""Notation presets for the LaTeX printer: how each symbol is typeset, as data.

A preset is a small TOML table (the built-ins are in ``symlstm/backends/latex/notations/``): how a letter is
typeset (``\\mathbf{<x>}``), where the time index goes (``x_t`` or ``x^t``), what marks a
pre-activation and an adjoint, how a matrix-vector product and a weight gradient's outer product
read, and tables that rename spec names (``g`` -> ``\\mathbf{z}``), parameter subscripts and
functions (a name, or a template that places the arguments: ``\\sqrt{<z>}``, ``<a>`` and ``<b>``
for two). Every preset extends the default ``symlstm.toml`` (or the preset named by
``extends``), so a user's own file only lists what it changes::

    name = "mine"
    extends = "greff"
    [symbols]
    c = '\\mathbf{s}'

A preset may also write concatenated weights, as Olah's blog does (the ``colah`` preset):
``concat = '[<h>, <x>]'`` turns on the form ``W_f \\cdot [h_{t-1}, x_t]`` wherever a sum holds one
matrix times the input and one times the previous output (``symlstm.backends.latex.concat``
says exactly when), ``concatenated = 'W_{<k>}'`` names that matrix after the value it computes
and ``block = 'W_{<k>,<part>}'`` its blocks, the spec's two matrices (``<part>`` is ``h`` or
``x``), which the backward lines and the gradients of ``x`` and ``h`` use::

    name = "input-first"
    extends = "pytorch"
    [style]
    concat = '[<x>, <h>]'     # W_f [x_t, h_{t-1}], W_f = [W_{f,x}, W_{f,h}]
    concatenated = 'W_{<k>}'
    block = 'W_{<k><part>}'   # W_{fx}, W_{fh}

A preset may also fold each pre-activation into its activation's line, as the blog writes a
gate: ``fold_preactivations = true`` (a switch, ``false`` in the default) prints ``f_t =
\\sigma(W_f \\cdot [h_{t-1}, x_t] + b_f)`` instead of the two lines ``\\bar{f}_t = ...`` and
``f_t = \\sigma(\\bar{f}_t)``, wherever the pre-activation is used only as the argument of that
activation (``symlstm.backends.latex.fold`` says exactly when); the backward lines still name
it, and the legend says what it stands for::

    name = "one-line-gates"
    extends = "greff"
    [style]
    fold_preactivations = true

``Notation`` turns those templates into LaTeX strings; the printer in ``symlstm.backends.latex.printer`` asks it
for every symbol, so there is one code path for all presets.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import MappingProxyType

from symlstm.lang.primitives import PRIMITIVES

DEFAULT = "symlstm"
MAX_PRESET_BYTES = 50_000
GREEK = frozenset(
    {
        "alpha",
        "beta",
        "gamma",
        "delta",
        "epsilon",
        "zeta",
        "eta",
        "theta",
        "kappa",
        "lambda",
        "mu",
        "nu",
        "xi",
        "pi",
        "rho",
        "sigma",
        "tau",
        "phi",
        "chi",
        "psi",
        "omega",
    }
)

#: style key -> placeholders its template must contain
_STYLE_PLACEHOLDERS = {
    "time": (),
    "letter": ("<x>",),
    "greek": ("<x>",),
    "preact": ("<x>",),
    "delta": ("<x>",),
    "output_grad": (),
    "hadamard": (),
    "transpose": ("<x>",),
    "product": ("<M>", "<v>"),
    "outer": ("<d>",),
    "sum": (),
    "concat": ("<h>", "<x>"),
    "concatenated": ("<k>",),
    "block": ("<k>", "<part>"),
}
#: style keys that are switches (TOML true or false), not templates
_FLAGS = ("fold_preactivations",)
#: style keys whose empty value turns the feature off
_OPTIONAL = frozenset({"concat"})
_TABLES = ("symbols", "subscripts", "parameters", "functions")
#: the placeholders of a function's template, by its number of arguments
_ARGUMENTS = {1: ("z",), 2: ("a", "b")}
_PLACEHOLDERS = ("z", "a", "b")
_TOP_LEVEL = {"name", "title", "description", "legend", "extends", "style", *_TABLES}


class NotationError(ValueError):
    """A notation preset that cannot be used; the message says where and why."""


def preset_names() -> list[str]:
    """The built-in presets, the default first."""
    names = sorted(
        p.name[: -len(".toml")]
        for p in resources.files("symlstm.backends.latex.notations").iterdir()
        if p.name.endswith(".toml")
    )
    return [DEFAULT] + [n for n in names if n != DEFAULT]


def _read_builtin(name: str) -> str:
    return resources.files("symlstm.backends.latex.notations").joinpath(f"{name}.toml").read_text("utf-8")


def _parse(text: str, label: str) -> dict:
    if len(text.encode("utf-8")) > MAX_PRESET_BYTES:
        raise NotationError(f"{label} is larger than {MAX_PRESET_BYTES} bytes")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise NotationError(f"{label} is not valid TOML: {err}") from None
    unknown = sorted(set(data) - _TOP_LEVEL)
    if unknown:
        raise NotationError(f"{label}: unknown keys {unknown}; allowed: {sorted(_TOP_LEVEL)}")
    for key in ("name", "title", "description", "legend", "extends"):
        if key in data and not isinstance(data[key], str):
            raise NotationError(f"{label}: {key} must be a string")
    style = data.get("style", {})
    if not isinstance(style, dict):
        raise NotationError(f"{label}: [style] must be a table")
    for key, value in style.items():
        if key in _FLAGS:
            if not isinstance(value, bool):
                raise NotationError(f"{label}: [style] {key} must be true or false")
            continue
        if key not in _STYLE_PLACEHOLDERS:
            allowed = sorted([*_STYLE_PLACEHOLDERS, *_FLAGS])
            raise NotationError(f"{label}: unknown [style] key {key!r}; allowed: {allowed}")
        if not isinstance(value, str):
            raise NotationError(f"{label}: [style] {key} must be a string")
        for placeholder in _STYLE_PLACEHOLDERS[key]:
            if placeholder not in value and not (key in _OPTIONAL and value == ""):
                raise NotationError(f"{label}: [style] {key} = {value!r} must contain {placeholder}")
    if "time" in style and style["time"] not in ("subscript", "superscript"):
        raise NotationError(f'{label}: [style] time must be "subscript" or "superscript"')
    if "outer" in style and not ("<v>" in style["outer"] or "<vT>" in style["outer"]):
        raise NotationError(f"{label}: [style] outer must contain <v> or <vT>")
    for table in _TABLES:
        entries = data.get(table, {})
        if not isinstance(entries, dict) or not all(isinstance(v, str) for v in entries.values()):
            raise NotationError(f"{label}: [{table}] must be a table of name = 'LaTeX' entries")
    unknown = sorted(set(data.get("functions", {})) - set(PRIMITIVES))
    if unknown:
        raise NotationError(f"{label}: [functions] {unknown} are not functions; known: {list(PRIMITIVES)}")
    for function, rendering in data.get("functions", {}).items():
        wanted = _ARGUMENTS[PRIMITIVES[function].arity]
        placed = [n for n in _PLACEHOLDERS if f"<{n}>" in rendering]
        if placed and placed != list(wanted):
            raise NotationError(
                f"{label}: [functions] {function} = {rendering!r} places {['<' + n + '>' for n in placed]}; "
                f"a template for {function} places {' and '.join('<' + n + '>' for n in wanted)}, or write "
                "just a name (it is applied to the arguments in parentheses)"
            )
    return data


def _merge(base: dict, over: dict) -> dict:
    out = {k: v for k, v in base.items() if k not in ("name", "extends", "legend", "description", "title")}
    for key, value in over.items():
        if key == "style" or key in _TABLES:
            out[key] = {**base.get(key, {}), **value}
        else:
            out[key] = value
    return out


def _resolve(text: str, label: str, seen: tuple[str, ...] = ()) -> dict:
    data = _parse(text, label)
    name = data.get("name", "")
    if name == DEFAULT and label == f"preset {DEFAULT!r}":
        return data
    parent = data.get("extends", DEFAULT)
    if parent in seen:
        raise NotationError(f"{label}: presets extend each other in a cycle: {' -> '.join(seen + (parent,))}")
    if parent not in preset_names():
        raise NotationError(f"{label}: extends unknown preset {parent!r}; built-in presets: {preset_names()}")
    base = _resolve(_read_builtin(parent), f"preset {parent!r}", seen + (parent,))
    return _merge(base, data)


def load_notation(name_or_path: Notation | str | Path | None = None) -> Notation:
    """A built-in preset by name (default: ``symlstm``), or a user's preset from a ``.toml`` file."""
    if isinstance(name_or_path, Notation):
        return name_or_path
    key = DEFAULT if name_or_path is None else str(name_or_path)
    if key in preset_names():
        return _builtin(key)
    path = Path(key)
    if path.suffix == ".toml" or path.exists():
        try:
            text = path.read_text("utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise NotationError(f"cannot read the notation file {path}: {err}") from None
        data = _resolve(text, str(path))
        data.setdefault("name", path.stem)
        return Notation.from_data(data, source=str(path))
    raise NotationError(f"unknown notation {key!r}: use one of {preset_names()} or the path of a .toml preset")


_CACHE: dict[str, Notation] = {}


def _builtin(name: str) -> Notation:
    if name not in _CACHE:
        data = _resolve(_read_builtin(name), f"preset {name!r}", (name,))
        _CACHE[name] = Notation.from_data(data, source=f"symlstm/backends/latex/notations/{name}.toml")
    return _CACHE[name]


def _fill(template: str, **values: str) -> str:
    out = template
    for key, value in values.items():
        out = out.replace(f"<{key}>", value)
    return out


@dataclass(frozen=True)
class Notation:
    """A resolved preset: style templates and rename tables, all strings."""

    name: str
    title: str
    description: str
    legend: str | None
    style: Mapping[str, str]
    symbols: Mapping[str, str]
    subscripts: Mapping[str, str]
    parameters: Mapping[str, str]
    functions: Mapping[str, str]
    source: str
    #: each pre-activation written inside its activation's line (``[style] fold_preactivations``)
    fold_preactivations: bool = False
    #: for one cell (``symlstm.backends.latex.cellnotation``): a matrix that is a block of
    #: a concatenated one -> (the value naming the concatenated matrix, the operand it multiplies)
    blocks: Mapping[str, tuple[str, str]] = field(default_factory=lambda: MappingProxyType({}))
    #: for one cell: the sentence of the legend that says how the concatenated matrices split
    blocks_legend: str = ""
    #: for one cell (``symlstm.backends.latex.cellnotation``): the sentence of the legend
    #: that says which activation's argument each folded pre-activation is
    folds_legend: str = ""

    @classmethod
    def from_data(cls, data: dict, source: str) -> Notation:
        style = data.get("style", {})
        missing = sorted({*_STYLE_PLACEHOLDERS, *_FLAGS} - set(style))
        if missing:  # only possible if the default preset itself is incomplete
            raise NotationError(f"{source}: [style] lacks {missing}")
        frozen = {t: MappingProxyType(dict(data.get(t, {}))) for t in _TABLES}
        name = data.get("name", "custom")
        return cls(
            name=name,
            title=data.get("title", name),
            description=data.get("description", ""),
            legend=data.get("legend"),
            style=MappingProxyType({k: v for k, v in style.items() if k not in _FLAGS}),
            source=source,
            fold_preactivations=style["fold_preactivations"],
            symbols=frozen["symbols"],
            subscripts=frozen["subscripts"],
            parameters=frozen["parameters"],
            functions=frozen["functions"],
        )

    # -- letters ----------------------------------------------------------------------------------
    @property
    def superscript_time(self) -> bool:
        return self.style["time"] == "superscript"

    @property
    def row_vectors(self) -> bool:
        """True when a product reads ``x W`` (rows are examples; matrices are the transposes)."""
        product = self.style["product"]
        return product.index("<v>") < product.index("<M>")

    def letter(self, base: str) -> str:
        """One letter (or a Greek one's name, or a word: upright where the style is plain
        italic, so ``gate`` does not read as g·a·t·e) in the preset's style."""
        if base in GREEK:
            return _fill(self.style["greek"], x="\\" + base)
        if len(base) > 1 and self.style["letter"] == "<x>":
            base = rf"\mathrm{{{base}}}"
        return _fill(self.style["letter"], x=base)

    def head(self, name: str) -> tuple[str, str]:
        """(typeset name, typeset subscript) of a vector: ``i`` -> (``\\mathbf{i}``, ``""``),
        ``i_pre`` -> (``\\mathbf{i}``, ``\\mathrm{pre}``)."""
        if name in self.symbols:
            return self.symbols[name], ""
        base, _, sub = name.partition("_")
        if base in self.symbols:
            return self.symbols[base], self.parts(sub)
        return self.letter(base), self.parts(sub)

    def with_time(self, head: str, sub: str, time: str) -> str:
        """Attach a subscript and a time index: ``\\mathbf{c}_{t-1}`` or ``\\mathbf{c}^{t-1}``."""
        if self.superscript_time:
            out = head + (f"_{{{sub}}}" if sub else "")
            return out + (f"^{{{time}}}" if len(time) > 1 else f"^{time}")
        index = f"{sub},{time}" if sub else time
        return f"{head}_{{{index}}}" if len(index) > 1 else f"{head}_{index}"

    def vector(self, name: str, time: str, preact: bool = False) -> str:
        """A vector at a time: ``c``, ``t-1`` -> ``\\mathbf{c}_{t-1}``."""
        head, sub = self.head(name)
        if preact:
            head = _fill(self.style["preact"], x=head)
        return self.with_time(head, sub, time)

    def parameter(self, name: str) -> str:
        """A weight matrix or parameter vector: ``W_g`` -> ``\\mathbf{W}_{g}`` (or ``W_{ig}``...);
        a block of a concatenated matrix by the ``block`` template: ``R_f`` -> ``W_{f,h}``."""
        if name in self.blocks:
            return self.block(*self.blocks[name])
        if name in self.parameters:
            return self.parameters[name]
        base, _, sub = name.partition("_")
        if sub and base in self.parameters:
            template, k = self.parameters[base], self.subscript(sub)
            glued = template.partition("<k>")[0][-1:].isalpha()  # W_{i<k>}: W_{if}
            if glued and ("," in k or "\\" in k):  # a word or several parts: W_{i,\mathrm{gate}}
                k = "," + k
            return _fill(template, k=k)
        return self.letter(base) + (f"_{{{self.subscript(sub)}}}" if sub else "")

    def size(self, name: str) -> str:
        """A size name as a number in a formula (``mean``'s divisor): ``H``, ``\\mathrm{units}``,
        ``d_{\\mathrm{model}}``; never in the letter style of vectors."""
        base, _, sub = name.partition("_")
        head = rf"\mathrm{{{base}}}" if len(base) > 1 else base
        return head + (f"_{{{self.parts(sub)}}}" if sub else "")

    def subscript(self, name: str) -> str:
        """How a spec name, or the part of a parameter's name after its first underscore,
        appears in a subscript: the preset's ``[subscripts]`` entry (``g`` -> ``C`` in
        ``colah``), else ``parts``."""
        return self.subscripts[name] if name in self.subscripts else self.parts(name)

    def parts(self, name: str) -> str:
        """A name's parts between underscores as one subscript, joined by commas, so a subscript
        never holds an underscore (``x_gate`` -> ``x,\\mathrm{gate}``): a word of three letters
        or more upright (``pre`` -> ``\\mathrm{pre}``, a Greek letter's name as the letter);
        shorter parts are indices, as the literature writes them (``R_{fi}``, ``\\gamma_{xi}``)."""
        out = []
        for part in filter(None, name.split("_")):
            if len(part) >= 3:
                part = "\\" + part if part in GREEK else rf"\mathrm{{{part}}}"
            out.append(part)
        return ",".join(out)

    def output_grad(self, time: str) -> str:
        return self.with_time(self.style["output_grad"], "", time)

    def delta(self, inner: str) -> str:
        return _fill(self.style["delta"], x=inner)

    # -- operators --------------------------------------------------------------------------------
    @property
    def hadamard(self) -> str:
        return self.style["hadamard"]

    @property
    def sum(self) -> str:
        return self.style["sum"]

    def transpose(self, text: str, timed: bool = False) -> str:
        """``text`` transposed; a time superscript is parenthesised first so exponents never stack."""
        if timed and self.superscript_time:
            text = rf"\left({text}\right)"
        return _fill(self.style["transpose"], x=text)

    def power(self, text: str, exponent: str, timed: bool) -> str:
        if timed and self.superscript_time:
            text = rf"\left({text}\right)"
        return f"{text}^{{{exponent}}}"

    def product(self, matrix: str, vector: str, transposed: bool = False) -> str:
        """``M v`` (or ``Mᵀ v``) in the preset's order; ``matrix`` is an already typeset name."""
        if transposed:
            matrix = self.transpose(matrix)
        return _fill(self.style["product"], M=matrix, v=vector)

    # -- concatenated weights (``[style] concat``) ---------------------------------------------
    @property
    def concatenates(self) -> bool:
        """True when paired products are written as one matrix times a concatenation."""
        return self.style["concat"] != ""

    @property
    def recurrent_first(self) -> bool:
        """True when the concatenation puts the previous output first, ``[h_{t-1}, x_t]``."""
        concat = self.style["concat"]
        return concat.index("<h>") < concat.index("<x>")

    def concatenation(self, recurrent: str, input: str) -> str:
        """Two typeset vectors (or blocks) concatenated: ``[h_{t-1}, x_t]``."""
        return _fill(self.style["concat"], h=recurrent, x=input)

    def block(self, member: str, part: str) -> str:
        """The block of ``member``'s weights that multiplies ``part`` (a spec name): ``W_{f,h}``."""
        return _fill(self.style["block"], k=self.subscript(member), part=self.subscript(part))

    def concatenated(self, member: str) -> str:
        """The matrix acting on a concatenation, named after the value it computes: ``W_{f}``."""
        return _fill(self.style["concatenated"], k=self.subscript(member))

    def outer(self, delta: str, vector: str, timed: bool = True) -> str:
        return _fill(self.style["outer"], d=delta, vT=self.transpose(vector, timed), v=vector)

    def function(self, spec_name: str) -> str:
        """The preset's rendering of a function, else the primitive's own default."""
        if spec_name in self.functions:
            return self.functions[spec_name]
        if spec_name in PRIMITIVES:
            return PRIMITIVES[spec_name].latex
        raise NotationError(f"notation {self.name!r} has no rendering for the function {spec_name!r}")

    def function_call(self, spec_name: str, arguments: list[str], power: str | None = None) -> str:
        """A function applied to typeset arguments: a template's placeholders filled in, or the
        name followed by the arguments in parentheses; raised to ``power`` if given
        (``\\tanh^{2}\\left(z\\right)``, a template in parentheses first)."""
        rendering = self.function(spec_name)
        names = _ARGUMENTS[len(arguments)]
        if any(f"<{n}>" in rendering for n in names):
            text = _fill(rendering, **dict(zip(names, arguments)))
            return text if power is None else rf"\left({text}\right)^{{{power}}}"
        head = rendering if power is None else f"{rendering}^{{{power}}}"
        return rf"{head}\left({', '.join(arguments)}\right)"

    # -- documents --------------------------------------------------------------------------------
    def legend_text(self) -> str:
        """The paragraph explaining the symbols in a document (LaTeX text mode), with the
        sentences on the cell's concatenated matrices and folded pre-activations, if any."""
        return " ".join(text for text in (self._notation_legend(), self.blocks_legend, self.folds_legend) if text)

    def _notation_legend(self) -> str:
        if self.legend is not None:
            return self.legend
        a = self.letter("a")
        return (
            f"Symbols follow the notation {self.name!r}. ${self.hadamard}$ and powers are "
            f"elementwise; ${_fill(self.style['preact'], x=a)}$ is a pre-activation; "
            f"${self.delta(a)} = \\partial L/\\partial {a}$; ${self.output_grad('t')}$ is the "
            "gradient of the loss with respect to the output at step $t$ arriving from above. "
            "Gradients sum over the batch as well as over time."
        )

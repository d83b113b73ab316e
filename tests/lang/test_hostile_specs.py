"""Hostile and malformed specs: nothing in a spec is ever run, and every bad spec ends in a
SpecError whose message names the place and the problem.

Each attack below would create a marker file if any stage evaluated spec text; the tests check
that the marker never appears, that ``eval``/``exec``/``compile`` never see spec text, and that
free text (title, comments) cannot escape the docstring of the generated module or the LaTeX.
"""

import ast
import builtins
import importlib.util
import json
import sys
from pathlib import Path

import pytest

import symlstm
from symlstm.backends import generated_files
from symlstm.backends.latex.document import latex_document
from symlstm.backends.numba import cache as build
from symlstm.backends.numba.emit import emit_module
from symlstm.ir.derive import derive
from symlstm.lang.spec import MAX_SPEC_BYTES, parse_spec

HEAD = 'name = "t"\nstate = ["h"]\n[equations]\n'


def spec_with(*equations: str, head: str = HEAD) -> str:
    return head + "\n".join(equations) + "\n"


def toml_string(text: str) -> str:
    """``text`` as a TOML literal string (no escapes are processed inside ''' ... ''')."""
    assert "'''" not in text
    return "'''" + text + "'''"


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    return tmp_path / "MARKER"


@pytest.fixture
def no_evaluation(monkeypatch):
    """Fail the test if anything evaluates text: eval/exec of a string, or compile() of anything
    but an AST-only parse (importing real .py files stays allowed)."""
    seen = []
    real_eval, real_exec, real_compile = builtins.eval, builtins.exec, builtins.compile

    def guard_eval(source, *args, **kwargs):
        if isinstance(source, (str, bytes)):
            seen.append(("eval", source))
            raise AssertionError(f"eval of {source!r}")
        return real_eval(source, *args, **kwargs)

    def guard_exec(source, *args, **kwargs):
        if isinstance(source, (str, bytes)):
            seen.append(("exec", source))
            raise AssertionError(f"exec of {source!r}")
        return real_exec(source, *args, **kwargs)

    def guard_compile(source, filename, mode, flags=0, *args, **kwargs):
        if not flags & ast.PyCF_ONLY_AST and not str(filename).endswith(".py"):
            seen.append(("compile", source))
            raise AssertionError(f"compile of {source!r}")
        return real_compile(source, filename, mode, flags, *args, **kwargs)

    monkeypatch.setattr(builtins, "eval", guard_eval)
    monkeypatch.setattr(builtins, "exec", guard_exec)
    monkeypatch.setattr(builtins, "compile", guard_compile)
    yield seen
    assert seen == []


def attacks(m: Path) -> list[tuple[str, str]]:
    """(expression, what the message must mention): each would create ``m`` if evaluated."""
    return [
        (f"__import__('pathlib').Path('{m}').touch()", "only the functions abs, cos, elu, exp, "),
        (f"__import__('os').system('touch {m}')", "only the functions abs, cos, elu, exp, "),
        ("__import__('os')", "unknown function '__import__'; allowed functions: abs, cos, elu, exp, "),
        (f"open('{m}', 'w')", "unknown function 'open'"),
        (f"exec(\"open('{m}', 'w')\")", "unknown function 'exec'"),
        (f"eval(\"open('{m}', 'w')\")", "unknown function 'eval'"),
        (f"getattr(__builtins__, 'open')('{m}', 'w')", "only the functions"),
        ("getattr(__builtins__, 'open')", "unknown function 'getattr'"),
        (f"(lambda: open('{m}', 'w'))()", "only the functions"),
        (f"[open('{m}', 'w') for _ in (1,)]", "ListComp"),
        (f"{{open('{m}', 'w') for _ in (1,)}}", "SetComp"),
        (f"(open('{m}', 'w') for _ in (1,))", "GeneratorExp"),
        (f'f\'{{open("{m}", "w")}}\'', "JoinedStr"),
        ("().__class__.__bases__[0].__subclasses__()", "only the functions"),
        ("h_prev.__class__", "Attribute"),
        ("tanh.__globals__", "Attribute"),
        (f"sigmoid(W @ x).__class__.__init__.__globals__['open']('{m}', 'w')", "only the functions"),
        ("sigmoid(W @ x).__class__.__init__.__globals__['open']", "Subscript"),
        (f"(y := open('{m}', 'w'))", "NamedExpr"),
        (f"W @ x if open('{m}', 'w') else 0", "IfExp"),
        (f"W @ x and open('{m}', 'w')", "BoolOp"),
        (f"tanh(*[open('{m}', 'w')])", "exactly one positional argument"),
        (f"tanh(z=open('{m}', 'w'))", "exactly one positional argument"),
        ("__builtins__", "'__builtins__' is not a valid name"),
        ("__import__", "'__import__' is not a valid name"),
        ("W @ x + _secret", "'_secret' is not a valid name"),
        ("W @ x; import os", "syntax error"),
        (f"W @ x\nimport os; os.system('touch {m}')", "syntax error"),
        ("await W", "Await"),
        ("(yield W)", "Yield"),
        ("W @ x + 'text'", "not a real number"),
        ("W @ x + b'bytes'", "not a real number"),
        ("W @ x + 1j", "not a real number"),
        ("W @ x + True", "not a real number"),
        ("W @ x + ...", "not a real number"),
        ("W @ x + {}", "Dict"),
        ("W @ x + [1][0]", "Subscript"),
        ("W @ x + (h_prev < 1)", "Compare"),
        ("~h_prev + W @ x", "unary operator Invert"),
        ("W @ x + h_prev % 2", "operator Mod"),
        ("W @ x + h_prev // 2", "operator FloorDiv"),
        ("W @ x + h_prev << 2", "operator LShift"),
    ]


def test_hostile_equations_run_nothing(marker, no_evaluation):
    for expression, message in attacks(marker):
        with pytest.raises(symlstm.SpecError, match="equation h = ") as err:
            parse_spec(spec_with("h = " + toml_string(expression)))
        assert message in str(err.value), (expression, str(err.value))
    assert not marker.exists()


@pytest.mark.parametrize("where", ["key", "name", "state", "matrix"])
def test_hostile_names_are_rejected(where, marker, no_evaluation):
    code = f"__import__('os').system('touch {marker}')"
    text = {
        "key": HEAD + f'"{code}" = "W @ x"\nh = "W @ x"\n',
        "name": f'name = "{code}"\nstate = ["h"]\n[equations]\nh = "W @ x"\n',
        "state": f'name = "t"\nstate = ["{code}"]\n[equations]\nh = "W @ x"\n',
        "matrix": spec_with("h = " + toml_string(f"{code} @ x")),
    }[where]
    with pytest.raises(symlstm.SpecError, match="not a valid name|left operand of @|unknown function"):
        parse_spec(text)
    assert not marker.exists()


@pytest.mark.parametrize(
    "name",
    ["../evil", "a/b", "/abs", "..", "a.b", "a\\b", "x y", "é", "a-b", "_hidden", "a__b", "class", "", " a", "a\n"],
)
def test_cell_names_cannot_reach_outside_the_output_folder(name):
    text = f'name = {json.dumps(name)}\nstate = ["h"]\n[equations]\nh = "W @ x"\n'
    with pytest.raises(symlstm.SpecError, match="cell name .* is not a valid name"):
        parse_spec(text)


def test_long_cell_name_is_a_spec_error():
    with pytest.raises(symlstm.SpecError, match="at most 64"):
        parse_spec(f'name = "{"a" * 300}"\nstate = ["h"]\n[equations]\nh = "W @ x"\n')


def test_generated_files_stay_in_their_folder(tmp_path):
    spec = parse_spec(spec_with('h = "tanh(W @ x + R @ h_prev + b_h)"'))
    files = generated_files(spec)
    assert sorted(files) == ["latex/t.tex", "numba/t.py", "onnx/t.onnxtxt"]
    for name in files:
        assert (tmp_path / name).resolve().parent.parent == tmp_path.resolve()
    assert build._kernel_path(spec, tmp_path).parent.parent == tmp_path


INJECTIONS = [
    '""" + __import__("os").system("touch MARKER") + """',
    '\\""" ; open(\'MARKER\', \'w\') ; """\\',
    "'''; open('MARKER', 'w'); '''",
    "\\",
    'ends with a quote "',
    'ends with two quotes ""',
    "\\input{/etc/passwd} \\write18{touch MARKER} $x$ & % # _ ^ ~ { }",
]


@pytest.mark.parametrize("text", INJECTIONS)
def test_free_text_cannot_inject_into_generated_source(text, tmp_path, monkeypatch):
    """Title, references and equation comments are data in the generated module and LaTeX."""
    monkeypatch.chdir(tmp_path)  # a MARKER created by injected code would land here
    equation = "tanh(W @ x)  # " + text
    spec = parse_spec(
        f'name = "inj"\ntitle = {json.dumps(text)}\nreferences = [{json.dumps(text)}]\n'
        f'state = ["h"]\n[equations]\nh = {json.dumps(equation)}\n'
    )
    assert spec.title == text
    source = emit_module(derive(spec))
    tree = ast.parse(source)
    # The module is a docstring, imports, constant assignments and function definitions; nothing
    # else reaches the top level, whatever the spec's text says.
    assert isinstance(tree.body[0], ast.Expr) and isinstance(tree.body[0].value, ast.Constant)
    for node in tree.body[1:]:
        assert isinstance(node, (ast.Import, ast.ImportFrom, ast.Assign, ast.FunctionDef)), ast.dump(node)[:200]
    for node in tree.body:
        if isinstance(node, ast.Assign):
            assert isinstance(node.value, (ast.Constant, ast.Tuple)), ast.dump(node)[:200]
    doc = ast.get_docstring(tree, clean=False)
    assert text in doc and equation in doc
    path = tmp_path / "inj.py"
    path.write_text(source)
    module_spec = importlib.util.spec_from_file_location("symlstm_injection_test", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)  # runs the module's top level, as loading a cell does
    sys.modules.pop("symlstm_injection_test", None)
    assert module.SPEC_NAME == "inj"
    assert not (tmp_path / "MARKER").exists()
    tex = latex_document(derive(spec))
    assert "\\input{" not in tex and "\\write18" not in tex


@pytest.mark.parametrize(
    "title, message",
    [
        ("line one\\nline two", "control or non-printable character '\\\\n'"),
        ("nul \\u0000 byte", "'\\\\x00'"),
        ("bell \\u0007", "'\\\\x07'"),
        ("x" * 400, "at most 300"),
    ],
)
def test_title_must_be_one_line_of_text(title, message):
    with pytest.raises(symlstm.SpecError, match=message):
        parse_spec(f'name = "t"\ntitle = "{title}"\nstate = ["h"]\n[equations]\nh = "W @ x"\n')


def test_a_name_defined_twice_says_which():
    text = HEAD + 'g = "W @ x"\nh = "tanh(g)"\ng = "R @ h_prev"\n'
    with pytest.raises(symlstm.SpecError, match=r"line 6: equation 'g' is defined twice \(first at line 4\)"):
        parse_spec(text)
    with pytest.raises(symlstm.SpecError, match="the key 'name' is given twice"):
        parse_spec('name = "a"\nname = "b"\nstate = ["h"]\n[equations]\nh = "W @ x"\n')


@pytest.mark.parametrize(
    "equations, message",
    [
        (('h = "W @ x + nope"', 'nope = "1"'), "uses 'nope' before its equation"),
        (
            ('p = "q + W @ x"', 'q = "p"', 'h = "p"'),
            "before its equation; equations run in order and must not form a cycle",
        ),
        (('h = "h + W @ x"',), "defined in terms of itself; for last step's value write h_prev"),
        (('h = "x @ W"',), "write 'W @ x', not 'x @ W'"),
        (('h = "h_prev @ W + W @ x"',), "write 'W @ x', not 'x @ W'"),
        (('h = "W @ x + W"',), "'W' is used both as a matrix (left of @) and as a vector"),
        (('a = "W @ x + V"', 'h = "V @ a"'), "'V' is used both as a matrix"),
        (('a = "W @ x"', 'h = "a @ h_prev"'), "'a' is a vector"),
        (
            ('h = "M @ x + M @ h_prev"',),
            "multiplies x of size D here and a vector of size H elsewhere; use two matrices",
        ),
        (
            ('h = "tanh(W @ x + M @ b1)"',),
            "'M @ b1' multiplies the parameter vector 'b1', which is the same at every step",
        ),
        (
            ('h = "softmax(W @ x)"',),
            "unknown function 'softmax'; allowed functions: abs, cos, elu, exp, ",
        ),
        (('h = "tanh(W @ x"',), "syntax error at column"),
        (('h = """W @ x\n+ 1"""',), "syntax error at line 2"),
        (('h = "   "',), "the expression is empty"),
        (('h = "W @ x / (h_prev - h_prev)"',), "division by zero"),
        (('h = "W @ x + (h_prev - h_prev) ** -1"',), "divides by zero or is infinite"),
        (('h = "W @ x + 1e300 * 1e300"',), "larger than 1e+100"),
        (('h = "W @ x + 1e200 / 1e-200"',), "larger than 1e+100"),
        (('h = "W @ x + 1e999"',), "not finite"),
        (('h = "W @ x + 10 ** 400"',), "the exponent 400 is larger than 8"),
        (('h = "W @ x + 12345678901234567890"',), "the integer 12345678901234567890 is too large"),
        (('h = "W @ x + h_prev ** 9"',), "larger than 8"),
        (('h = "W @ x + h_prev ** 1e9"',), "at most 8"),
        (('h = "W @ x + h_prev ** b"',), "exponent must be a number"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_malformed_equations_name_the_equation_and_the_problem(equations, message):
    with pytest.raises(symlstm.SpecError, match="equation") as err:
        parse_spec(spec_with(*equations))
    assert message in str(err.value), str(err.value)


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "empty"),
        ("   \n\n", "empty"),
        ("name = 'a'\n", "missing required key 'state'"),
        ('name = "a"\nstate = []\n[equations]\nh = "W @ x"\n', "state must be a non-empty list"),
        ('name = "a"\nstate = "h"\n[equations]\nh = "W @ x"\n', "state must be a non-empty list"),
        ('name = "a"\nstate = ["h", "h"]\n[equations]\nh = "W @ x"\n', "lists a name twice"),
        ('name = "a"\nstate = ["h"]\n[equations]\n', "must be a table"),
        ('name = "a"\nstate = ["h"]\nequations = ["h = W @ x"]\n', "must be a table"),
        ('name = "a"\nstate = ["h", "c"]\n[equations]\nh = "W @ x"\n', "state 'c' has no equation"),
        ('name = "a"\nstate = ["h"]\n[equations]\nh = "h_prev"\n', "no equation uses the input x"),
        ('name = "a"\nstate = ["h"]\nrun = "rm -rf /"\n[equations]\nh = "W @ x"\n', "unknown keys ['run']"),
        ('name = "a"\nstate = ["h"]\n[equations]\nh = 3\n', "must be a string"),
        ('name = "a"\nstate = ["h"]\n[equations.h]\nx = "1"\n', "must be a string"),
        ('name = "a"\nreferences = "one"\nstate = ["h"]\n[equations]\nh = "W @ x"\n', "references must be a list"),
        ('name = "a"\nstate = ["h"]\n[equations]\nh = "W @ x"\n[equations]\n', "not valid TOML"),
        ('name = "a"\nstate = ["h"]\n[equations\nh = "W @ x"\n', "not valid TOML"),
        ("a = " + "[" * 5000 + "]" * 5000 + "\n", "not valid TOML"),
        (
            'name = "a"\nstate = ["h"]\n[equations]\n' + "".join(f'e{k} = "W @ x"\n' for k in range(201)),
            "more than 200 equations",
        ),
        # the sizes and inputs tables
        ('name = "a"\nstate = ["h"]\nsizes = "P"\n[equations]\nh = "W @ x"\n', "[sizes] must be a table"),
        ('name = "a"\nstate = ["h"]\n[sizes]\nh = ["P"]\n[equations]\nh = "W @ x"\n', "a size is a size name"),
        ('name = "a"\nstate = ["h"]\n[sizes.h]\nP = 1\n[equations]\nh = "W @ x"\n', "a size is a size name"),
        ('name = "a"\nstate = ["h"]\n[sizes]\nh = 10000000000\n[equations]\nh = "W @ x"\n', "between 1 and"),
        ('name = "a"\nstate = ["h"]\n[sizes]\nh = "__class__"\n[equations]\nh = "W @ x"\n', "not a valid name"),
        ('name = "a"\nstate = ["h"]\n[inputs]\nx = 1\n[equations]\nh = "W @ x"\n', "'x' is the input"),
        ('name = "a"\nstate = ["h"]\n[inputs]\nexp = 1\n[equations]\nh = "W @ x"\n', "is a function name"),
        ('name = "a"\nstate = ["h"]\n[inputs]\nh_prev = 1\n[equations]\nh = "W @ x"\n', "is a state or has"),
    ],
)
def test_malformed_files(text, message):
    with pytest.raises(symlstm.SpecError) as err:
        parse_spec(text)
    assert message in str(err.value), str(err.value)


def test_non_utf8_and_oversized_files(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_bytes(b'name = "t"\nstate = ["h"]\n[equations]\nh = "W @ x" # \xff\xfe\n')
    with pytest.raises(symlstm.SpecError, match=r"not UTF-8 text \(byte \d+\)"):
        parse_spec(bad)
    with pytest.raises(symlstm.SpecError, match="not UTF-8"):
        parse_spec(b"\x80\x81")
    big = tmp_path / "big.toml"
    big.write_bytes(b"#" * (MAX_SPEC_BYTES + 10))
    with pytest.raises(symlstm.SpecError, match="larger than"):
        parse_spec(big)
    with pytest.raises(symlstm.SpecError, match="cannot read spec file"):
        parse_spec(tmp_path / "missing.toml")


@pytest.mark.parametrize(
    "build_text, message",
    [
        (lambda: "(" * 300 + "W @ x" + ")" * 300, "syntax error|too deeply nested"),
        (lambda: "tanh(" * 60 + "W @ x" + ")" * 60, "nested deeper than 40"),
        (lambda: "W @ x + " + "-" * 100 + "h_prev", "nested deeper than 40"),
        (lambda: "W @ x + " + " + ".join(f"a{k}" for k in range(500)), "longer than 2000 characters"),
        (lambda: "W @ x + " + "*".join(f"a{k}" for k in range(40)), "a product of 40 factors; at most 32"),
        (
            lambda: (
                "W @ x + ("
                + "*".join(f"a{k}" for k in range(20))
                + ")**2 * ("
                + "*".join(f"b{k}" for k in range(20))
                + ")"
            ),
            "at most 32",
        ),
    ],
    ids=["parens", "calls", "unary", "chars", "product", "power of a product"],
)
def test_pathological_expressions_are_spec_errors(build_text, message):
    with pytest.raises(symlstm.SpecError, match=message):
        parse_spec(spec_with("h = " + toml_string(build_text())))


def test_long_sums_are_fine_but_the_spec_has_a_size_limit():
    terms = " + ".join(f"a{k}" for k in range(200))  # one level of nesting, not 200
    spec = parse_spec(spec_with("h = " + toml_string("tanh(W @ x + " + terms + ")")))
    assert len(spec.vectors) == 200
    many = [f'e{k} = "tanh(M{k} @ x + R{k} @ h_prev + b{k} * c{k})"' for k in range(150)]
    with pytest.raises(symlstm.SpecError, match="a spec may have at most 2000"):
        parse_spec(spec_with(*many, 'h = "e0"'))

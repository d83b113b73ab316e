"""The code samples of the README and of the documentation site run, so they cannot go stale.

Each document runs in order in a temporary working folder of its own (with ``examples/`` linked
into it), its Python samples in one namespace:

- ```` ```python ```` fences of README.md and ``.. code-block:: python`` blocks of the site's pages
  are executed; an exception fails the test at the document's line;
- ```` ```bash ````/```` ```sh ```` fences and ``.. code-block:: bash`` blocks: every line is a
  ``symlstm`` command, run through the command line's ``main`` in this process (``> FILE`` writes
  its output to FILE), and must exit 0;
- a ``.. code-block:: toml`` with a ``:caption:`` that is a file name, and a ``..
  literalinclude::`` with such a caption, create that file in the working folder: the tutorials'
  specs are files the reader saves.

A sample that cannot run here (it installs packages, trains for minutes, needs several machines)
is marked in the source right before it, visibly to anyone editing it: ``<!-- not run: REASON -->``
in Markdown, ``.. not run: REASON`` in reST. Fences without a language (command synopses with
placeholders such as ``NAME``) and other languages (toml, rst, text) are shown, not run.
"""

from __future__ import annotations

import contextlib
import io
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import ROOT
from symlstm.tools.cli import main as symlstm_main

SITE = ROOT / "docs" / "site"
DOCUMENTS = [ROOT / "README.md", *sorted(SITE.rglob("*.rst"))]
RUN = {"python": "python", "bash": "shell", "sh": "shell"}
#: samples importing these are skipped where they are not installed (CI installs them)
OPTIONAL = {"torch": "pip install torch==2.13.0", "onnxruntime": 'pip install ".[onnx]"'}
NOT_RUN = re.compile(r"^\s*(?:<!--\s*not run:\s*(?P<md>.+?)\s*-->|\.\. not run:\s*(?P<rst>.+?))\s*$")


@dataclass
class Sample:
    kind: str  # "python", "shell", "file" (write ``text`` to ``name``), "skip"
    line: int  # 1-based line of the sample's first code line in the document
    text: str
    name: str = ""


def _reason(lines: list[str], index: int) -> str | None:
    """The reason of a ``not run`` marker on the last non-blank line before ``index``."""
    k = index - 1
    while k >= 0 and not lines[k].strip():
        k -= 1
    match = NOT_RUN.match(lines[k]) if k >= 0 else None
    return (match.group("md") or match.group("rst")) if match else None


def markdown_samples(text: str) -> list[Sample]:
    lines, samples, k = text.splitlines(), [], 0
    while k < len(lines):
        fence = re.match(r"^```(\w*)\s*$", lines[k])
        if not fence:
            k += 1
            continue
        end = next(j for j in range(k + 1, len(lines)) if lines[j].startswith("```"))
        kind, body = RUN.get(fence.group(1)), "\n".join(lines[k + 1 : end]) + "\n"
        if kind:
            reason = _reason(lines, k)
            samples.append(Sample("skip", k + 2, reason) if reason else Sample(kind, k + 2, body))
        k = end + 1
    return samples


def _rst_block(lines: list[str], k: int) -> tuple[dict[str, str], int, list[str], int]:
    """The options and the body of the directive starting at line ``k``; returns (options, line of
    the body's first line, the body dedented, index after the block)."""
    options, j = {}, k + 1
    while j < len(lines) and (option := re.match(r"^\s+:([\w-]+):\s*(.*)$", lines[j])):
        options[option.group(1)] = option.group(2)
        j += 1
    end = j
    while end < len(lines) and (not lines[end].strip() or lines[end].startswith(" ")):
        end += 1
    body = lines[j:end]
    while body and not body[-1].strip():
        body.pop()
    first = next((i for i, line in enumerate(body) if line.strip()), 0)
    body = body[first:]
    indent = min((len(line) - len(line.lstrip()) for line in body if line.strip()), default=0)
    return options, j + first + 1, [line[indent:] for line in body], end


def rst_samples(text: str, folder: Path) -> list[Sample]:
    lines, samples, k = text.splitlines(), [], 0
    while k < len(lines):
        directive = re.match(r"^\s*\.\. (code-block|literalinclude)::\s*(\S+)\s*$", lines[k])
        if not directive:
            k += 1
            continue
        options, line, body, end = _rst_block(lines, k)
        what, argument = directive.groups()
        caption = options.get("caption", "")
        is_file = re.fullmatch(r"[\w.-]+\.\w+", caption) is not None
        reason = _reason(lines, k)
        if reason:
            samples.append(Sample("skip", line, reason))
        elif what == "literalinclude" and is_file:
            samples.append(Sample("file", line, (folder / argument).read_text(), caption))
        elif what == "code-block" and argument == "toml" and is_file:
            samples.append(Sample("file", line, "\n".join(body) + "\n", caption))
        elif what == "code-block" and argument in RUN:
            samples.append(Sample(RUN[argument], line, "\n".join(body) + "\n"))
        k = end
    return samples


def samples_of(path: Path) -> list[Sample]:
    text = path.read_text()
    return markdown_samples(text) if path.suffix == ".md" else rst_samples(text, path.parent)


def run_shell(sample: Sample, where: str) -> None:
    for number, line in enumerate(sample.text.replace("\\\n", " ").splitlines()):
        words = shlex.split(line, comments=True)
        if not words:
            continue
        location = f"{where}:{sample.line + number}"
        assert words[0] == "symlstm", f"{location}: only symlstm commands run here; mark the sample 'not run: ...'"
        output = None
        if ">" in words:
            words, output = words[: words.index(">")], words[words.index(">") + 1]
        captured = io.StringIO()
        with contextlib.redirect_stdout(captured):
            code = symlstm_main(words[1:])
        assert code == 0, f"{location}: `{line.strip()}` exited with {code}:\n{captured.getvalue()[-2000:]}"
        if output:
            Path(output).write_text(captured.getvalue())


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    monkeypatch.chdir(tmp_path)
    try:
        import torch
    except ImportError:
        torch = None
    threads = torch.get_num_threads() if torch else 0
    yield tmp_path
    if torch:  # a sample may set torch's thread count; the rest of the session keeps its own
        torch.set_num_threads(threads)


def test_every_document_has_samples_found():
    """The extraction sees the samples (a change of markup would otherwise silently run nothing)."""
    counts = {path.name: len(samples_of(path)) for path in DOCUMENTS}
    assert counts["README.md"] >= 10 and counts["tutorial-cell.rst"] >= 8, counts


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_samples_run(path, workdir):
    where = str(path.relative_to(ROOT))
    namespace: dict = {"__name__": f"sample:{where}"}
    skipped = []
    for sample in samples_of(path):
        if sample.kind == "file":
            (workdir / sample.name).write_text(sample.text)
        elif sample.kind == "skip":
            skipped.append(f"line {sample.line}: {sample.text}")
        elif sample.kind == "shell":
            run_shell(sample, where)
        else:
            for module in OPTIONAL:
                if re.search(rf"^\s*(import|from) {module}\b", sample.text, re.M):
                    pytest.importorskip(module, reason=f"{module} is not installed ({OPTIONAL[module]})")
            code = compile("\n" * (sample.line - 1) + sample.text, str(path), "exec")
            exec(code, namespace)  # noqa: S102 - the documentation's own samples
    for line in skipped:
        print(f"{where}: not run, {line}")


def test_not_run_markers_are_few():
    """The samples marked as not run: keep the list short (each needs a reason in the source)."""
    skipped = [(path.name, s.line, s.text) for path in DOCUMENTS for s in samples_of(path) if s.kind == "skip"]
    assert len(skipped) <= 8, skipped
    assert all(len(reason) > 10 for _, _, reason in skipped), skipped


@pytest.mark.parametrize("module", ["symlstm", "symlstm.torch"])
def test_module_docstring_examples(module):
    """The ``>>>`` examples of the package docstrings (shown on the site's API pages) run and
    print what they say."""
    import doctest
    import importlib

    if module == "symlstm.torch":
        pytest.importorskip("torch", reason=OPTIONAL["torch"])
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0

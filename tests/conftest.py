import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session", autouse=True)
def kernel_cache(tmp_path_factory):
    """Kernels go to a fresh cache for the session, so the tests exercise generation too; so do
    torch.compile's graphs (one cached by an earlier session may call an op by an older schema)."""
    if "SYMLSTM_TEST_KEEP_CACHE" not in os.environ:
        os.environ["SYMLSTM_CACHE_DIR"] = str(tmp_path_factory.mktemp("symlstm-cache"))
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(tmp_path_factory.mktemp("inductor-cache"))
    return Path(os.environ.get("SYMLSTM_CACHE_DIR", ""))


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def require_pdflatex():
    if shutil.which("pdflatex") is None:
        pytest.skip("pdflatex is not installed (apt-get install texlive-latex-base texlive-latex-recommended)")


def pdflatex(tex: Path) -> Path:
    """Compile ``tex`` in its folder (skipping the test when pdflatex is missing); fails the test
    with the end of the log if LaTeX does. Returns the PDF's path."""
    require_pdflatex()
    run = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", tex.name],
        cwd=tex.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout[-2000:]
    return tex.with_suffix(".pdf")

"""Torch is optional: symlstm imports without it, and the interop says how to install it."""

import subprocess
import sys

WITHOUT_TORCH = """
import sys
sys.modules["torch"] = None  # any `import torch` now fails, as on a machine without it
import symlstm
cell = symlstm.cell("lstm")
try:
    symlstm.from_torch(object())
except ImportError as err:
    print(err)
try:
    import symlstm.torch
except ImportError as err:
    print(err)
"""

WITH_TORCH = """
import sys
import symlstm
symlstm.cell("lstm")
assert "torch" not in sys.modules, "import symlstm imported torch"
import symlstm.torch
assert "torch" in sys.modules
"""


def test_import_and_interop_message_without_torch():
    run = subprocess.run([sys.executable, "-c", WITHOUT_TORCH], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "pip install 'symlstm[torch]'" in run.stdout
    assert "symlstm.torch needs PyTorch: pip install 'symlstm[torch]'" in run.stdout


def test_import_symlstm_never_imports_torch():
    run = subprocess.run([sys.executable, "-c", WITH_TORCH], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr

"""examples/train_torch.py --quick: trains MUT1 from its spec file in a plain PyTorch loop, writes the
loss curve, and its model predicts the held-out text far better than the characters' frequencies."""

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "train_torch.py"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_quick_run_learns_and_writes_the_loss_curve(tmp_path):
    # Its own process, as a user runs it (the script sets torch's threads); SYMLSTM_CACHE_DIR, set by
    # conftest in os.environ, carries over, so it shares the session's kernels.
    run = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert (tmp_path / "loss.png").read_bytes().startswith(PNG_SIGNATURE)
    results = json.loads((tmp_path / "results.json").read_text())
    final, base = results["epochs"][-1]["val_bits"], results["baselines"]
    assert results["cell"] == "mut1" and len(results["epochs"]) == 3
    # Knowing only the characters' frequencies scores the unigram figure (~4.9 bits), a uniform
    # guess log2(99) = 6.6: a bit below the unigram needs the context, and below the bigram more
    # than the previous character.
    assert final < base["unigram"] - 1.0, (final, base)
    assert final < base["bigram"], (final, base)
    assert f"{final:.3f} bits/char" in run.stdout and "| epoch |" in run.stdout

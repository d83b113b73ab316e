"""Train a cell from a spec file with a plain PyTorch loop: a character-level model of Python's docstrings.

    python examples/train_torch.py                  # MUT1 (examples/mut1.toml), H = 128
    python examples/train_torch.py --quick          # a smaller model for a few epochs, seconds
    python examples/train_torch.py --cell gru --out runs/gru

The task is character-level language modelling, a standard recurrent benchmark (Penn Treebank and
text8 at the character level; Jozefowicz, Zaremba & Sutskever 2015, who found MUT1, scored their
cells on language modelling too). Its text must be at hand offline and the same everywhere, so it
is the docstrings of a fixed list of standard-library modules, as ``pydoc`` gives them: about
240,000 characters of English prose and code examples that ship with Python. (The adding problem
is the NumPy demo's, ``symlstm demo adding``; here every step has a target, so the backward runs
through every output, not just the last.) Every tenth docstring is held out for validation.

The model: an embedding of size H (MUT1 adds tanh(x) to its candidate, so it needs D == H), the
cell's ``symlstm.torch.Recurrent``, and a linear readout to the characters; cross-entropy at every
step of 64-character windows, ``DataLoader`` batches, ``Adam`` and ``clip_grad_norm_``. The metric
is bits per character on the validation text, against two baselines that use no learning of
sequences: the characters' frequencies (unigram, the trivial baseline) and the frequencies given
the previous character (bigram). It prints a row of figures per epoch and a sample of generated
text, and writes ``loss.png`` (the curves) and ``results.json`` (the figures) to ``--out``.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import math
import pydoc
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

import symlstm.torch as st

HERE = Path(__file__).resolve().parent
#: the modules whose docstrings (the module's, its public classes', functions' and methods') make the text
MODULES = tuple(
    "argparse collections contextlib csv dataclasses datetime difflib email functools heapq inspect itertools json "
    "logging os pathlib pickle random re shutil statistics string subprocess tarfile textwrap threading typing "
    "unittest urllib.parse zipfile".split()
)
BITS = 1 / math.log(2)  # nats to bits


# -- the data ------------------------------------------------------------------------------------


def docstrings(modules=MODULES) -> list[str]:
    """The docstrings of ``modules`` and of their public classes, functions and methods, in order."""
    parts = []
    for name in modules:
        module = importlib.import_module(name)
        parts.append(pydoc.getdoc(module))
        for attr, obj in sorted(vars(module).items()):
            # Only what the module defines: re-exports would repeat other modules' text.
            if attr.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
                continue
            if inspect.isclass(obj) or inspect.isfunction(obj):
                parts.append(pydoc.getdoc(obj))
            if inspect.isclass(obj):
                parts += [
                    pydoc.getdoc(f)
                    for m, f in sorted(vars(obj).items())
                    if not m.startswith("_") and inspect.isfunction(f)
                ]
    return [p for p in parts if p]


class Windows(Dataset):
    """Non-overlapping windows of ``length`` characters (as ids) and the same shifted by one: the
    targets, the next character at every step."""

    def __init__(self, ids: torch.Tensor, length: int):
        self.ids, self.length = ids, length

    def __len__(self) -> int:
        return (len(self.ids) - 1) // self.length

    def __getitem__(self, k: int):
        start = k * self.length
        return self.ids[start : start + self.length], self.ids[start + 1 : start + self.length + 1]


def baselines(train: torch.Tensor, loader: DataLoader, vocab: int) -> dict[str, float]:
    """Bits per character on ``loader``'s targets of the unigram and bigram frequencies of the
    training text (add-one smoothing, so an unseen character costs bits, not infinity)."""
    unigram = torch.bincount(train, minlength=vocab).double() + 1
    bigram = torch.bincount(train[:-1] * vocab + train[1:], minlength=vocab * vocab).double().view(vocab, vocab) + 1
    log_unigram, log_bigram = (unigram / unigram.sum()).log(), (bigram / bigram.sum(1, keepdim=True)).log()
    total, n = torch.zeros(2, dtype=torch.float64), 0
    for x, y in loader:
        total -= torch.stack([log_unigram[y].sum(), log_bigram[x, y].sum()])  # x is y's previous character
        n += y.numel()
    return {"unigram": float(total[0]) / n * BITS, "bigram": float(total[1]) / n * BITS}


# -- the model -----------------------------------------------------------------------------------


class CharModel(nn.Module):
    """Embedding, the recurrent cell, linear readout: logits of the next character at every step."""

    def __init__(self, cell, vocab: int, hidden: int):
        super().__init__()
        self.embed = nn.Embedding(vocab, hidden)
        self.rnn = st.Recurrent(cell, hidden, hidden, batch_first=True)
        self.readout = nn.Linear(self.rnn.output_size, vocab)

    def forward(self, x, state=None):
        output, state = self.rnn(self.embed(x), state)
        return self.readout(output), state


@torch.no_grad()
def evaluate(model: CharModel, loader: DataLoader) -> tuple[float, float]:
    """(bits per character, fraction of next characters predicted right) over ``loader``."""
    model.eval()
    nats, right, n = 0.0, 0, 0
    for x, y in loader:
        logits, _ = model(x)
        nats += float(nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="sum"))
        right += int((logits.argmax(-1) == y).sum())
        n += y.numel()
    model.train()
    return nats / n * BITS, right / n


@torch.no_grad()
def sample(model: CharModel, chars: str, prompt: str, n: int, temperature: float = 0.7, seed: int = 0) -> str:
    """``prompt`` and ``n`` characters drawn from the model one at a time, its state carried along."""
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    index = {c: i for i, c in enumerate(chars)}
    logits, state = model(torch.tensor([[index[c] for c in prompt]]))
    out = []
    for _ in range(n):
        probs = torch.softmax(logits[0, -1] / temperature, dim=-1)
        k = int(torch.multinomial(probs, 1, generator=generator))
        out.append(chars[k])
        logits, state = model(torch.tensor([[k]]), state)
    model.train()
    return prompt + "".join(out)


TABLE_HEAD = "| epoch | step | train bits/char | val bits/char | val accuracy | time |\n|---|---|---|---|---|---|"


def table_row(e: dict) -> str:
    """One epoch's figures as a row of a Markdown table, under ``TABLE_HEAD``."""
    bits = " | ".join(f"{e[k]:.3f}" for k in ("train_bits", "val_bits"))
    return f"| {e['epoch']} | {e['step']} | {bits} | {e['val_accuracy']:.1%} | {e['seconds']:.0f} s |"


# -- training ------------------------------------------------------------------------------------


def train(args) -> dict:
    """Train as ``args`` say; returns the figures (written to ``results.json`` by ``main``)."""
    torch.manual_seed(args.seed)
    docs = docstrings()
    # Every tenth docstring is held out: the validation text has the same mix of modules as the
    # training text (the last tenth would be a few modules of their own, zipfile's and unittest's).
    texts = ["\n\n".join(docs[k] for k in range(len(docs)) if (k % 10 == 9) == held_out) for held_out in (False, True)]
    chars = "".join(sorted(set("".join(texts))))
    index = {c: i for i, c in enumerate(chars)}
    train_ids, val_ids = (torch.tensor([index[c] for c in text]) for text in texts)
    train_set, val_set = Windows(train_ids, args.length), Windows(val_ids, args.length)
    loader = DataLoader(
        train_set, batch_size=args.batch, shuffle=True, generator=torch.Generator().manual_seed(args.seed)
    )
    val_loader = DataLoader(val_set, batch_size=256)
    base = baselines(train_ids, val_loader, len(chars))

    model = CharModel(args.cell, len(chars), args.hidden)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    sizes = f"{len(train_ids):,} + {len(val_ids):,} characters ({len(chars)} distinct)"
    print(
        f"{sizes} for training and validation, {len(train_set)} training windows of {args.length}; "
        f"cell {model.rnn.cell.name!r}, H = {args.hidden}, {sum(p.numel() for p in model.parameters()):,} parameters"
    )
    print(f"baselines on the validation text: unigram {base['unigram']:.3f} bits/char, bigram {base['bigram']:.3f}")
    print(TABLE_HEAD)
    steps, epochs = [], []
    start = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        for x, y in loader:
            logits, _ = model(x)
            loss = nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten())
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), args.clip)
            optimizer.step()
            steps.append(loss.item() * BITS)
        bits, accuracy = evaluate(model, val_loader)
        epochs.append(
            {
                "epoch": epoch,
                "step": len(steps),
                "train_bits": sum(steps[-len(loader) :]) / len(loader),
                "val_bits": bits,
                "val_accuracy": accuracy,
                "seconds": time.perf_counter() - start,
            }
        )
        print(table_row(epochs[-1]), flush=True)
    return {
        "cell": model.rnn.cell.name,
        "hidden": args.hidden,
        "baselines": base,
        "epochs": epochs,
        "train_bits": steps,
        "sample": sample(model, chars, "Return the ", 160, seed=args.seed),
    }


def plot(results: dict, path: Path) -> None:
    """The training loss at every step, the validation loss after every epoch and the baselines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2), layout="constrained")
    ax.plot(range(1, len(results["train_bits"]) + 1), results["train_bits"], lw=0.8, alpha=0.6, label="training batch")
    epochs = results["epochs"]
    ax.plot([e["step"] for e in epochs], [e["val_bits"] for e in epochs], "o-", label="validation, after each epoch")
    for (name, bits), style in zip(results["baselines"].items(), (":", "--")):
        ax.axhline(bits, color="grey", ls=style, label=f"{name} baseline ({bits:.2f})")
    ax.set(xlabel="training step (batch)", ylabel="cross-entropy (bits per character)", ylim=(0, None))
    ax.set_title(f"{results['cell']} (H = {results['hidden']}), character-level model of Python's docstrings")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--cell", default=str(HERE / "mut1.toml"), help="a built-in name or a spec path (default: MUT1)"
    )
    parser.add_argument("--epochs", type=int, help="passes over the training text (default 20, --quick 3)")
    parser.add_argument("--hidden", type=int, help="H, also the embedding's size (default 128, --quick 64)")
    parser.add_argument("--quick", action="store_true", help="a small model and few epochs: seconds")
    parser.add_argument("--out", default="train_torch", help="folder for loss.png and results.json")
    parser.add_argument("--length", type=int, default=64, help="characters per training window")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--clip", type=float, default=1.0, help="gradient-norm clipping")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--torch-threads", type=int, default=1, help="torch's own threads (default 1: the kernels have theirs)"
    )
    args = parser.parse_args(argv)
    args.epochs = args.epochs or (3 if args.quick else 20)
    args.hidden = args.hidden or (64 if args.quick else 128)
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    # The cell's kernels run on threads of their own; torch's OpenMP workers spin for a while after
    # each torch operation and take those cores: a step took 150 ms instead of 13 ms on 2 cores.
    torch.set_num_threads(args.torch_threads)
    results = train(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    plot(results, out / "loss.png")
    (out / "results.json").write_text(json.dumps(results, indent=1))
    final = results["epochs"][-1]["val_bits"]
    print(
        f"validation: {final:.3f} bits/char; unigram baseline {results['baselines']['unigram']:.3f}, "
        f"bigram {results['baselines']['bigram']:.3f}"
    )
    print(f"sample: {results['sample']!r}")
    print(f"wrote {out / 'loss.png'} and {out / 'results.json'}")
    return results


if __name__ == "__main__":
    main()

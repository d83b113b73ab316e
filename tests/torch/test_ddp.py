"""DistributedDataParallel: two processes on this machine (gloo), each with half of a batch, end up
with all-reduced gradients equal to the single-process gradients of the whole batch, and one
optimizer step leaves their parameters equal."""

import os
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.nn.parallel import DistributedDataParallel

import symlstm.torch as st

SPEC = Path(__file__).resolve().parents[2] / "examples" / "mut1.toml"  # a user cell, D == H
T, B, D, H = 6, 8, 5, 5
WORLD = 2
LR = 0.1


class Model(nn.Module):
    """Two layers of the cell and a linear readout of the last step: a regression on sequences."""

    def __init__(self):
        super().__init__()
        self.rnn = st.Recurrent(SPEC, D, H, num_layers=2, dtype=torch.float64)
        self.readout = nn.Linear(H, 1, dtype=torch.float64)

    def forward(self, x):
        output, _ = self.rnn(x)
        return self.readout(output[-1])


def loss_of(model, x, y):
    # The mean over the rows: DDP averages the ranks' gradients, so the mean over each of two equal
    # halves, averaged, is the mean over the whole batch.
    return (model(x) - y).square().mean()


def _worker(rank: int, init_method: str, setup: str, out: str) -> None:
    """One rank: its half of the batch through DDP, backward, one SGD step; saves what it has."""
    torch.set_num_threads(1)  # two workers on two cores
    dist.init_process_group("gloo", init_method=init_method, rank=rank, world_size=WORLD)
    try:
        data = torch.load(setup)
        model = Model()
        model.load_state_dict(data["state"])
        ddp = DistributedDataParallel(model)  # CPU: no device_ids
        rows = slice(rank * B // WORLD, (rank + 1) * B // WORLD)
        loss_of(ddp, data["x"][:, rows], data["y"][rows]).backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters()}
        torch.optim.SGD(model.parameters(), lr=LR).step()
        torch.save({"grads": grads, "params": {n: p.detach() for n, p in model.named_parameters()}}, out % rank)
    finally:
        dist.destroy_process_group()
    # Leave without finalizing the interpreter. PyTorch's gloo threads may drop the last all-reduce's
    # work, which holds the backward's contextvars.Context, while Python shuts down; the thread then
    # takes the GIL of a finalizing interpreter and the process aborts ("terminate called without an
    # active exception"; pytorch/pytorch#190489, about 1 run in 20 here). Everything is saved by now.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


@pytest.mark.skipif(
    not (dist.is_available() and dist.is_gloo_available()), reason="this torch build has no gloo backend"
)
def test_ddp_gradients_equal_the_single_process_gradients_of_the_whole_batch(tmp_path, monkeypatch):
    torch.manual_seed(0)
    model = Model()
    x = torch.randn(T, B, D, dtype=torch.float64)
    y = torch.randn(B, 1, dtype=torch.float64)
    torch.save({"state": model.state_dict(), "x": x, "y": y}, tmp_path / "setup.pt")
    # The reference first: it also compiles the kernels into the cache the workers then load from
    # (SYMLSTM_CACHE_DIR, set by conftest, is in os.environ, which spawned children inherit).
    loss_of(model, x, y).backward()
    expected = {n: p.grad for n, p in model.named_parameters()}
    with torch.no_grad():
        stepped = {n: p - LR * p.grad for n, p in model.named_parameters()}

    for name in ("OMP_NUM_THREADS", "SYMLSTM_NUM_THREADS"):  # one thread per worker: two workers, two cores
        monkeypatch.setenv(name, "1")
    init_method = (tmp_path / "rendezvous").as_uri()  # a file: no port to find free
    out = str(tmp_path / "rank%d.pt")
    mp.spawn(_worker, args=(init_method, str(tmp_path / "setup.pt"), out), nprocs=WORLD, join=True)

    ranks = [torch.load(out % r) for r in range(WORLD)]
    assert set(ranks[0]["grads"]) == set(expected)
    for name, grad in expected.items():
        for r, got in enumerate(ranks):
            where = f"{name}, rank {r}"
            torch.testing.assert_close(
                got["grads"][name], grad, rtol=0, atol=1e-10, msg=lambda m, where=where: f"{where}: {m}"
            )
            torch.testing.assert_close(got["params"][name], stepped[name], rtol=0, atol=1e-10)
        # The all-reduce gives both ranks the same bits, so their parameters stay in sync exactly.
        assert torch.equal(ranks[0]["params"][name], ranks[1]["params"][name]), name

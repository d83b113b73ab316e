"""Variable-length batches: ``PackedSequence`` in and out, and time reversal within each row's
length for the reverse direction, as ``torch.nn.LSTM`` does them.

The kernels take padded (T, B, features) sequences with per-row lengths (``Cell.forward(...,
lengths=)``): a row's states stop changing after its last step and its outputs there are zeros,
so nothing here pads or masks the computation itself; these functions only change layouts.
"""

from __future__ import annotations

import torch
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence


def unpack(sequence: PackedSequence):
    """``(padded, lengths)``: the (T, B, features) time-major padding of ``sequence`` in its
    original (unsorted) batch order, and the (B,) int64 lengths of its rows."""
    padded, lengths = pad_packed_sequence(sequence)
    return padded, lengths


def pack_like(padded, like: PackedSequence, lengths) -> PackedSequence:
    """The time-major ``padded`` output, in the original batch order, packed as ``like`` is: the
    same ``batch_sizes``, ``sorted_indices`` and ``unsorted_indices``, as nn.LSTM returns it."""
    order = like.sorted_indices
    if order is not None:
        padded, lengths = padded.index_select(1, order), lengths.index_select(0, order.to(lengths.device))
    data = pack_padded_sequence(padded, lengths, enforce_sorted=True).data
    return PackedSequence(data, like.batch_sizes, like.sorted_indices, like.unsorted_indices)


def reversal(lengths, T: int):
    """(T, B, 1) time indices that reverse each row's first ``lengths[b]`` steps and leave its
    padding in place; applying them twice gives the identity."""
    t = torch.arange(T).unsqueeze(1)
    return torch.where(t < lengths, lengths - 1 - t, t).unsqueeze(2)


def reverse(seq, index):
    """A (T, B, features) sequence in reverse time order: all of it (``index`` None) or each row
    within its length (``index`` from ``reversal``)."""
    if index is None:
        return seq.flip(0)
    return seq.gather(0, index.expand(-1, -1, seq.shape[2]))

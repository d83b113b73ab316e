"""The values the read-back test computes with: what a parsed tree of a typeset line evaluates
to with NumPy (``latex_reader`` parses the text; this module runs it). A matrix is a ``Mat``, a
transposed batch of vectors a ``RowT``, a batch of vectors an array (B, size); times are ``t``
offsets (``("t", k)``) or step numbers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from symlstm.lang.primitives import PRIMITIVES

NUMPY_FUNCTIONS = {name: p.numpy for name, p in PRIMITIVES.items()}


class ReadError(Exception):
    pass


class AfterTheEnd(ReadError):
    """A value of step T+1 that is not an adjoint: only a term an adjoint at T+1 zeroes may hold it."""


@dataclass(frozen=True)
class Mat:
    """A matrix as the notation names it (for row-vector notations, the transpose of symlstm's)."""

    a: np.ndarray


@dataclass(frozen=True)
class RowT:
    """A transposed batch of vectors, e.g. x_t^T in an outer product."""

    v: np.ndarray


def offset(when) -> int:
    return when[1] if isinstance(when, tuple) else when


def shift(when, by):
    return (when[0], when[1] + by) if isinstance(when, tuple) else when + by


def at(when, t):
    return t + when[1] if isinstance(when, tuple) else when


def evaluate(node, env, t, T):
    kind = node[0]
    if kind == "num":
        return node[1]
    if kind == "sym":
        key = node[1]
        if key[0] in ("M", "P", "size"):
            return env[key]
        tag, name, when = key
        if t is None and isinstance(when, tuple):
            raise ReadError(f"{name} at a relative time outside a sum over t")
        time = at(when, t)
        if (name, time) not in env:
            if time == T + 1 and tag == "d":
                return 0.0  # "quantities at T+1 are zero": the adjoints
            if time == T + 1:
                raise AfterTheEnd(f"{name} at T+1 in a term that does not vanish")
            raise ReadError(f"{name} at time {time} is used before it is computed")
        return env[(name, time)]
    if kind == "add":
        return sum_values([evaluate(n, env, t, T) for n in node[1]])
    if kind == "neg":
        return -evaluate(node[1], env, t, T)
    if kind in ("odot", "jux"):
        factors = both_factors(node, env, t, T)
        if factors is None:
            return 0.0
        a, b = factors
        if kind == "jux":
            return juxtapose(a, b)
        if isinstance(a, (Mat, RowT)) or isinstance(b, (Mat, RowT)):
            raise ReadError("\\odot of a matrix or a transposed vector")
        return a * b
    if kind == "T":
        v = evaluate(node[1], env, t, T)
        if isinstance(v, Mat):
            return Mat(v.a.T)
        if isinstance(v, RowT):
            return v.v
        return RowT(v)
    if kind == "concat":
        a, b = (evaluate(n, env, t, T) for n in node[1:3])
        if not (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)):
            raise ReadError("a concatenation of something other than two batches of vectors")
        return np.concatenate([a, b], axis=-1)
    if kind == "pow":
        return evaluate(node[1], env, t, T) ** node[2]
    if kind == "div":
        numerator = evaluate(node[1], env, t, T)
        return 0.0 if is_zero(numerator) else numerator / evaluate(node[2], env, t, T)
    if kind == "sqrt":
        return np.sqrt(evaluate(node[1], env, t, T))
    if kind == "abs":
        return np.abs(evaluate(node[1], env, t, T))
    if kind == "fn":
        return NUMPY_FUNCTIONS[node[1]](*(evaluate(a, env, t, T) for a in node[2]))
    if kind == "unit_sum":
        value = evaluate(node[1], env, t, T)
        if isinstance(value, (Mat, RowT)):
            raise ReadError("1^T of a matrix or a transposed vector")
        if np.ndim(value) == 0:
            if value != 0.0:
                raise ReadError("1^T of a number")
            return 0.0  # a vector at T+1
        return np.sum(value, axis=-1, keepdims=True)  # one number per batch row
    if kind == "indicator":
        values = [evaluate(n, env, t, T) for n in node[1]]
        ok = True
        for op, a, b in zip(node[2], values, values[1:]):
            ok = ok & {"<": np.less, ">": np.greater, "=": np.equal}[op](a, b)
        return np.asarray(ok, dtype=float)
    if kind == "sum":
        total = 0.0
        for step in range(1, T + 1):
            value = evaluate(node[1], env, step, T)
            if isinstance(value, Mat):
                value = value.a
            elif np.ndim(value) == 2:  # a batch of vectors: gradients sum over the batch too
                value = value.sum(axis=0)
            total = total + value
        return total
    raise ReadError(f"unknown node {kind}")


def is_zero(value) -> bool:
    return np.isscalar(value) and value == 0.0


def both_factors(node, env, t, T):
    """The two factors of a product, or None if one is zero (an adjoint at T+1): then the other
    may hold values of step T+1, which do not exist."""
    values = []
    for sub in node[1:3]:
        try:
            values.append(evaluate(sub, env, t, T))
        except AfterTheEnd as err:
            values.append(err)
    if any(is_zero(v) for v in values):
        return None
    for v in values:
        if isinstance(v, AfterTheEnd):
            raise v
    return values


def sum_values(values):
    values = [v for v in values if not (np.isscalar(v) and v == 0.0)] or [0.0]
    total = values[0]
    for v in values[1:]:
        if isinstance(total, Mat) and isinstance(v, Mat):
            total = Mat(total.a + v.a)
        else:
            total = total + v
    return total


def juxtapose(a, b):
    """Juxtaposition: a number times anything, a matrix times a vector (either order), an outer
    product of a batch of vectors with a transposed batch (summed over the batch)."""
    if (np.isscalar(a) and a == 0.0) or (np.isscalar(b) and b == 0.0):
        return 0.0  # a vector at T+1, which is zero (a printed coefficient is never 0)
    if np.isscalar(a):
        return Mat(a * b.a) if isinstance(b, Mat) else a * b
    if isinstance(a, Mat) and isinstance(b, np.ndarray):
        return b @ a.a.T  # M v for each row v
    if isinstance(a, np.ndarray) and isinstance(b, Mat):
        return a @ b.a  # v M for each row v
    if isinstance(a, np.ndarray) and isinstance(b, RowT):
        return Mat(a.T @ b.v)  # sum over the batch of d v^T
    if isinstance(a, RowT) and isinstance(b, np.ndarray):
        return Mat(a.v.T @ b)  # sum over the batch of v^T d
    raise ReadError(f"cannot multiply {type(a).__name__} by {type(b).__name__}")

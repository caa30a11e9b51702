"""The stacker's arithmetic: L2-regularised logistic regression and isotonic calibration.

Both are small enough to own (a few dozen lines of numpy) and to store as plain JSON
numbers, so no pickled model object is ever loaded.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # overflow-free logistic


@dataclass(frozen=True)
class LogisticModel:
    """p = sigmoid(bias + weights . (x - mean) / scale)."""
    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: float

    def decision(self, x: np.ndarray) -> np.ndarray:
        # a row-wise sum, not BLAS: gemv's result for a row can depend on the batch around it,
        # and a document's score must not depend on its bundle
        return self.bias + (((x - self.mean) / self.scale) * self.weights).sum(axis=1)

    def to_json(self) -> dict:
        return {"mean": self.mean.tolist(), "scale": self.scale.tolist(),
                "weights": self.weights.tolist(), "bias": self.bias}

    @classmethod
    def from_json(cls, data: dict) -> "LogisticModel":
        return cls(np.asarray(data["mean"], np.float64), np.asarray(data["scale"], np.float64),
                   np.asarray(data["weights"], np.float64), float(data["bias"]))


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1.0, iterations: int = 50) -> LogisticModel:
    """Newton-Raphson on standardised features; `l2` penalises the weights (not the bias)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale == 0] = 1.0
    z = np.c_[np.ones(len(x)), (x - mean) / scale]
    beta = np.zeros(z.shape[1])
    penalty = np.full(z.shape[1], l2)
    penalty[0] = 0.0
    for _ in range(iterations):
        p = sigmoid(z @ beta)
        gradient = z.T @ (p - y) + penalty * beta
        hessian = (z * (p * (1 - p))[:, None]).T @ z + np.diag(penalty) + 1e-9 * np.eye(len(beta))
        step = np.linalg.solve(hessian, gradient)
        beta -= step
        if np.abs(step).max() < 1e-8:
            break
    return LogisticModel(mean, scale, beta[1:], float(beta[0]))


@dataclass(frozen=True)
class IsotonicCalibrator:
    """Monotone map from a score to a probability, linear between fitted knots."""
    knots: np.ndarray
    values: np.ndarray

    def __call__(self, scores: np.ndarray) -> np.ndarray:
        return np.interp(scores, self.knots, self.values)

    def to_json(self) -> dict:
        return {"knots": self.knots.tolist(), "values": self.values.tolist()}

    @classmethod
    def from_json(cls, data: dict) -> "IsotonicCalibrator":
        return cls(np.asarray(data["knots"], np.float64), np.asarray(data["values"], np.float64))


def fit_isotonic(scores: np.ndarray, labels: np.ndarray, floor: float = 1e-4,
                 weights: np.ndarray | None = None) -> IsotonicCalibrator:
    """Pool-adjacent-violators on scores sorted ascending, with optional sample weights;
    probabilities kept inside [floor, 1 - floor] so that a calibrated 0 or 1 never claims
    certainty."""
    order = np.argsort(scores, kind="stable")
    xs, ys = np.asarray(scores, np.float64)[order], np.asarray(labels, np.float64)[order]
    ws = np.ones(len(xs)) if weights is None else np.asarray(weights, np.float64)[order]
    # equal scores become one point (their weighted mean label): knots must strictly increase
    xs, first = np.unique(xs, return_index=True)
    totals_at = np.add.reduceat(ws, first)
    ys = np.add.reduceat(ys * ws, first) / np.maximum(totals_at, 1e-300)
    ws = totals_at
    means: list[float] = []
    totals: list[float] = []
    lows: list[float] = []
    highs: list[float] = []
    for x, y, w in zip(xs.tolist(), ys.tolist(), ws.tolist()):
        means.append(y), totals.append(w), lows.append(x), highs.append(x)
        while len(means) > 1 and means[-2] >= means[-1]:
            total = totals[-2] + totals[-1]
            means[-2] = (means[-2] * totals[-2] + means[-1] * totals[-1]) / total
            totals[-2], highs[-2] = total, highs[-1]
            del means[-1], totals[-1], lows[-1], highs[-1]
    knots = np.array([(lo + hi) / 2 for lo, hi in zip(lows, highs)])
    values = np.clip(np.array(means), floor, 1 - floor)
    return IsotonicCalibrator(knots, values)

"""The RNN controller policy: an LSTM that emits a genotype's decisions one by one.

Zoph & Le 2017 (arXiv:1611.01578) and NASNet (Zoph et al. 2018) sample an
architecture autoregressively: at step ``t`` an LSTM reads the embedding of the
decision taken at step ``t-1`` and a softmax head picks decision ``t``;
MnasNet (Tan et al. 2019, arXiv:1807.11626, section 3, figure 4) does the same
over its factorized space (six decisions per block here, sizes from
``SearchSpace.decision_sizes``).

Each decision owns its embedding rows and its softmax head, stored as one
table / one linear layer whose rows are partitioned by decision.  Two paths
compute the same distribution:

* ``evaluate`` re-scores a batch of sequences (PPO's inner loop) with one
  ``nn.LSTM`` call and a batched gather of each step's head rows —
  differentiable, a few milliseconds for ten sequences;
* ``sample`` draws one sequence step by step in float64 NumPy (the input
  projection of every embedding row precomputed, the weights cached until a
  parameter changes): about a millisecond for 42 decisions, where 42
  ``nn.LSTM`` calls cost ten times more.  Its randomness is one
  ``torch.rand(T, generator=...)`` per sequence (inverse-CDF draws), so the
  caller's seeded ``torch.Generator`` fixes the sample.

The head starts at zero: the initial policy is exactly uniform (random
search).  Also here: lossless conversion of tensors (policy and optimizer
state) to plain data for ``state_dict()``.
"""

from __future__ import annotations

import base64
import math
from typing import Any

import numpy as np
import torch
from torch import nn


class DecisionPolicy(nn.Module):
    """Autoregressive categorical policy over ``len(sizes)`` decisions of ``sizes[t]`` options each."""

    def __init__(self, sizes: list[int], hidden: int, generator: torch.Generator) -> None:
        super().__init__()
        if not sizes or min(sizes) < 1:
            raise ValueError(f"decision sizes must be positive integers, got {sizes}")
        self.sizes = [int(s) for s in sizes]
        self.hidden = int(hidden)
        total = sum(self.sizes)
        offsets = [0]
        for size in self.sizes[:-1]:
            offsets.append(offsets[-1] + size)
        # Embedding row 0 is the start token; row 1 + offset[t] + v is "decision t took value v".
        self.embed = nn.Embedding(1 + total, self.hidden)
        self.lstm = nn.LSTM(self.hidden, self.hidden, batch_first=True)
        # Head rows offset[t] .. offset[t] + sizes[t] - 1 are decision t's logits.
        self.head = nn.Linear(self.hidden, total)
        width = max(self.sizes)
        rows = torch.tensor([[o + min(k, s - 1) for k in range(width)] for o, s in zip(offsets, self.sizes)])
        valid = torch.tensor([[k < s for k in range(width)] for s in self.sizes])
        self.register_buffer("offsets", torch.tensor(offsets), persistent=False)
        self.register_buffer("rows", rows, persistent=False)
        self.register_buffer("valid", valid, persistent=False)
        self._slices = [(o, o + s) for o, s in zip(offsets, self.sizes)]
        self._cache: tuple[int, tuple[np.ndarray, ...]] | None = None
        self.reset_parameters(generator)

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator) -> None:
        """PyTorch's default init (N(0,1) embeddings, U(+-1/sqrt(hidden)) LSTM), drawn from ``generator``.

        The head is zero, so the initial policy is uniform.  No global RNG is used.
        """
        self.embed.weight.normal_(0.0, 1.0, generator=generator)
        bound = self.hidden ** -0.5
        for param in self.lstm.parameters():
            param.uniform_(-bound, bound, generator=generator)
        self.head.weight.zero_()
        self.head.bias.zero_()

    # -- differentiable batch scoring -------------------------------------------
    def evaluate(self, decisions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-prob (B,) and entropy (B,) of a batch (B, T) of decision sequences, differentiable."""
        batch = decisions.shape[0]
        start = torch.zeros(batch, 1, dtype=torch.long)
        prev = 1 + self.offsets[:-1] + decisions[:, :-1]
        out, _ = self.lstm(self.embed(torch.cat([start, prev], dim=1)))          # (B, T, H)
        weight, bias = self.head.weight[self.rows], self.head.bias[self.rows]   # (T, K, H), (T, K)
        logits = torch.bmm(out.transpose(0, 1), weight.transpose(1, 2)).transpose(0, 1) + bias  # (B, T, K)
        # A finite fill (not -inf) keeps p*log(p) and its gradient at 0 for padding options.
        logprobs = torch.log_softmax(logits.masked_fill(~self.valid, -1e9), dim=-1)
        chosen = logprobs.gather(-1, decisions.unsqueeze(-1)).squeeze(-1)
        plogp = torch.where(self.valid, logprobs.exp() * logprobs, torch.zeros(()))
        return chosen.sum(dim=1), -plogp.sum(dim=(1, 2))

    # -- fast sampling ----------------------------------------------------------
    def _weights(self) -> tuple[np.ndarray, ...]:
        version = sum(p._version for p in self.parameters())
        if self._cache is None or self._cache[0] != version:
            with torch.no_grad():
                w_ih, w_hh, b_ih, b_hh = (p.double().numpy() for p in
                                          (self.lstm.weight_ih_l0, self.lstm.weight_hh_l0,
                                           self.lstm.bias_ih_l0, self.lstm.bias_hh_l0))
                inputs = self.embed.weight.double().numpy() @ w_ih.T + b_ih + b_hh  # (tokens, 4H)
                arrays = (inputs, w_hh.copy(), self.head.weight.double().numpy().copy(),
                          self.head.bias.double().numpy().copy())
            self._cache = (version, arrays)
        return self._cache[1]

    def sample(self, generator: torch.Generator, temperature: float = 1.0) -> tuple[list[int], float]:
        """Draw one decision sequence with ``generator``; returns (decisions, summed log-prob).

        ``temperature`` > 1 flattens every step's softmax (logits / temperature); the log-prob is that of
        the distribution actually sampled from.
        """
        inputs, w_hh, head_w, head_b = self._weights()
        hid = self.hidden
        uniforms = torch.rand(len(self.sizes), generator=generator, dtype=torch.float64).tolist()
        h = np.zeros(hid)
        c = np.zeros(hid)
        token = 0
        decisions: list[int] = []
        logp = 0.0
        for (lo, hi), u in zip(self._slices, uniforms):
            z = inputs[token] + w_hh @ h                      # gates i, f, g, o (PyTorch's order)
            gates = 1.0 / (1.0 + np.exp(-z))
            c = gates[hid:2 * hid] * c + gates[:hid] * np.tanh(z[2 * hid:3 * hid])
            h = gates[3 * hid:] * np.tanh(c)
            logits = ((head_w[lo:hi] @ h + head_b[lo:hi]) / temperature).tolist()
            top = max(logits)
            weights = [math.exp(v - top) for v in logits]
            norm = sum(weights)
            target, acc, value = u * norm, 0.0, len(weights) - 1
            for i, w in enumerate(weights):
                acc += w
                if target < acc:
                    value = i
                    break
            decisions.append(value)
            logp += logits[value] - top - math.log(norm)
            token = 1 + lo + value
        return decisions, logp


# -- tensors <-> plain data ------------------------------------------------------
_TENSOR = "__tensor__"


def to_plain(obj: Any) -> Any:
    """Nested dicts/lists with each tensor as ``{"__tensor__": dtype, "shape", "base64"}`` (exact bytes)."""
    if isinstance(obj, torch.Tensor):
        array = obj.detach().cpu().contiguous().numpy()
        return {_TENSOR: str(array.dtype), "shape": list(array.shape),
                "base64": base64.b64encode(array.tobytes()).decode("ascii")}
    if isinstance(obj, dict):
        return {k: to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_plain(v) for v in obj]
    return obj


def from_plain(obj: Any) -> Any:
    """Inverse of :func:`to_plain`."""
    if isinstance(obj, dict):
        if _TENSOR in obj:
            array = np.frombuffer(base64.b64decode(obj["base64"]), dtype=np.dtype(obj[_TENSOR]))
            return torch.from_numpy(array.reshape(obj["shape"]).copy())
        return {k: from_plain(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [from_plain(v) for v in obj]
    return obj


def optimizer_from_plain(obj: Any) -> dict:
    """An optimizer state dict from :func:`to_plain` data (JSON turns its integer keys into strings)."""
    state = from_plain(obj)
    state["state"] = {int(k): v for k, v in state["state"].items()}
    return state

"""Dynamic mixture of experts with noisy top-k gating (Shazeer et al. 2017,
"Outrageously Large Neural Networks: The Sparsely-Gated Mixture-of-Experts Layer").

The experts are computed densely: every expert runs on every row and the sparse gate
weights (zero outside the top k) combine them. Stacking the expert weights into E-leading
tensors makes the bank two batched matmuls with no Python loop and no data-dependent
shapes, which torch.export / ONNX / OpenVINO need. On a CPU it costs about what
dispatching rows to experts with per-expert index lists does, and far less than
gathering each row's k weight matrices (docs/benchmarks.md); either way the head is a
small fraction of the R(2+1)D-18 backbone per clip. Gradients still reach only the
selected experts, because an unselected expert's output is multiplied by an exact zero
gate.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["DynamicMoE", "MoEAux", "cv_squared"]


class MoEAux(NamedTuple):
    """What the router decided, next to the layer's output.

    gates: B x E dense weights, zero outside the top k, each row sums to 1.
    indices: B x k chosen experts (long), highest gate first.
    balance_loss: scalar, CV^2(importance) + CV^2(load).
    """

    gates: Tensor
    indices: Tensor
    balance_loss: Tensor


def cv_squared(x: Tensor, eps: float = 1e-10) -> Tensor:
    """Squared coefficient of variation of a 1-D tensor (population variance).

    It is 0 for a uniform vector and E - 1 when all mass sits on one of E entries.
    One entry has no spread, so it is 0 rather than the NaN an unbiased variance gives.
    """
    if x.numel() <= 1:
        return x.new_zeros(())
    x = x.float()
    return x.var(correction=0) / (x.mean() ** 2 + eps)


class ExpertBank(nn.Module):
    """E residual MLP experts, ``x + MLP_e(LayerNorm_e(x))``, with stacked weights.

    Parameters are E-leading tensors so all experts run as batched matmuls; expert e's
    parameters are ``norm_weight[e]``, ``norm_bias[e]``, ``fc1_weight[e]``, ...
    """

    def __init__(self, num_experts: int, dim: int, hidden: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.dim = dim
        self.norm_weight = nn.Parameter(torch.ones(num_experts, dim))
        self.norm_bias = nn.Parameter(torch.zeros(num_experts, dim))
        self.fc1_weight = nn.Parameter(torch.empty(num_experts, dim, hidden))
        self.fc1_bias = nn.Parameter(torch.zeros(num_experts, hidden))
        self.fc2_weight = nn.Parameter(torch.empty(num_experts, hidden, dim))
        self.fc2_bias = nn.Parameter(torch.zeros(num_experts, dim))
        self.dropout = nn.Dropout(dropout)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # nn.Linear's default weight range, applied to each expert's slice.
        for weight in (self.fc1_weight, self.fc2_weight):
            bound = 1.0 / math.sqrt(weight.shape[1])
            nn.init.uniform_(weight, -bound, bound)

    def forward(self, x: Tensor, gates: Tensor) -> Tensor:
        """x: B x D, gates: B x E -> B x D, the gate-weighted sum of the experts."""
        normed = F.layer_norm(x, (self.dim,))  # shared statistics, per-expert affine below
        # Expert-major layout (E x B x D) so each layer is a single batched matmul.
        h = normed.unsqueeze(0) * self.norm_weight.unsqueeze(1) + self.norm_bias.unsqueeze(1)
        h = self.dropout(F.gelu(torch.baddbmm(self.fc1_bias.unsqueeze(1), h, self.fc1_weight)))
        h = torch.baddbmm(self.fc2_bias.unsqueeze(1), h, self.fc2_weight)
        # Rows of gates sum to 1, so sum_e g_e * (x + MLP_e) = x + sum_e g_e * MLP_e.
        return x + (gates.t().unsqueeze(2).to(h.dtype) * h).sum(0)


class NoisyTopKGate(nn.Module):
    """MLP router: a shared hidden layer, then clean and noise logits per expert."""

    def __init__(self, dim: int, num_experts: int, hidden: int) -> None:
        super().__init__()
        self.trunk = nn.Sequential(nn.Linear(dim, hidden), nn.GELU())
        self.clean = nn.Linear(hidden, num_experts)
        self.noise = nn.Linear(hidden, num_experts)
        # The paper starts with W_g = W_noise = 0 (balanced, noise only). A small clean
        # init keeps routing near-balanced while letting gradients reach the trunk at once.
        nn.init.normal_(self.clean.weight, std=1e-2)
        nn.init.zeros_(self.clean.bias)
        nn.init.zeros_(self.noise.weight)
        nn.init.zeros_(self.noise.bias)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        h = self.trunk(x)
        return self.clean(h), self.noise(h)


class DynamicMoE(nn.Module):
    """Sparsely-gated mixture of residual MLP experts on a B x dim vector.

    Training: ``H = clean + N(0, 1) * (softplus(noise_logits) + noise_epsilon)``; the top
    k of H are kept and softmaxed (top-k first, then softmax). Eval: no noise, so the
    same input always gives the same output. ``forward`` returns ``(y, MoEAux)``.

    The gate is an MLP (dim -> gate_hidden -> E); the experts are residual MLP blocks
    computed densely (see the module docstring for why).
    """

    def __init__(
        self,
        dim: int,
        num_experts: int = 8,
        k: int = 2,
        *,
        gate_hidden: int | None = None,
        expert_hidden: int | None = None,
        dropout: float = 0.0,
        noise_epsilon: float = 1e-2,
    ) -> None:
        super().__init__()
        if num_experts < 1:
            raise ValueError(f"num_experts must be >= 1, got {num_experts}")
        if not 1 <= k <= num_experts:
            raise ValueError(f"k must be between 1 and num_experts={num_experts}, got {k}")
        if noise_epsilon < 0:
            raise ValueError(f"noise_epsilon must be >= 0, got {noise_epsilon}")
        self.dim = dim
        self.num_experts = num_experts
        self.k = k
        self.noise_epsilon = noise_epsilon
        self.gate = NoisyTopKGate(dim, num_experts, gate_hidden or dim)
        self.experts = ExpertBank(num_experts, dim, expert_hidden or dim, dropout)

    def forward(self, x: Tensor) -> tuple[Tensor, MoEAux]:
        clean, noise_logits = self.gate(x)
        if self.training:
            noise_std = F.softplus(noise_logits) + self.noise_epsilon
            logits = clean + torch.randn_like(clean) * noise_std
        else:
            logits = clean
        # k+1 values: the (k+1)-th is the threshold an expert already in the top k must
        # stay above, which the load estimate below needs.
        top_values, top_indices = logits.topk(min(self.k + 1, self.num_experts), dim=1)
        indices = top_indices[:, : self.k]
        kept = torch.softmax(top_values[:, : self.k], dim=1)
        gates = torch.zeros_like(logits).scatter(1, indices, kept)

        if self.training:
            load = self._load(clean, logits, noise_std, top_values)
        else:
            # Without noise the probability of being chosen is 0 or 1.
            load = (gates > 0).to(gates.dtype).sum(0)
        balance_loss = cv_squared(gates.sum(0)) + cv_squared(load)
        return self.experts(x, gates), MoEAux(gates, indices, balance_loss)

    def _load(self, clean: Tensor, noisy: Tensor, noise_std: Tensor, top_values: Tensor) -> Tensor:
        """Per-expert sum over the batch of P(expert in top k | other experts' noise).

        Differentiable through the normal CDF (the paper's smooth load estimator).
        """
        if self.k >= self.num_experts:
            # Every expert is always chosen: the load is exactly one per row.
            return clean.new_ones(clean.shape).sum(0)
        threshold_if_in = top_values[:, self.k : self.k + 1]  # (k+1)-th largest
        threshold_if_out = top_values[:, self.k - 1 : self.k]  # k-th largest
        is_in = noisy > threshold_if_in
        prob_if_in = torch.special.ndtr((clean - threshold_if_in) / noise_std)
        prob_if_out = torch.special.ndtr((clean - threshold_if_out) / noise_std)
        return torch.where(is_in, prob_if_in, prob_if_out).sum(0)

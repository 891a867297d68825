"""The optimizer and gradient clipping the training loop uses."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from rnnkit.train.config import TrainConfig


def build_optimizer(model: torch.nn.Module, config: TrainConfig) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices only: decaying biases and gains has no regularising
    effect worth having and hurts small recurrent models."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    if not trainable:
        raise ValueError("model: expected trainable parameters, got none with requires_grad")
    decayed = [p for p in trainable if p.ndim >= 2]
    not_decayed = [p for p in trainable if p.ndim < 2]
    groups = [
        {"params": params, "weight_decay": decay}
        for params, decay in ((decayed, config.weight_decay), (not_decayed, 0.0))
        if params
    ]
    return torch.optim.AdamW(groups, lr=config.lr, betas=config.betas, eps=config.eps)


def total_grad_norm(parameters: Sequence[torch.nn.Parameter]) -> float:
    """Global L2 norm of the gradients of ``parameters`` (those without a gradient are skipped)."""
    norms = [torch.linalg.vector_norm(p.grad) for p in parameters if p.grad is not None]
    if not norms:
        return 0.0
    return float(torch.linalg.vector_norm(torch.stack(norms)))


def clip_gradients(parameters: Sequence[torch.nn.Parameter], config: TrainConfig) -> float:
    """Clip by global norm (``clip_norm``) or per element (``clip_value``) as configured; return
    the global gradient norm measured *before* clipping."""
    if config.clip_norm is not None:
        return float(torch.nn.utils.clip_grad_norm_(parameters, config.clip_norm))
    norm = total_grad_norm(parameters)
    if config.clip_value is not None:
        torch.nn.utils.clip_grad_value_(parameters, config.clip_value)
    return norm

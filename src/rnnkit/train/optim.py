"""The optimizer and gradient clipping the training loop uses."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from rnnkit.train.config import TrainConfig


def optimizer_settings(config: TrainConfig) -> dict[str, Any]:
    """The keyword settings ``config.optimizer`` takes from ``config`` (lr and weight decay,
    which differ per parameter group or step, excluded)."""
    if config.optimizer in ("adamw", "adam"):
        return {"betas": tuple(config.betas), "eps": config.eps}
    if config.optimizer == "rmsprop":
        return {"alpha": config.alpha, "eps": config.eps, "momentum": config.momentum,
                "centered": config.centered}
    return {"momentum": config.momentum, "nesterov": config.nesterov}


_CLASSES: dict[str, type[torch.optim.Optimizer]] = {
    "adamw": torch.optim.AdamW, "adam": torch.optim.Adam,
    "rmsprop": torch.optim.RMSprop, "sgd": torch.optim.SGD,
}


def build_optimizer(model: torch.nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """``config.optimizer`` with weight decay on matrices only: decaying biases and gains has no
    regularising effect worth having and hurts small recurrent models. A model whose
    ``no_weight_decay()`` returns parameter names (timm's convention) keeps those undecayed
    too: matrices whose value means something at 1, not at 0, such as a forecaster's weight on
    its seasonal-naive baseline."""
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if not named:
        raise ValueError("model: expected trainable parameters, got none with requires_grad")
    exempt = set(model.no_weight_decay()) if hasattr(model, "no_weight_decay") else set()
    decayed = [p for n, p in named if p.ndim >= 2 and n not in exempt]
    not_decayed = [p for n, p in named if p.ndim < 2 or n in exempt]
    # "decayed" travels with the group through state_dict, so a resume knows which is which
    groups = [
        {"params": params, "weight_decay": config.weight_decay if decay else 0.0,
         "decayed": decay}
        for params, decay in ((decayed, True), (not_decayed, False))
        if params
    ]
    return _CLASSES[config.optimizer](groups, lr=config.lr, **optimizer_settings(config))


def apply_settings(optimizer: torch.optim.Optimizer, config: TrainConfig) -> None:
    """Set ``config``'s settings on every group of a restored ``optimizer``.

    ``load_state_dict`` brings back the saved groups' settings; a run resumed with the same
    config gets the same values (exact resume), one resumed with changed settings (population
    based training's explore step) gets the new ones. lr is the schedule's to set."""
    settings = optimizer_settings(config)
    for group in optimizer.param_groups:
        group.update(settings)
        if group.get("decayed", group["weight_decay"] > 0):
            group["weight_decay"] = config.weight_decay


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

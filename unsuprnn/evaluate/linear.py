"""Linear probe: multinomial logistic regression on standardized frozen features.

The weight decay is chosen on a held-out slice of the train split (never on test), then the probe
is refit on the whole train split. Full-batch L-BFGS on the features' device.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import UserError
from ..progress import stage, tracked
from .metrics import classification_metrics

WEIGHT_DECAYS = (0.0, 1e-5, 1e-4, 1e-3, 1e-2)


def fit_logistic(x: torch.Tensor, y: torch.Tensor, num_classes: int, weight_decay: float,
                 max_iter: int = 200) -> tuple[torch.Tensor, torch.Tensor]:
    """Fit W [E, C], b [C] minimising mean cross entropy + weight_decay/2 * ||W||^2 (L-BFGS)."""
    w = torch.zeros(x.shape[1], num_classes, device=x.device, requires_grad=True)
    b = torch.zeros(num_classes, device=x.device, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=max_iter, history_size=20,
                            line_search_fn="strong_wolfe", tolerance_grad=1e-6, tolerance_change=1e-9)

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(x @ w + b, y) + 0.5 * weight_decay * (w * w).sum()
        loss.backward()
        return loss
    opt.step(closure)
    return w.detach(), b.detach()


def _holdout(y: torch.Tensor, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    from ..data.images import stratified_split
    s = stratified_split(y.cpu(), fraction, seed)
    return s["train"], s["test"]


def linear_probe(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, test_y: torch.Tensor,
                 num_classes: int, device: torch.device | str = "cpu", seed: int = 0,
                 weight_decays: tuple[float, ...] = WEIGHT_DECAYS, max_iter: int = 200) -> dict:
    """Train on (train_x [N, E], train_y [N]), score on the test set.

    Returns accuracy, macro precision/recall/F1 (%), confusion matrix, the chosen weight decay and
    the validation accuracy of each candidate.
    """
    if len(torch.unique(train_y)) < 2:
        raise UserError("the linear probe needs at least two classes in the train split")
    mean, std = train_x.mean(0), train_x.std(0).clamp_min(1e-6)
    xs = ((train_x - mean) / std).float().to(device)
    xt = ((test_x - mean) / std).float().to(device)
    ys = train_y.to(device)
    fit_idx, val_idx = _holdout(train_y, 0.1, seed)
    val_acc = {}
    for wd in tracked(weight_decays, desc=f"linear probe on {xs.shape[1]} features: weight decays", unit="fits"):
        w, b = fit_logistic(xs[fit_idx], ys[fit_idx], num_classes, wd, max_iter)
        val_acc[wd] = (((xs[val_idx] @ w + b).argmax(1) == ys[val_idx]).float().mean().item())
    best = max(weight_decays, key=lambda wd: (val_acc[wd], wd))  # ties go to the stronger decay
    with stage(f"linear probe on {xs.shape[1]} features: the fit at weight decay {best:g}"):
        w, b = fit_logistic(xs, ys, num_classes, best, max_iter)
    pred = (xt @ w + b).argmax(1).cpu()
    out = classification_metrics(test_y.numpy(), pred.numpy(), num_classes)
    out.update(weight_decay=best, validation_accuracy={str(k): 100 * v for k, v in val_acc.items()})
    return out


# --- the `linear` probe method (see evaluate/methods.py)
NEEDS_LABELS = True
COLUMNS = (("linear top-1", "accuracy"), ("macro F1", "f1"))


SETTINGS: dict = {}  # none of its own: its weight decay is chosen on held-out data


def measure(bank, bank_y, query, query_y, num_classes: int, settings, seed: int, device) -> dict:
    return linear_probe(bank, bank_y, query, query_y, num_classes, device=device, seed=seed)

import math

import pytest
import torch
import torch.nn.functional as F

from unsuprnn.config import Config, ObjectiveConfig
from unsuprnn.data import channel_stats, load_dataset
from unsuprnn.data.pipeline import build_pipeline
from unsuprnn.models.encoders import build_encoder
from unsuprnn.models.encoders.rnn import RNNEncoder
from unsuprnn.objectives import build_objective
from unsuprnn.objectives.contrastive import ContrastiveObjective
from unsuprnn.errors import UserError


def nt_xent_reference(z0, z1, t):
    """SimCLR's loss written out: for each of the 2B views, -log softmax of its positive among the
    2B - 1 other views, cosine similarity / t, averaged over all 2B views."""
    z = F.normalize(torch.cat([z0, z1]), dim=1).tolist()
    n, b = len(z), len(z0)
    total = 0.0
    for i in range(n):
        pos = (i + b) % n
        sims = {j: sum(a * c for a, c in zip(z[i], z[j])) / t for j in range(n) if j != i}
        total += -(sims[pos] - math.log(sum(math.exp(s) for s in sims.values())))
    return total / n


def test_nt_xent_matches_hand_computation():
    torch.manual_seed(0)
    z0, z1 = torch.randn(4, 3), torch.randn(4, 3)
    obj = ContrastiveObjective(RNNEncoder(2, hidden=2), build_pipeline_small(), ObjectiveConfig(temperature=0.3), 0)
    assert obj.criterion(z0, z1).item() == pytest.approx(nt_xent_reference(z0, z1, 0.3), rel=1e-5)


def build_pipeline_small():
    cfg = Config()
    return build_pipeline(cfg.data, cfg.augment, (1, 8, 8), [0.5], [0.25])


def _setup(name, **obj_kw):
    cfg = Config()
    cfg.encoder.hidden, cfg.encoder.layers = 32, 1
    for k, v in obj_kw.items():
        setattr(cfg.objective, k, v)
    ds = load_dataset(cfg.data, 0)
    mean, std = channel_stats(ds.images)
    pipe = build_pipeline(cfg.data, cfg.augment, ds.shape, mean, std)
    torch.manual_seed(0)
    enc = build_encoder(cfg.encoder, pipe.seq_shape[1])
    return build_objective(name, enc, pipe, cfg.objective, 10), ds


def test_autoencoder_loss_is_mse_through_view_inverse():
    obj, ds = _setup("autoencoder", denoise="none")
    x = ds.images[:6]
    loss, _ = obj(x, ds.labels[:6], None)
    p = obj.pipeline
    target = p.clean(x)
    recon = p.view.to_image(obj.decoder(obj.encoder(target), target))
    expect = ((recon - p.normalized(x.float() / 255)) ** 2).mean()  # the image the encoder reads
    assert loss.item() == pytest.approx(expect.item(), rel=1e-6)


def test_supervised_loss_is_cross_entropy():
    obj, ds = _setup("supervised")
    x, y = ds.images[:5], ds.labels[:5]
    g = torch.Generator().manual_seed(1)
    loss, _ = obj(x, y, g)
    logits = obj.logits(obj.pipeline.augmented(x, torch.Generator().manual_seed(1)))
    logp = logits.log_softmax(1)
    expect = -sum(logp[i, y[i]] for i in range(5)) / 5
    assert loss.item() == pytest.approx(expect.item(), rel=1e-5)


@pytest.mark.parametrize("name", ["contrastive", "autoencoder", "supervised"])
def test_loss_falls(name):
    obj, ds = _setup(name)
    x, y = ds.images[:128], ds.labels[:128]
    opt = torch.optim.AdamW(obj.parameters(), lr=3e-3)
    losses = []
    for step in range(60):  # (60: the default views are strong enough that 40 steps fall short for some)
        g = torch.Generator().manual_seed(step)
        loss, _ = obj(x, y, g)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < 0.8 * first, (first, last)


def test_unknown_objective():
    with pytest.raises(UserError, match="unknown objective"):
        _setup("swav")

"""The sequence objectives (cpc, apc, masked) and mixes, with known answers: InfoNCE against its formula,
causal per-step outputs, APC's loss on a hand-built sequence, what the masked loss reads, a mix's loss as
the weighted sum of its parts, resume to identical weights, bad keys as one line."""

import math

import pytest
import torch

from tests.conftest import TINY, assert_one_error_line, invoke, straight_and_resumed, tiny_config
from unsuprnn.config import Config
from unsuprnn.data.pipeline import build_pipeline
from unsuprnn.errors import UserError
from unsuprnn.models.encoders.rnn import RNNEncoder
from unsuprnn.objectives import build_objective
from unsuprnn.objectives._sequence import info_nce, masked_mse, shifted_l1, span_mask


def info_nce_reference(pred, codes, t, offset=0):
    """Written out: for each group p and prediction b, -log of exp(cos(pred, its positive codes[p, offset + b])
    / t) over the sum over the group's codes, averaged."""
    total = 0.0
    for p in range(pred.shape[0]):
        for b in range(pred.shape[1]):
            sims = [torch.nn.functional.cosine_similarity(pred[p, b], codes[p, m], dim=0).item() / t
                    for m in range(codes.shape[1])]
            total += -(sims[offset + b] - math.log(sum(math.exp(s) for s in sims)))
    return total / (pred.shape[0] * pred.shape[1])


def test_info_nce_matches_its_formula_and_a_perfect_predictor_drives_it_to_zero():
    g = torch.Generator().manual_seed(0)
    pred, codes = torch.randn(3, 4, 5, generator=g), torch.randn(3, 4, 5, generator=g)
    assert info_nce(pred, codes, 0.3).item() == pytest.approx(info_nce_reference(pred, codes, 0.3), rel=1e-5)
    distinct = torch.eye(5)[:4].expand(3, 4, 5)  # each image's code points its own way
    assert info_nce(distinct, distinct, 0.01).item() < 1e-6 < info_nce(distinct, distinct, 1.0).item()


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_separate_stacks_are_causal_and_joint_ones_are_not(cell):
    x = torch.randn(2, 9, 4)
    later, earlier = x.clone(), x.clone()
    later[:, 6:] += 1.0    # steps after t = 5
    earlier[:, :3] += 1.0  # steps before t = 3
    sep = RNNEncoder(4, cell=cell, hidden=6, layers=2, stacks="separate")
    (_, (f, b)), (_, (f2, _)), (_, (_, b3)) = sep.encode(x), sep.encode(later), sep.encode(earlier)
    assert sep.causal and torch.equal(f[:, :6], f2[:, :6]) and torch.equal(b[:, 3:], b3[:, 3:])
    assert not torch.allclose(f[:, 6:], f2[:, 6:])  # (and the later steps do change)
    joint = RNNEncoder(4, cell=cell, hidden=6, layers=2)
    (_, (jf, _)), (_, (jf2, _)) = joint.encode(x), joint.encode(later)
    assert not joint.causal and not torch.allclose(jf[:, :6], jf2[:, :6])  # layer 2 reads layer 1's backward half
    assert RNNEncoder(4, cell=cell, hidden=6, layers=1).causal


def small_pipeline():
    cfg = Config()
    return build_pipeline(cfg.data, cfg.augment, (1, 8, 8), [0.5], [0.25])


def test_predicting_objectives_refuse_a_joint_stacked_encoder():
    cfg = Config().objective
    for name in ("cpc", "apc"):
        with pytest.raises(UserError, match="--stacks separate"):
            build_objective(name, RNNEncoder(8, hidden=4, layers=2), small_pipeline(), cfg, 10)
        build_objective(name, RNNEncoder(8, hidden=4, layers=2, stacks="separate"), small_pipeline(), cfg, 10)


def test_apc_loss_on_a_hand_built_sequence():
    """x[t] = t: a predictor that says t+n ahead and t-n behind scores 0; one that is off by 1 ahead and by
    3 behind scores (1 + 3) / 2."""
    n, x = 2, torch.arange(7.0).reshape(1, 7, 1).expand(2, 7, 3)
    assert shifted_l1(x[:, n:], x[:, :-n], x, n).item() == 0.0
    assert shifted_l1(x[:, n:] + 1, x[:, :-n] - 3, x, n).item() == pytest.approx(2.0)


def test_the_masked_loss_reads_only_masked_steps():
    g = torch.Generator().manual_seed(0)
    pred, target = torch.randn(3, 10, 4, generator=g), torch.randn(3, 10, 4, generator=g)
    mask = span_mask(3, 10, 0.3, 2, g, torch.device("cpu"))
    other = target.clone()
    other[~mask] = 100.0  # every step that is not masked
    assert masked_mse(pred, target, mask).item() == masked_mse(pred, other, mask).item()
    by_hand = ((pred - target) ** 2).mean(-1)[mask].mean()
    assert masked_mse(pred, target, mask).item() == pytest.approx(by_hand.item())


@pytest.mark.parametrize("steps,share,span", [(28, 0.3, 3), (8, 0.25, 2), (16, 0.5, 1)])
def test_span_masks_have_the_share_and_span_asked(steps, share, span):
    g = torch.Generator().manual_seed(1)
    mask = span_mask(4000, steps, share, span, g, torch.device("cpu"))
    m = round(share * steps / span)
    assert (mask.sum(1) == m * span).all()  # exactly m spans of `span` steps, never overlapping
    for row in mask[:200].tolist():  # every run of masked steps is whole spans
        runs, length = [], 0
        for v in row + [False]:
            if v:
                length += 1
            elif length:
                runs.append(length)
                length = 0
        assert all(r % span == 0 for r in runs)
    freq = mask.float().mean(0)  # every step gets masked; away from the ends (fewer spans reach them) evenly
    assert (freq > 0).all() and (freq[span:steps - span] - m * span / steps).abs().max() < 0.08


def test_a_mix_is_the_weighted_sum_of_its_parts():
    from unsuprnn.data import channel_stats, load_dataset
    cfg = tiny_config("contrastive+masked")
    cfg.objective.weights = "1,0.5"
    ds = load_dataset(cfg.data, 0)
    mean, std = channel_stats(ds.images, ds.splits["train"], 0)
    pipeline = build_pipeline(cfg.data, cfg.augment, ds.shape, mean, std)
    torch.manual_seed(0)
    mix = build_objective(cfg.objective.name, RNNEncoder(pipeline.seq_shape[1], hidden=8, layers=1), pipeline,
                          cfg.objective, 10)
    x, y = ds.images[:32], ds.labels[:32]
    total, stats = mix(x, y, torch.Generator().manual_seed(3))
    g = torch.Generator().manual_seed(3)  # the parts draw their views one after the other from one generator
    contrastive, _ = mix.parts["contrastive"](x, y, g)
    masked, _ = mix.parts["masked"](x, y, g)
    assert total.item() == pytest.approx(contrastive.item() + 0.5 * masked.item(), rel=1e-6)
    assert stats["loss_masked"].item() == pytest.approx(masked.item(), rel=1e-6)


@pytest.mark.parametrize("objective", ["cpc", "contrastive+apc"])
def test_resume_after_a_kill_ends_with_the_same_weights(tmp_path, monkeypatch, objective):
    cfg = tiny_config(objective, epochs=3)
    cfg.encoder.layers, cfg.encoder.stacks = 2, "separate"
    a, b = straight_and_resumed(cfg, tmp_path, monkeypatch, kill_after=2)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("args,why", [
    (["--objective", "cpc", "--stacks", "separate", "--set", "objective.cpc_steps=0"], "objective.cpc_steps"),
    (["--objective", "contrastive+cpc", "--stacks", "separate", "--set", "objective.weights=1,-0.5"], "weights"),
    (["--objective", "contrastive+cpd"], "unknown objective 'cpd'"),
    (["--objective", "contrastive+masked", "--set", "objective.weights=1"], "gives 1 weights for the 2 parts"),
    (["--objective", "masked", "--set", "objective.mask_share=0"], "objective.mask_share"),
    (["--objective", "apc", "--layers", "2"], "--stacks separate"),
    (["--objective", "cpc", "--no-bidirectional"], "--no-bidirectional"),
    (["--objective", "contrastive+apc", "--layers", "2"], "--stacks separate"),
])
def test_bad_sequence_settings_are_one_line(runner, tmp_path, args, why):
    r = invoke(runner, "pretrain", *TINY, "--epochs", "1", "--out", tmp_path / "run", *args)
    assert_one_error_line(r)
    assert why in r.stderr and not (tmp_path / "run").exists()


def test_cpc_under_ddp_takes_negatives_from_every_process(monkeypatch):
    """With gathering on, the codes of the other process join the negatives and this process's positives sit
    at its rank's offset: the loss is InfoNCE over the gathered codes."""
    import lightly.utils.dist as dist
    cfg = Config().objective
    obj = build_objective("cpc", RNNEncoder(8, hidden=4, layers=2, stacks="separate"), small_pipeline(), cfg, 10,
                          gather_distributed=True)
    g = torch.Generator().manual_seed(0)
    codes = torch.randn(5, 8, cfg.code_dim, generator=g)
    other = torch.randn(5, 8, cfg.code_dim, generator=g)
    monkeypatch.setattr(dist, "gather", lambda t: (other, t))  # this process is rank 1 of 2
    monkeypatch.setattr(dist, "rank", lambda: 1)
    everyone, offset = obj.all_codes(codes)
    assert offset == 5 and torch.equal(everyone, torch.cat([other, codes]))
    pred = torch.randn(8, 5, cfg.code_dim, generator=g)
    assert info_nce(pred, everyone.transpose(0, 1), 0.5, offset).item() == pytest.approx(
        info_nce_reference(pred, everyone.transpose(0, 1), 0.5, offset), rel=1e-5)


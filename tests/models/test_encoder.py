import itertools

import pytest
import torch

from unsuprnn.errors import UserError
from unsuprnn.models.encoders.rnn import RNNEncoder
from unsuprnn.models.heads import SequenceDecoder


@pytest.mark.parametrize("cell,pool,bidir", list(itertools.product(["lstm", "gru", "rnn"],
                                                                   ["last", "mean", "max", "meanmax"], [True, False])))
def test_output_shape(cell, pool, bidir):
    enc = RNNEncoder(6, cell=cell, hidden=5, layers=2, bidirectional=bidir, pool=pool)
    z = enc(torch.randn(3, 7, 6))
    dirs = 2 if bidir else 1
    assert z.shape == (3, 5 * dirs * (2 if pool == "meanmax" else 1)) == (3, enc.out_dim)


def test_last_pool_is_final_state_of_each_direction():
    torch.manual_seed(0)
    enc = RNNEncoder(4, cell="gru", hidden=3, layers=1, bidirectional=True, pool="last")
    x = torch.randn(2, 5, 4)
    out, _ = enc.rnn(x)
    z = enc(x)
    # forward direction ends at the last step, backward direction at the first
    assert torch.allclose(z[:, :3], out[:, -1, :3]) and torch.allclose(z[:, 3:], out[:, 0, 3:])


def test_input_projection():
    enc = RNNEncoder(48, hidden=8, input_proj=16)
    assert enc.rnn.input_size == 16 and enc(torch.randn(2, 4, 48)).shape == (2, enc.out_dim)


def test_bad_arguments():
    with pytest.raises(UserError, match="unknown cell"):
        RNNEncoder(4, cell="transformer")
    with pytest.raises(UserError, match="unknown pool"):
        RNNEncoder(4, pool="attention")


@pytest.mark.parametrize("tf", [True, False])
def test_decoder_shape(tf):
    dec = SequenceDecoder(10, 6, 7, "lstm", 12, teacher_forcing=tf)
    assert dec(torch.randn(3, 10), torch.randn(3, 7, 6)).shape == (3, 7, 6)


@pytest.mark.parametrize("bidir", [True, False])
def test_per_step_outputs_beside_the_embedding(bidir):
    """encode() gives the embedding forward() gives, and each direction's outputs at every step; in one
    layer, the forward direction at step t sees steps <= t only, the backward direction steps >= t."""
    torch.manual_seed(0)
    enc = RNNEncoder(4, cell="lstm", hidden=3, layers=1, bidirectional=bidir, pool="meanmax").eval()
    x = torch.randn(2, 6, 4)
    z, steps = enc.encode(x)
    assert torch.equal(z, enc(x)) and len(steps) == (2 if bidir else 1)
    assert all(s.shape == (2, 6, 3) for s in steps)
    later = x.clone()
    later[:, 4:] += 1.0  # change steps 4 and 5 only
    _, steps2 = enc.encode(later)
    assert torch.equal(steps[0][:, :4], steps2[0][:, :4]) and not torch.equal(steps[0][:, 4:], steps2[0][:, 4:])
    if bidir:  # the backward direction at steps 0..3 has read the changed steps
        assert not torch.equal(steps[1][:, :4], steps2[1][:, :4])


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_last_pool_of_separate_stacks_is_each_stacks_final_state(cell):
    """Separate stacks: the forward stack ends at the last step, the backward stack (reading the reversed
    sequence) at the first; `last` pooling gives exactly those two per-step outputs."""
    torch.manual_seed(0)
    enc = RNNEncoder(4, cell=cell, hidden=3, layers=2, pool="last", stacks="separate")
    x = torch.randn(2, 5, 4)
    z = enc(x)
    _, (fwd, bwd) = enc.encode(x)
    assert z.shape == (2, 6) and torch.allclose(z[:, :3], fwd[:, -1]) and torch.allclose(z[:, 3:], bwd[:, 0])

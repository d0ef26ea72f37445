import numpy as np

from tests.conftest import invoke


def test_data_digits_output(runner, tmp_path):
    r = invoke(runner, "data", "--dataset", "digits", "--grid", tmp_path / "g.png")
    assert r.exit_code == 0, r.output
    assert "splits: train 1438, test 359" in r.output
    assert "image shape: 1 x 8 x 8" in r.output
    assert "classes (10) in train [1438 images]: 0: 142, 1: 146" in r.output
    assert "sequence T x D = 8 x 8" in r.output
    assert (tmp_path / "g.png").read_bytes()[:4] == b"\x89PNG"


def test_data_patch_view(runner):
    r = invoke(runner, "data", "--view", "patches", "--patch", "4", "--split", "test")
    assert r.exit_code == 0 and "T x D = 4 x 16" in r.output and "[359 images]" in r.output


def test_bad_inputs_exit_2_with_one_line(runner, tmp_path):
    np.savez(tmp_path / "bad.npz", images=np.zeros((3, 4, 4), np.uint8), labels=np.zeros(2, int))
    cases = [("--dataset", "nope"), ("--dataset", f"folder:{tmp_path / 'missing'}"),
             ("--view", "spiral"), ("--view", "patches", "--patch", "3"),
             ("--dataset", f"npz:{tmp_path / 'bad.npz'}"), ("--set", "data.colour=1")]
    for args in cases:
        r = invoke(runner, "data", *args)
        assert r.exit_code == 2, args
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (args, r.stderr)

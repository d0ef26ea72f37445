"""Notes where the tool changed a user's images (resized, grey copied to three channels, alpha dropped) or where
labels cannot score (one class): said by `data` and `pretrain`, recorded in meta.json, kept beside the folder's
cache; exit codes and outputs otherwise as before."""

import json

import numpy as np
from PIL import Image

from tests.conftest import invoke


def mixed_folder(root):
    """Two classes of PNGs: 96x96 colour, 64x80 colour, 5x5 colour, a greyscale one and one with alpha."""
    rng = np.random.default_rng(0)
    for c in ("a", "b"):
        (root / c).mkdir(parents=True)
        for i in range(6):
            Image.fromarray((rng.random((96, 96, 3)) * 255).astype(np.uint8)).save(root / c / f"rgb{i}.png")
        Image.fromarray((rng.random((80, 64, 3)) * 255).astype(np.uint8)).save(root / c / "wide.png")
        Image.fromarray((rng.random((5, 5, 3)) * 255).astype(np.uint8)).save(root / c / "tiny.png")
        Image.fromarray((rng.random((96, 96)) * 255).astype(np.uint8), "L").save(root / c / "zgrey.png")
        Image.fromarray((rng.random((96, 96, 4)) * 255).astype(np.uint8), "RGBA").save(root / c / "zalpha.png")
    return root


def test_a_mixed_folder_gets_one_note_per_kind_of_change(runner, tmp_path):
    folder = mixed_folder(tmp_path / "mixed")
    r = invoke(runner, "data", "--dataset", f"folder:{folder}", "--resize", "96")
    assert r.exit_code == 0, r.output
    notes = [line for line in r.stdout.splitlines() if line.startswith("note: ")]
    assert len(notes) == 3, notes
    assert "4 image(s) resized to 96x96 (--resize), 4 of them enlarged; the smallest was 5x5, enlarged 19.2x" in notes[0]
    assert "2 greyscale image(s) copied to three channels" in notes[1] and "2 image(s) had an alpha" in notes[2]
    again = invoke(runner, "data", "--dataset", f"folder:{folder}", "--resize", "96")  # read from the cache: the same
    assert [x for x in again.stdout.splitlines() if x.startswith("note: ")] == notes
    r = invoke(runner, "pretrain", "--dataset", f"folder:{folder}", "--resize", "96", "--out", tmp_path / "run",
               "--epochs", "1", "--hidden", "8", "--layers", "1", "--batch-size", "8", "--device", "cpu", "--quiet")
    assert r.exit_code == 0, r.output
    assert [x for x in r.stderr.splitlines() if x.startswith("note: ")][:3] == notes  # (then the undertrained one)
    assert len(json.loads((tmp_path / "run" / "meta.json").read_text())["data_notes"]) == 3


def test_a_one_class_folder_is_said_at_data_and_pretrain_and_its_probe_scores_nothing(runner, tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "one" / "cats").mkdir(parents=True)
    for i in range(40):
        Image.fromarray((rng.random((8, 8)) * 255).astype(np.uint8), "L").save(tmp_path / "one" / "cats" / f"{i}.png")
    r = invoke(runner, "data", "--dataset", f"folder:{tmp_path / 'one'}")
    assert r.exit_code == 0 and "note: one class ('cats')" in r.stdout
    r = invoke(runner, "pretrain", "--dataset", f"folder:{tmp_path / 'one'}", "--out", tmp_path / "run", "--epochs",
               "2", "--hidden", "8", "--layers", "1", "--device", "cpu", "--quiet")
    assert r.exit_code == 0 and "note: one class ('cats')" in r.stderr and "kNN top-1" not in r.stdout, r.output
    r = invoke(runner, "probe", "--run", tmp_path / "run", "--device", "cpu", "--quiet")
    assert r.exit_code == 0, r.output
    assert "has one class: knn, linear need labels of two classes or more and were not measured" in r.stdout
    stored = json.loads((tmp_path / "run" / "probe.json").read_text())["results"]["encoder"]
    # (what the clusters follow under mirroring and the like needs no labels: measured)
    assert set(stored) == {"kmeans", "hdbscan", "consistency"} and "accuracy" not in stored["kmeans"]

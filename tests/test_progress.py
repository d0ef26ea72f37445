"""Progress lines of long work in a log (no terminal): a loop's count, rate and ETA, a stage's heartbeat and end."""

import time

import unsuprnn.progress as progress


def test_a_loop_says_its_count_rate_and_eta_and_a_stage_its_heartbeat(monkeypatch):
    lines = []
    monkeypatch.setattr(progress, "LINE_EVERY", 0.0)
    monkeypatch.setattr(progress, "SHOW_FROM", 0.0)
    monkeypatch.setattr(progress, "HEARTBEAT", 0.05)
    progress.configure(lines.append)
    try:
        assert list(progress.tracked(range(3), desc="fitting", unit="fits")) == [0, 1, 2]
        with progress.stage("a layout"):
            time.sleep(0.12)
    finally:
        progress.configure(None)
    assert lines[0].startswith("fitting: 1/3 fits, ") and "/s, about" in lines[0] and lines[0].endswith("s left")
    assert lines[3].startswith("fitting: 3 fits in ")
    beats = [x for x in lines if x.startswith("a layout: running, ")]
    assert len(beats) >= 1 and lines[-1].startswith("a layout: done in ")


def test_quiet_work_says_nothing_and_a_failed_stage_claims_no_end():
    lines = []
    progress.configure(None)
    assert list(progress.tracked([1, 2], desc="x")) == [1, 2]
    progress.configure(lines.append)
    try:
        with progress.stage("boom"):
            raise KeyError
    except KeyError:
        pass
    finally:
        progress.configure(None)
    assert not any("done" in x for x in lines)

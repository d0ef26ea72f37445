"""The CLI says what it does: help texts with defaults and no `<bool>` metavars, `--version` alone,
the README's commands parse, `report RUN...`, and no progress-bar frames in a redirected log."""

import re
import shlex
from pathlib import Path

import pytest
import typer
from typer.core import TyperOption

from tests.conftest import invoke
from unsuprnn.cli import app

README = Path(__file__).resolve().parent.parent / "README.md"


def commands():
    group = typer.main.get_command(app)
    ctx = typer.Context(group, info_name="unsuprnn")
    return group, ctx, {name: group.get_command(ctx, name) for name in group.list_commands(ctx)}


def test_version_alone_prints_the_version(runner):
    from unsuprnn import __version__
    r = invoke(runner, "--version")
    assert r.exit_code == 0 and r.stdout.strip() == f"unsuprnn {__version__}"


@pytest.mark.parametrize("name", ["data", "pretrain", "supervised", "cluster", "probe", "export", "report"])
def test_help_shows_defaults_and_no_bool_metavar(runner, name):
    group, ctx, cmds = commands()
    r = invoke(runner, name, "--help")
    assert r.exit_code == 0 and "<bool>" not in r.stdout and "[default:" in r.stdout
    sub = typer.Context(cmds[name], info_name=name, parent=ctx)
    for param in cmds[name].params:
        if not isinstance(param, TyperOption) or param.required or param.name in ("help", "set_"):
            continue
        if param.is_flag and not param.secondary_opts and not param.default:
            continue  # an on/off switch, off unless given (click shows no default for these)
        record = param.get_help_record(sub)
        assert record and "default:" in record[1], (name, param.opts)
        if param.is_flag:
            assert "<" not in record[0], (name, record)


def _help_of(text, flag):
    """The help text of `flag` in a rendered --help (its line and continuation lines)."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if re.match(rf"\s+(-\w, )?{re.escape(flag)}\b", line):
            out = [line]
            for cont in lines[i + 1:]:
                if re.match(r"\s{10,}\S", cont) and not re.match(r"\s+-", cont):
                    out.append(cont)
                else:
                    break
            return " ".join(out)
    raise AssertionError(f"{flag} not in help")


def test_help_texts_say_what_each_command_does(runner):
    for name in ("probe", "export", "report"):
        quiet = _help_of(invoke(runner, name, "--help").stdout, "--quiet")
        assert "epoch" not in quiet, quiet
    assert "run" not in _help_of(invoke(runner, "export", "--help").stdout, "--force").split("--force", 1)[1]
    for name in ("data", "pretrain", "probe", "export"):
        assert "npy:FILE" in _help_of(invoke(runner, name, "--help").stdout, "--dataset"), name


def readme_commands():
    """Every `unsuprnn ...` command in the README's code (indented blocks and fences), continuations joined."""
    text = README.read_text().replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        if not line.startswith("    ") and not line.startswith("unsuprnn "):
            continue
        for part in line.split("&&"):
            if part.strip().startswith("unsuprnn "):
                out.append(shlex.split(part.split("  #")[0])[1:])
    return out


def test_every_readme_command_parses():
    group, ctx, cmds = commands()
    found = readme_commands()
    assert len(found) >= 10 and {w[0] for w in found} >= {"pretrain", "probe", "cluster", "export", "report", "data"}
    for words in found:
        name, args = words[0], words[1:]
        assert name in cmds, words
        cmds[name].make_context(name, list(args), parent=ctx)  # raises on an unknown or malformed option


def test_report_takes_runs_as_arguments_or_after_one_flag(runner, monkeypatch, tmp_path):
    import unsuprnn.report.build as report
    seen = {}
    monkeypatch.setattr(report, "build_report", lambda runs, out, device, force, say, settings: seen.setdefault("runs", runs))
    assert invoke(runner, "report", "--runs", "a", "b", "--out", tmp_path / "r.html").exit_code == 0
    assert [str(p) for p in seen.pop("runs")] == ["a", "b"]
    assert invoke(runner, "report", "a", "b", "c", "--out", tmp_path / "r.html").exit_code == 0
    assert [str(p) for p in seen.pop("runs")] == ["a", "b", "c"]


def test_report_takes_the_k_range_and_duplicate_threshold_of_its_analysis(runner, monkeypatch, tmp_path):
    import unsuprnn.report.build as report
    seen = {}
    monkeypatch.setattr(report, "build_report", lambda runs, out, device, force, say, settings: seen.update(s=settings))
    assert invoke(runner, "report", "a", "--k-range", "3:5", "--duplicate-threshold", "0.9",
                  "--out", tmp_path / "r.html").exit_code == 0
    assert (seen["s"].k_range, seen["s"].duplicate_threshold) == ("3:5", 0.9)
    r = invoke(runner, "report", "a", "--k-range", "5:3", "--out", tmp_path / "r.html")
    assert r.exit_code == 2 and "--k-range '5:3'" in r.stderr


def test_pretrain_refuses_every_objective_that_trains_with_labels(runner, monkeypatch, tmp_path):
    """Labels decide by the file's USES_LABELS, not by the name 'supervised'."""
    import dataclasses

    import unsuprnn.names.objectives as registry
    specs = registry.specs()
    teacher = dataclasses.replace(specs["supervised"], name="teacher", summary="Teacher")
    monkeypatch.setattr(registry, "specs", lambda: specs | {"teacher": teacher})
    r = invoke(runner, "pretrain", "--objective", "teacher", "--dataset", "digits", "--out", tmp_path / "run")
    assert r.exit_code == 2 and "teacher trains with labels" in r.stderr and not (tmp_path / "run").exists()


def test_progress_off_a_terminal_is_one_line_per_epoch(runner, tmp_path):
    r = invoke(runner, "pretrain", "--dataset", "digits", "--hidden", "8", "--layers", "1", "--epochs", "2",
               "--device", "cpu", "--out", tmp_path / "run")
    assert r.exit_code == 0, r.output
    assert "\r" not in r.stderr and "\x1b" not in r.stderr
    assert [line.split()[:2] for line in r.stderr.splitlines() if line.startswith("epoch")] == \
        [["epoch", "1/2"], ["epoch", "2/2"]]


@pytest.mark.parametrize("name", ["data", "pretrain", "supervised", "cluster", "probe", "export", "report"])
def test_a_command_s_help_names_only_options_that_exist(runner, name):
    """Every --option a command's help names is one of its own, or is named with the command that has it
    ("unsuprnn cluster --clusters auto"): no help points at an option the reader cannot pass."""
    _, _, cmds = commands()
    own = {opt for p in cmds[name].params for opt in (*p.opts, *getattr(p, "secondary_opts", ()))} | {"--help"}
    text = " ".join(invoke(runner, name, "--help").stdout.split())
    for match in re.finditer(r"(?<![\w-])(--[a-z][a-z0-9-]*)", text):
        flag = match.group(1)
        if flag in own:
            continue
        before = text[max(0, match.start() - 80):match.start()]
        other = re.findall(r"(?:unsuprnn |`)(\w+)[^.;]*$", before)
        assert other and other[-1] in cmds and any(flag in p.opts for p in cmds[other[-1]].params), (name, flag)

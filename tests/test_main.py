"""The command line as a user meets it: help for every command, one-line errors, exit codes."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import main

REPO = Path(__file__).resolve().parents[1]
COMMANDS = ("init", "readers", "split", "assign", "status", "label-source", "reading-order", "audit",
            "backup", "restore", "import", "export", "import-labels", "regions", "gold", "repeats",
            "train-seg", "presegment", "train", "report", "screen", "gui", "screenshot")


def test_every_command_is_registered(capsys):
    # argparse lists the registered commands when it refuses an unknown one.
    with pytest.raises(SystemExit):
        main.build_parser().parse_args(["no-such-command"])
    listed = capsys.readouterr().err
    assert "invalid choice" in listed
    for command in COMMANDS:
        assert f"'{command}'" in listed, command


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main.main([command, "--help"])
    assert exit_info.value.code == 0
    shown = capsys.readouterr().out
    assert "usage:" in shown
    # The source's reST literal marks are for the code reader, not for --help.
    assert "``" not in shown
    # Every command says what it does, not only which options it takes.
    description = shown.split("\n\n")[1]
    assert not description.startswith(("positional arguments", "options")), description


@pytest.mark.parametrize("argv, command", [(["status", "--projct", "x"], "octant status"),
                                           (["readers", "add", "Dr A", "--role", "reviewer", "--colour", "red"], "octant readers add"),
                                           (["--nonsense"], "octant")])
def test_an_unknown_option_points_at_its_own_commands_help(argv, command, capsys):
    # A new-user trial: `status --projct DIR` said "see `octant --help`", which lists commands only.
    with pytest.raises(SystemExit) as exit_info:
        main.main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"{command}: unrecognized arguments: ") and err.endswith(f"; see `{command} --help`.\n"), err


def test_a_missing_project_is_one_clear_line_and_exit_1(tmp_path):
    result = subprocess.run(
        [sys.executable, str(REPO / "main.py"), "status", "--project", str(tmp_path / "nowhere")],
        capture_output=True, text=True, cwd=tmp_path, timeout=120,
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("octant: ")
    assert "init" in lines[0] and "Traceback" not in result.stderr


def test_a_damaged_database_is_refused_and_left_untouched(tmp_path, capsys):
    folder = tmp_path / "project"
    folder.mkdir()
    damaged = folder / "octant.sqlite"
    damaged.write_bytes(b"this is not a database" * 10)
    before = damaged.read_bytes()
    assert main.main(["status", "--project", str(folder)]) == 1
    assert "octant:" in capsys.readouterr().err
    assert damaged.read_bytes() == before


def test_train_seg_refuses_unknown_lesion_types_and_options_of_other_tasks(capsys):
    assert main.main(["train-seg", "--task", "lesions", "--channels", "MA,XX"]) == 1
    assert "--channels takes lesion types among MA, HE, EX, SE" in capsys.readouterr().err
    assert main.main(["train-seg", "--task", "vessels", "--preprocess", "local_contrast"]) == 1
    assert "lesions task only" in capsys.readouterr().err


def test_train_seg_starts_a_new_run_from_a_given_weights_file(tmp_path, capsys):
    from models.commands.segmentation import build_task

    missing = tmp_path / "none.safetensors"
    assert main.main(["train-seg", "--task", "lesions", "--start-from", str(missing)]) == 1
    assert "no such weights file" in capsys.readouterr().err
    starter = tmp_path / "starter.safetensors"
    starter.write_bytes(b"checked when the run starts")
    args = main.build_parser().parse_args(["train-seg", "--task", "lesions", "--start-from", str(starter)])
    _, config = build_task(args)
    assert config.init_weights == str(starter.resolve())

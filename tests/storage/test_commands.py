"""init, readers, assign and status from the command line; errors are one line and exit 1."""
from __future__ import annotations

import io

import pytest

from main import main
from tests.storage.conftest import add_fake_images
from storage.project import open_project


@pytest.fixture(autouse=True)
def storage_commands_only(monkeypatch):
    # main.py would import every layer's commands (torch, Qt); these tests need only storage's.
    monkeypatch.setattr("main.COMMAND_MODULES", ("storage.commands",))


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_init_readers_assign_status(tmp_path, capsys, monkeypatch, database_url):
    # PostgreSQL: the same commands with --database-url, as every workstation would run them.
    db = [] if database_url is None else ["--database-url", database_url]
    folder = tmp_path / "clinic"
    assert run(capsys, "init", str(folder), "--name", "Clinic A", "--consensus-k", "3", *db)[0] == 0
    monkeypatch.setenv("OCTANT_PROJECT", str(folder))
    for i in range(3):
        assert run(capsys, "readers", "add", f"Dr {i}", "--role", "ophthalmologist", *db)[0] == 0
    monkeypatch.setattr("sys.stdin", io.StringIO("4321\n"))
    code, out, _ = run(capsys, "readers", "add", "Dr R", "--role", "retina_specialist", "--pin", *db)
    assert code == 0 and "PIN" in out
    code, out, _ = run(capsys, "readers", "list", *db)
    assert "Dr R" in out and "retina_specialist" in out
    with open_project(folder, database_url) as project:
        assert project.settings().consensus_k == 3
        add_fake_images(project, train=4)
    assert "4 images still need readers" in run(capsys, "status", *db)[1]
    code, out, _ = run(capsys, "assign", "--seed", "1", *db)
    assert code == 0 and "Assigned 12 reads over 4 images" in out
    code, out, _ = run(capsys, "status", "--project", str(folder), *db)
    assert code == 0 and "Images: 4 (4 train)" in out and "0 / 3" in out and "need readers" not in out
    code, _, err = run(capsys, "init", str(folder), *db)
    assert code == 1 and "already holds" in err and err.count("\n") == 1


def test_errors_are_one_line_and_a_non_zero_exit(tmp_path, capsys):
    code, out, err = run(capsys, "status", "--project", str(tmp_path))
    assert code == 1 and err.count("\n") == 1 and err.startswith("octant: ") and "init" in err
    assert run(capsys, "init", str(tmp_path / "p"))[0] == 0
    code, _, err = run(capsys, "init", str(tmp_path / "p"))
    assert code == 1 and "already holds" in err and err.count("\n") == 1
    code, _, err = run(capsys, "assign", "--project", str(tmp_path / "p"), "--test-roles", "optometrist")
    assert code == 1 and "Unknown role" in err


def test_label_source_is_shown_and_set(tmp_path, capsys):
    folder = str(tmp_path / "p")
    assert run(capsys, "init", folder)[0] == 0
    assert run(capsys, "label-source", "--project", folder)[1] == "Training and export use consensus labels.\n"
    code, out, _ = run(capsys, "label-source", "adjudicated", "--project", folder)
    assert code == 0 and "now use adjudicated, else consensus labels" in out
    with open_project(folder) as project:
        assert project.settings().label_source == "adjudicated"
    with pytest.raises(SystemExit) as exit_:
        main(["label-source", "majority", "--project", folder])
    assert exit_.value.code == 2 and capsys.readouterr().err.count("\n") == 1


@pytest.mark.parametrize("command", ["init", "readers", "assign", "status", "label-source"])
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0 and "usage:" in capsys.readouterr().out

"""Every bench script answers --help (and measures nothing doing so)."""
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BENCHES = sorted(path.name for path in (REPO / "bench").glob("*.py"))


def test_the_benches_are_found():
    assert "bench_pipeline.py" in BENCHES and len(BENCHES) >= 8


@pytest.mark.parametrize("bench", BENCHES)
def test_every_bench_answers_help(bench, tmp_path):
    shown = subprocess.run([sys.executable, str(REPO / "bench" / bench), "--help"], capture_output=True, text=True,
                           cwd=tmp_path, timeout=120, env={"OMP_NUM_THREADS": "1", "QT_QPA_PLATFORM": "offscreen",
                                                           "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert shown.stdout.startswith("usage:") and "--help" in shown.stdout
    assert not (tmp_path / "bench").exists()   # nothing measured, nothing written

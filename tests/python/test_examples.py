"""The examples README shows run and do what they say."""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_quickstart_runs():
    out = subprocess.run([sys.executable, os.path.join(ROOT, "python", "examples", "quickstart.py")],
                         capture_output=True, text=True, timeout=60, env=dict(os.environ))
    assert out.returncode == 0, out.stderr
    assert "from 3 processes" in out.stdout
    # 3 workers x (1000 sends + up to 4 reserved records)
    n = int(out.stdout.split()[1])
    assert 3003 <= n <= 3012, out.stdout


def test_event_loop_example_runs():
    out = subprocess.run([sys.executable, os.path.join(ROOT, "python", "examples", "event_loop.py")],
                         capture_output=True, text=True, timeout=60, env=dict(os.environ))
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:2] == ["asyncio: received 40000 records from 2 processes",
                                          "select: received 40000 records"], out.stdout

"""The sdist carries everything needed to build, and builds on its own."""
import os
import subprocess
import sys
import tarfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.timeout(240)
def test_sdist_contains_the_c_core_and_builds(tmp_path):
    if not os.path.exists(os.path.join(ROOT, "setup.py")):
        pytest.skip("not running from a source checkout")
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "setup.py", "-q", "egg_info", "--egg-base", str(tmp_path), "sdist", "--dist-dir", str(dist)],
        cwd=ROOT, check=True, capture_output=True, timeout=120,
    )
    (sdist,) = dist.iterdir()
    with tarfile.open(sdist) as tf:
        names = {n.split("/", 1)[1] for n in tf.getnames() if "/" in n}
        tf.extractall(tmp_path / "src")
    core = {f for f in os.listdir(os.path.join(ROOT, "csrc")) if f.endswith((".c", ".h"))}
    assert {"csrc/" + f for f in core} <= names
    ext = {f for f in os.listdir(os.path.join(ROOT, "python", "ringmpsc")) if f.endswith((".c", ".h"))}
    assert ext and {"python/ringmpsc/" + f for f in ext} <= names
    assert {"csrc/include/ringmpsc.h", "python/ringmpsc/__init__.py",
            "python/ringmpsc/__init__.pyi", "python/ringmpsc/py.typed", "python/ringmpsc/__main__.py",
            "setup.py", "pyproject.toml", "MANIFEST.in"} <= names
    # Build a wheel from the unpacked sdist alone (no checkout around it).
    (srcdir,) = (tmp_path / "src").iterdir()
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-build-isolation", "--no-deps", "-w", str(wheels),
         str(srcdir)],
        check=True, capture_output=True, timeout=180,
    )
    (whl,) = wheels.iterdir()
    import zipfile

    with zipfile.ZipFile(whl) as zf:
        wnames = zf.namelist()
        meta = zf.read([n for n in wnames if n.endswith(".dist-info/METADATA")][0]).decode()
    assert any(n.startswith("ringmpsc/_ringmpsc") and n.endswith(".so") for n in wnames)
    assert "ringmpsc/py.typed" in wnames and "ringmpsc/__init__.pyi" in wnames
    # `pip install .[test]` pulls the test tools in.
    assert "Provides-Extra: test" in meta
    assert 'Requires-Dist: pytest; extra == "test"' in meta
    assert 'Requires-Dist: hypothesis; extra == "test"' in meta

"""What `pip install ringmpsc` gets: the sdist carries everything needed to build and
builds on its own; the wheel built from it (make wheel: scripts/build-wheel.sh) has a
manylinux tag and works in a fresh virtual environment with nothing from the checkout."""
import os
import subprocess
import tarfile
import zipfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD_WHEEL = os.path.join(ROOT, "scripts", "build-wheel.sh")
# The interpreter scripts/build-wheel.sh builds with (the wheel is for its version).
VENV_PYTHON = os.path.join(ROOT, "build", "venv", "bin", "python")
QUICKSTART = os.path.join("python", "examples", "quickstart.py")


def run(cmd, timeout, **kw):
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    assert out.returncode == 0, "%s exited %d:\n%s\n%s" % (cmd, out.returncode, out.stdout[-4000:], out.stderr[-4000:])
    return out


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    """scripts/build-wheel.sh, run once for this module: (sdist, repaired wheel)."""
    if not os.path.exists(os.path.join(ROOT, "setup.py")) or not os.path.exists(BUILD_WHEEL):
        pytest.skip("not running from a source checkout")
    out = tmp_path_factory.mktemp("dist")
    printed = run([BUILD_WHEEL, str(out)], timeout=360).stdout
    (sdist,) = out.glob("ringmpsc-*.tar.gz")
    (wheel,) = out.glob("ringmpsc-*.whl")
    assert printed.splitlines()[-1] == "wheel: %s" % wheel
    return sdist, wheel


@pytest.mark.timeout(400)
def test_sdist_contains_the_c_core_and_builds(dist):
    sdist, wheel = dist
    with tarfile.open(sdist) as tf:
        names = {n.split("/", 1)[1] for n in tf.getnames() if "/" in n}
    core = {f for f in os.listdir(os.path.join(ROOT, "csrc")) if f.endswith((".c", ".h"))}
    assert {"csrc/" + f for f in core} <= names
    ext = {f for f in os.listdir(os.path.join(ROOT, "python", "ringmpsc")) if f.endswith((".c", ".h"))}
    assert ext and {"python/ringmpsc/" + f for f in ext} <= names
    assert {"csrc/include/ringmpsc.h", "python/ringmpsc/__init__.py",
            "python/ringmpsc/__init__.pyi", "python/ringmpsc/py.typed", "python/ringmpsc/__main__.py",
            "setup.py", "pyproject.toml", "MANIFEST.in", "LICENSE", "README.md", QUICKSTART} <= names
    # The wheel was built from the sdist alone (pip unpacks it, no checkout around it).
    with zipfile.ZipFile(wheel) as zf:
        wnames = zf.namelist()
        meta = zf.read([n for n in wnames if n.endswith(".dist-info/METADATA")][0]).decode()
    assert any(n.startswith("ringmpsc/_ringmpsc") and n.endswith(".so") for n in wnames)
    assert "ringmpsc/py.typed" in wnames and "ringmpsc/__init__.pyi" in wnames
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in wnames)
    headers, _, body = meta.partition("\n\n")
    headers = headers.splitlines()
    # PEP 639: an SPDX expression, not the License: free text of the table form.
    assert "License-Expression: MIT" in headers
    assert "License-File: LICENSE" in headers
    assert not any(h.startswith("License:") for h in headers)
    # README.md is the description PyPI shows.
    assert "Description-Content-Type: text/markdown" in headers
    with open(os.path.join(ROOT, "README.md")) as f:
        assert body.strip() == f.read().strip()
    assert "Project-URL: Source, https://github.com/ringmpsc/ringmpsc" in headers
    # `pip install .[test]` pulls the test tools in.
    assert "Provides-Extra: test" in headers
    assert 'Requires-Dist: pytest; extra == "test"' in headers
    assert 'Requires-Dist: hypothesis; extra == "test"' in headers


@pytest.mark.timeout(400)
def test_wheel_is_manylinux_and_runs_the_quickstart_in_a_fresh_venv(dist, tmp_path):
    _, wheel = dist
    # name-version-python-abi-platform(s).whl: auditwheel repair gave it a manylinux tag.
    platforms = wheel.name[:-len(".whl")].split("-")[-1].split(".")
    assert platforms and all(p.startswith("manylinux") for p in platforms), wheel.name
    venv = tmp_path / "venv"
    run([VENV_PYTHON, "-m", "venv", str(venv)], timeout=120)
    py = str(venv / "bin" / "python")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")}
    run([py, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-index", "--no-deps", str(wheel)],
        timeout=120, env=env)
    # From outside the checkout, so its python/ringmpsc cannot be the one imported.
    where = run([py, "-c", "import ringmpsc; print(ringmpsc.__file__)"], timeout=30, cwd=tmp_path, env=env)
    assert where.stdout.strip().startswith(str(venv) + os.sep), where.stdout
    out = run([py, os.path.join(ROOT, QUICKSTART)], timeout=60, cwd=tmp_path, env=env)
    assert "from 3 processes" in out.stdout, out.stdout

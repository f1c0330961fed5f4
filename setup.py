"""Build the ringmpsc._ringmpsc extension straight from the C core in csrc/.

Metadata lives in pyproject.toml; this file only describes the extension, so that
`pip install .` needs no system-wide libringmpsc.
"""
import glob
import os

from setuptools import Extension, setup

HERE = os.path.dirname(os.path.abspath(__file__))
os.chdir(HERE)  # setuptools wants source paths relative to setup.py
os.makedirs("build/python", exist_ok=True)  # egg_base below must exist

core = sorted(glob.glob("csrc/*.c"))
if not core:
    raise SystemExit("setup.py: csrc/*.c not found (the C core must ship with the sources)")

ext = Extension(
    "ringmpsc._ringmpsc",
    sources=core + sorted(glob.glob("python/ringmpsc/*.c")),
    include_dirs=["csrc/include", "csrc"],
    define_macros=[("_GNU_SOURCE", None)],
    extra_compile_args=["-std=c11", "-O2", "-fvisibility=hidden", "-Wall", "-Wno-unused-parameter",
                        "-Wno-missing-field-initializers"],
    # Calls from the extension to the core bind inside it, never to another
    # libringmpsc that happens to be loaded in the process.
    extra_link_args=["-Wl,-Bsymbolic"],
    libraries=["pthread"],
    depends=sorted(glob.glob("csrc/*.h") + glob.glob("csrc/include/*.h") + glob.glob("python/ringmpsc/*.h")),
)

setup(
    ext_modules=[ext],
    # Keep setuptools' intermediate files, egg-info included, under build/: nothing
    # generated lands in the source tree.
    options={"build": {"build_base": "build/python"}, "egg_info": {"egg_base": "build/python"}},
)

"""Build script for rnnkit's optional native engine (everything else is in pyproject.toml).

The C++ extension ``rnnkit.engine._native`` is optional: if there is no compiler or the
build fails, installation still succeeds and ``rnnkit.engine.available()`` is False.
"""

import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

CSRC = "src/rnnkit/engine/csrc"


class OptionalBuildExt(build_ext):
    """build_ext that reports a failed native build instead of failing the install."""

    def run(self):
        try:
            super().run()
        except Exception as error:  # any build failure means "no engine"
            self._warn(error)

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as error:
            self._warn(error)

    @staticmethod
    def _warn(error):
        print(
            f"WARNING: rnnkit native engine not built ({error}); rnnkit will use torch's "
            "recurrent kernels instead.",
            file=sys.stderr,
        )


def native_extension():
    if sys.platform == "win32":
        args = ["/O2", "/std:c++17"]
    else:
        args = ["-O3", "-std=c++17", "-fno-math-errno", "-fvisibility=hidden", "-Wall"]
    return Extension(
        "rnnkit.engine._native",
        sources=[
            f"{CSRC}/engine.cpp",
            f"{CSRC}/kernels_generic.cpp",
            f"{CSRC}/kernels_avx2.cpp",
            f"{CSRC}/kernels_avx512.cpp",
        ],
        depends=[f"{CSRC}/{name}" for name in ("engine.h", "isa_unit.h", "kernels_impl.h")],
        extra_compile_args=args,
        language="c++",
        optional=True,
    )


setup(ext_modules=[native_extension()], cmdclass={"build_ext": OptionalBuildExt})

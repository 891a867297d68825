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


def torch_build_flags():
    """Include/library paths and ABI define of the installed torch: the boundary
    (csrc/boundary.cpp) reads tensors through torch's C++ API to check them."""
    import torch
    from torch.utils import cpp_extension

    abi = int(torch._C._GLIBCXX_USE_CXX11_ABI)
    return {
        "include_dirs": cpp_extension.include_paths(),
        "library_dirs": cpp_extension.library_paths(),
        "libraries": ["c10", "torch", "torch_cpu", "torch_python"],
        "define_macros": [("_GLIBCXX_USE_CXX11_ABI", str(abi))],
        "runtime_library_dirs": [] if sys.platform == "win32" else cpp_extension.library_paths(),
    }


def native_extension():
    if sys.platform == "win32":
        args = ["/O2", "/std:c++20"]
    else:
        # Python's own CFLAGS carry -fwrapv: with it an int index such as 2 * n + j may wrap,
        # so GCC keeps every lane's index apart instead of vectorising the loop (the int8
        # gate loops ran 2x slower). The kernels never rely on signed overflow.
        args = ["-O3", "-std=c++20", "-fno-math-errno", "-fno-wrapv", "-fvisibility=hidden",
                "-Wall"]
    try:
        torch_flags = torch_build_flags()
    except ImportError as error:  # torch must be installed first (make setup does)
        OptionalBuildExt._warn(error)
        return []
    return [Extension(
        "rnnkit.engine._native",
        sources=[
            f"{CSRC}/boundary.cpp",
            f"{CSRC}/engine.cpp",
            f"{CSRC}/kernels_generic.cpp",
            f"{CSRC}/kernels_avx2.cpp",
            f"{CSRC}/kernels_avx512.cpp",
            f"{CSRC}/int8.cpp",
            f"{CSRC}/int8_generic.cpp",
            f"{CSRC}/int8_avx2.cpp",
            f"{CSRC}/int8_vnni.cpp",
            f"{CSRC}/workspace.cpp",
        ],
        depends=[f"{CSRC}/{name}"
                 for name in ("boundary.h", "engine.h", "isa_unit.h", "kernels_impl.h", "int8.h",
                             "int8_impl.h", "int8_unit.h")],
        extra_compile_args=args,
        language="c++",
        optional=True,
        **torch_flags,
    )]


setup(ext_modules=native_extension(), cmdclass={"build_ext": OptionalBuildExt})

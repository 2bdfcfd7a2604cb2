"""Build recon and its C++/CUDA extension ``recon._C`` against the torch already installed.

    pip install .                                          # CPU kernels (+ CUDA when torch has CUDA and nvcc exists)
    pip install '.[eval,data,teachers]'                    # + the optional packages (see recon/_optional.py)
    pip install --no-build-isolation .                     # the same build, without pip's isolated build env
    FORCE_CUDA=1 TORCH_CUDA_ARCH_LIST="8.0;9.0" pip install --no-build-isolation .
    FORCE_ONLY_CPU=1 pip install --no-build-isolation .     # never compile CUDA
    RECON_NO_EXTENSION=1 pip install .                       # pure Python (reference ops, slow)

Environment: FORCE_CUDA, FORCE_ONLY_CPU, RECON_NO_EXTENSION, TORCH_CUDA_ARCH_LIST, NVCC_FLAGS,
CUDA_HOME, MAX_JOBS, RECON_DEBUG.
"""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import sys
import sysconfig

from setuptools import find_packages, setup

ROOT = os.path.dirname(os.path.abspath(__file__))
FIX = (
    "recon compiles its kernels against the torch you already have. Install torch first "
    "(e.g. `pip install torch`), then run `pip install --no-build-isolation .` "
    "(or `RECON_NO_EXTENSION=1 pip install .` for the slow pure-Python ops)."
)


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "0").lower() in ("1", "true", "yes", "on")


def _version() -> str:
    text = open(os.path.join(ROOT, "recon", "__init__.py")).read()
    return re.search(r'__version__ = "([^"]+)"', text).group(1)


def _extras() -> dict:
    """``extras_require`` from recon/_optional.py's EXTRAS table (read, not imported: no torch here)."""
    import ast

    tree = ast.parse(open(os.path.join(ROOT, "recon", "_optional.py")).read())
    node = next(n for n in tree.body if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", "") == "EXTRAS")
    table = ast.literal_eval(node.value)
    extras = {extra: sorted(mods.values()) for extra, mods in table.items()}
    extras["all"] = sorted({d for dists in extras.values() for d in dists})
    return extras


def _import_installed_torch():
    """Import the user's torch, also from inside pip's isolated build environment.

    Under build isolation pip hides the environment's site-packages, and a torch listed in
    build requirements would be a *different* torch than the one the extension runs with (an
    ABI mismatch). So torch is not a build requirement; if it cannot be imported we look in the
    interpreter's own site-packages, where `pip install .` will install recon.
    """
    try:
        import torch  # noqa: F401

        return torch
    except ImportError:
        pass
    for key in ("purelib", "platlib"):
        path = sysconfig.get_paths()[key]
        if os.path.isdir(os.path.join(path, "torch")) and path not in sys.path:
            sys.path.append(path)
    try:
        import torch  # noqa: F401

        print(f"recon: building against the installed torch {torch.__version__} ({torch.__file__})")
        return torch
    except ImportError as exc:
        raise SystemExit(f"error: torch is not importable ({exc}).\n{FIX}") from None


def _fix_cuda_env() -> None:
    """Make torch find the real toolkit and the CUDA headers it needs.

    * An `nvcc` on PATH may be a wrapper script (`exec /usr/local/cuda-X/bin/nvcc "$@"`), from
      which torch derives a wrong CUDA_HOME; resolve it to the toolkit the wrapper names.
    * ATen's CUDA headers include cusparse.h etc., which a minimal toolkit may lack while the
      `nvidia-*` wheels installed with torch ship them: add their include folders to CPATH.
    """
    if not os.environ.get("CUDA_HOME") and not os.environ.get("CUDA_PATH"):
        nvcc = shutil.which("nvcc")
        home = None
        if nvcc:
            real = os.path.realpath(nvcc)
            try:
                head = open(real, "rb").read(4096)
            except OSError:
                head = b""
            m = re.search(rb"(/[^\s\"']+)/bin/nvcc", head) if head.startswith(b"#!") else None
            if m:
                home = m.group(1).decode()
            elif os.path.basename(os.path.dirname(real)) == "bin":
                home = os.path.dirname(os.path.dirname(real))
        if home is None and os.path.exists("/usr/local/cuda/bin/nvcc"):
            home = "/usr/local/cuda"
        if home and os.path.exists(os.path.join(home, "bin", "nvcc")):
            os.environ["CUDA_HOME"] = home
    includes = []
    for key in ("purelib", "platlib"):
        includes += glob.glob(os.path.join(sysconfig.get_paths()[key], "nvidia", "*", "include"))
        includes += glob.glob(os.path.join(sysconfig.get_paths()[key], "nvidia", "cu*", "*", "include"))
    if includes:
        old = [p for p in os.environ.get("CPATH", "").split(os.pathsep) if p]
        os.environ["CPATH"] = os.pathsep.join(old + sorted(set(includes) - set(old)))


def _extensions():
    if _env_flag("RECON_NO_EXTENSION"):
        print("recon: RECON_NO_EXTENSION=1 -> no compiled kernels; recon.ops uses the slow reference ops")
        return [], {}
    torch = _import_installed_torch()
    if not _env_flag("FORCE_ONLY_CPU") and torch.version.cuda is not None:
        _fix_cuda_env()  # before cpp_extension is imported: it reads CUDA_HOME once, at import
    from torch.utils import cpp_extension

    force_cuda = _env_flag("FORCE_CUDA")
    only_cpu = _env_flag("FORCE_ONLY_CPU")
    if force_cuda and only_cpu:
        raise SystemExit("error: FORCE_CUDA=1 and FORCE_ONLY_CPU=1 contradict each other; set one.")
    with_cuda = False
    if not only_cpu and torch.version.cuda is not None:
        have_nvcc = cpp_extension.CUDA_HOME is not None
        with_cuda = force_cuda or (have_nvcc and torch.cuda.is_available())
        if force_cuda and not have_nvcc:
            raise SystemExit("error: FORCE_CUDA=1 but no CUDA toolkit (nvcc) was found; set CUDA_HOME.")
    elif force_cuda:
        raise SystemExit(
            f"error: FORCE_CUDA=1 but torch {torch.__version__} is a CPU-only build; "
            "install a CUDA build of torch first."
        )

    debug = _env_flag("RECON_DEBUG")
    # -g0 overrides the -g of Python's default CFLAGS: debug info triples compile time and .so size.
    opt = ["-O0", "-g"] if debug else ["-O3", "-g0"]
    # No -ffast-math: the kernels rely on NaN comparisons and on IEEE rounding identical to the
    # reference; -ffp-contract=off keeps the compiler from fusing the distance into an FMA.
    # The C++ standard is left to torch.utils.cpp_extension (torch >= 2.10 needs C++20), and so is
    # -DPy_LIMITED_API (set from py_limited_api=True).
    cxx = opt + ["-ffp-contract=off", "-fopenmp", "-Wno-psabi"]
    sources = sorted(glob.glob(os.path.join("csrc", "**", "*.cpp"), recursive=True))
    arch_list = os.environ.get("TORCH_CUDA_ARCH_LIST", "") if with_cuda else ""
    define_macros = [
        # Recorded by recon::build_info() so a binary can tell what it was built against.
        ("RECON_TORCH_VERSION", f'"{torch.__version__}"'),
        ("RECON_CUDA_ARCH_LIST", f'"{arch_list}"'),
    ]
    extra = {"cxx": cxx}
    if with_cuda:
        sources += sorted(glob.glob(os.path.join("csrc", "**", "*.cu"), recursive=True))
        define_macros.append(("WITH_CUDA", None))
        # nvcc rejects -g0; -lineinfo keeps profiler source mapping at no runtime cost.
        nvcc = (["-O0", "-g", "-G"] if debug else ["-O3"]) + ["--expt-relaxed-constexpr", "-lineinfo"]
        nvcc += os.environ.get("NVCC_FLAGS", "").split()
        extra["nvcc"] = nvcc
        ext_cls = cpp_extension.CUDAExtension
    else:
        ext_cls = cpp_extension.CppExtension
    ext = ext_cls(
        name="recon._C",
        sources=sources,
        include_dirs=[os.path.join(ROOT, "csrc")],
        define_macros=define_macros,
        extra_compile_args=extra,
        extra_link_args=["-fopenmp"],
        py_limited_api=True,
    )
    info = {
        "torch": torch.__version__,
        "cuda": torch.version.cuda if with_cuda else None,
        "with_cuda": with_cuda,
        "arch_list": os.environ.get("TORCH_CUDA_ARCH_LIST") if with_cuda else None,
    }
    print(f"recon: building recon._C with {info}")

    class BuildExt(cpp_extension.BuildExtension):
        """Records what the extension was built against, so `import recon` can check it."""

        def run(self):
            super().run()
            for base in {self.build_lib, ROOT if self.inplace else self.build_lib}:
                path = os.path.join(base, "recon", "_build_info.json")
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "w") as f:
                    json.dump(info, f)

    return [ext], {"build_ext": BuildExt.with_options(no_python_abi_suffix=True)}


ext_modules, cmdclass = _extensions()

setup(
    name="recon",
    version=_version(),
    description="Contrast with Reconstruct (ReCon, ICML 2023): point-cloud kernels, models and loops",
    packages=find_packages(include=["recon", "recon.*"]),
    package_data={"recon": ["_build_info.json", "configs/**/*.yaml"]},
    python_requires=">=3.9",
    # what `recon demo`, pretrain and finetune need; torch is the user's (see _import_installed_torch)
    install_requires=["numpy", "pyyaml", "tqdm", "safetensors", "pillow"],
    extras_require=_extras(),
    entry_points={"console_scripts": ["recon=recon.cli:main"]},
    ext_modules=ext_modules,
    cmdclass=cmdclass,
    options={"bdist_wheel": {"py_limited_api": "cp39"}} if ext_modules else {},
    zip_safe=False,
)

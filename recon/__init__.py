"""recon: Contrast with Reconstruct (ReCon, ICML 2023) for PyTorch point-cloud models."""

__version__ = "0.1.0"

# recon._C links against libc10/libtorch without an rpath: loading torch first puts them in the
# process, so `import recon._C` works on its own too.
import torch as _torch  # noqa: E402,F401

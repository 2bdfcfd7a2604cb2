"""recon: Contrast with Reconstruct (ReCon, ICML 2023) for PyTorch point-cloud models."""

__version__ = "0.1.0"

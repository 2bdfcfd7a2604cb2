"""Optional packages: a missing one stops with one line naming the ``recon[...]`` extra."""

import sys

import pytest

from recon._optional import EXTRAS, OptionalDependencyError, available, require
from recon.errors import ReconError


def test_missing_package_names_the_extra(monkeypatch):
    # as if not installed: also the submodules an earlier test may have imported (import finds those first)
    for name in [m for m in list(sys.modules) if m == "sklearn" or m.startswith("sklearn.")] + ["sklearn"]:
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(OptionalDependencyError, match=r"'scikit-learn' for the linear SVM: pip install 'recon\[eval\]'"):
        require("sklearn.svm", purpose="the linear SVM")
    err = OptionalDependencyError("x")
    assert isinstance(err, ReconError) and isinstance(err, ImportError)  # the CLI prints it as one line


def test_installed_package_is_returned_and_unknown_ones_name_pip():
    assert require("json").dumps([]) == "[]"
    with pytest.raises(OptionalDependencyError, match="pip install recon_no_such_pkg"):
        require("recon_no_such_pkg")
    assert available("json") and not available("recon_no_such_pkg")


def test_every_extra_is_in_setup_py():
    """setup.py reads its extras from recon/_optional.py: the table is the one place they are listed."""
    import ast
    import os

    src = open(os.path.join(os.path.dirname(__file__), "..", "..", "setup.py")).read()
    assert "extras_require=_extras()" in src and '"pillow"' in src  # pillow: the demo needs it
    tree = ast.parse(src)
    assert any(isinstance(n, ast.FunctionDef) and n.name == "_extras" for n in tree.body)
    assert set(EXTRAS) == {"teachers", "eval", "data", "tensorboard"}

"""``recon.cli.main`` on generated bad command lines: a non-zero exit and one readable line on stderr,
never a Python traceback. Only command lines that fail before any work starts are generated."""

from __future__ import annotations

import contextlib
import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recon.cli import main
from strategies import examples

words = st.text(st.characters(min_codepoint=97, max_codepoint=122), min_size=1, max_size=12)
bad_ints = st.sampled_from(["0", "abc", "1.5", "", "nan", "1e3", "0x10", "--", "٣"])
COMMANDS = ("demo", "pretrain", "finetune", "test", "zoo", "configs", "fewshot", "zeroshot", "svm", "visualize",
            "report")


def run(argv: list) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            rc = main(argv)
        except SystemExit as e:  # argparse's own usage errors exit with 2
            rc = e.code
    return rc, err.getvalue()


@st.composite
def bad_command_lines(draw, tmp: str) -> list:
    kind = draw(st.sampled_from(["unknown_command", "missing_config", "unknown_key", "not_key_value", "zoo_npoints",
                                 "zoo_classes", "test_without_ckpt", "test_missing_ckpt", "bad_option"]))
    if kind == "unknown_command":
        return [draw(words.filter(lambda w: w not in COMMANDS))] + draw(st.lists(words, max_size=2))
    if kind == "missing_config":
        return [draw(st.sampled_from(["pretrain", "finetune"])), f"{tmp}/{draw(words)}.yaml", "--out", tmp]
    if kind == "unknown_key":
        return ["finetune", "demo/finetune", f"zz{draw(words)}.{draw(words)}=1", "--out", tmp]  # never a real key
    if kind == "not_key_value":
        return ["pretrain", "demo/pretrain", draw(words), "--out", tmp]
    if kind == "zoo_npoints":
        return ["zoo", "--no-flops", "--npoints", draw(bad_ints)]
    if kind == "zoo_classes":
        return ["zoo", "--no-flops", "--num-classes", draw(st.sampled_from(["-1", "-7", "x", "2.5"]))]
    if kind == "test_without_ckpt":
        return ["test", "demo/finetune", "--out", tmp]
    if kind == "test_missing_ckpt":
        return ["test", "demo/finetune", "--ckpt", f"{tmp}/{draw(words)}.pth", "--out", tmp]
    # "--zz" is no prefix of a real option (argparse accepts abbreviations: "demo --q" would run the demo)
    return [draw(st.sampled_from(COMMANDS)), f"--zz{draw(words)}"]


@settings(max_examples=examples(30))
@given(st.data())
def test_bad_command_lines_fail_in_one_line(tmp_path_factory, data):
    tmp = str(tmp_path_factory.mktemp("cli"))
    argv = data.draw(bad_command_lines(tmp))
    rc, err = run(argv)
    assert rc not in (0, None), (argv, rc)
    assert "Traceback" not in err and err.strip(), (argv, err)


def test_zoo_negative_npoints_is_one_line():
    rc, err = run(["zoo", "--no-flops", "--npoints", "-5"])
    assert rc == 2 and "Traceback" not in err and "npoints" in err

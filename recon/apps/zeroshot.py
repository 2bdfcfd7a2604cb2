"""``recon zeroshot``: zero-shot classification with the text teacher (paper Table 3).

Each class gets one text feature: the SUM of the CLIP text features of the 60 official prompts; a
cloud's feature is ``ratio * text_proj(text query) + img_proj(img query)`` with the official
per-dataset ratio; the prediction is the class of highest cosine similarity (:mod:`recon.eval.zeroshot`).
The default evaluates the test split; the official code iterates train + test (the README's "*" rows),
offered as ``--merge-train``.
"""

from __future__ import annotations

import argparse
import logging

import torch

from recon.errors import ConfigError

from ._args import add_model_args, check_out_path, parse_kv, positive

__all__ = ["run"]

NAME = "zeroshot"
log = logging.getLogger("recon.apps")


def add_parser(sub):
    p = sub.add_parser(NAME, help="zero-shot classification with the text teacher (Table 3)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", required=True, help="modelnet10 | modelnet40 | scan_hardest | scan_objbg | "
                   "scan_objonly | synthetic")
    p.add_argument("--root", required=True, help="dataset root in the real format")
    p.add_argument("--checkpoint", default=None,
                   help="zero-shot pretraining checkpoint (CLIP ViT-B/32 image teacher; holds img_proj/text_proj)")
    add_model_args(p, "recon_base_zeroshot")
    p.add_argument("--text-teacher", default="ViT-B-32", help="CLIP text tower arch (ViT-B-32 official; tiny for tests)")
    p.add_argument("--text-weights", default=None,
                   help="CLIP text-tower weights: openai (default for ViT-B-32), a file, or random "
                        "(explicitly random, for tests); default $RECON_TEXT_TEACHER, else the arch's official source")
    p.add_argument("--single-prompt", type=int, nargs="?", const=0, default=None, metavar="J",
                   help="use only prompt J of the 60 (default 0 = '<class>.'): the no-ensemble row")
    p.add_argument("--merge-train", action="store_true",
                   help="evaluate train + test, the official '*' setting (default: test split only)")
    p.add_argument("--ratio", type=float, default=None, help="override the official text-query ratio")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seed", type=int, default=0, help="seed of the random point subsets")
    p.add_argument("--out", default=None, help="write the result JSON here")
    p.set_defaults(_run=run)
    return p


def run(dataset: str, root: str, checkpoint: str | None = None, model: str = "recon_base_zeroshot",
        model_args=(), data_args=(), text_teacher: str = "ViT-B-32", text_weights: str | None = None,
        single_prompt: int | None = None, merge_train: bool = False, ratio: float | None = None,
        batch_size: int = 32, seed: int = 0, out: str | None = None) -> dict:
    """Run zero-shot; prints a line and returns (and with ``out`` writes) the result record."""
    import recon.teachers
    from recon.data.registry import build_dataset, check_name, load_npoints
    from recon.data.transforms import default_point_all
    from recon.eval.frozen import frozen_model, iterate_batches
    from recon.eval.results import write_result
    from recon.eval.zeroshot import (ZEROSHOT_GROUPING, class_names, class_text_features, evaluate,
                                     load_projections, zeroshot_ratio)

    key = check_name(dataset)
    if checkpoint is None:
        raise ConfigError("checkpoint: zero-shot needs a pretraining checkpoint holding img_proj/text_proj")
    positive(batch_size, "--batch-size")
    check_out_path(out)
    npoints, num_group, group_size = ZEROSHOT_GROUPING[key]
    ratio = zeroshot_ratio(key) if ratio is None else float(ratio)
    splits = ["train", "test"] if merge_train else ["test"]
    data_kw = parse_kv(data_args, "data-args")
    # the official sampling FPS's to point_all first: ModelNet's FPS-ordered files give that prefix
    n_load = load_npoints(key, default_point_all(npoints))
    datasets = [build_dataset(key, root, s, npoints=n_load, **data_kw) for s in splits]
    names = class_names(key, datasets[0])
    net = frozen_model(model, checkpoint, seed=seed, npoints=npoints, num_group=num_group, group_size=group_size,
                       ratio=ratio, **parse_kv(model_args, "model-args"))
    load_projections(net, checkpoint)
    teacher = recon.teachers.build_text_teacher(text_teacher, text_weights)
    text_feats = class_text_features(teacher.encode, names, single_prompt=single_prompt)
    gen = torch.Generator().manual_seed(seed)

    def batches():
        for ds in datasets:
            yield from iterate_batches(ds, batch_size)

    res = evaluate(net, batches(), text_feats, ratio, npoints, generator=gen)
    setting = ("merged train+test (*)" if merge_train else "test") + (
        f", single prompt {single_prompt}" if single_prompt is not None else ", 60-prompt sum")
    result = dict(protocol="zeroshot", dataset=key, setting=setting, value=res["acc"], std=None, n=res["n"],
                  model=model, checkpoint=checkpoint, ratio=ratio, merge_train=bool(merge_train),
                  single_prompt=single_prompt, per_class=res["per_class"], classes=names, notes=[])
    print(f"zero-shot {key} [{setting}]: {res['acc']:.2f}% ({res['correct']}/{res['n']}), ratio {ratio}")
    if out:
        write_result(out, result)
        log.info(f"wrote {out}")
    return result

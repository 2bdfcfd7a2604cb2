"""Runtime of ShapeNetPart part segmentation on this CPU: measured step rates, extrapolated 300 epochs.

    python benchmarks/partseg_runtime.py --json partseg_runtime.json      # ~10 min on a busy 2-core box

The official-size models (``recon_base_partseg``, ``pointmae_base_partseg``, random weights: timing
does not depend on them) on random clouds of 2048 points:

* ``train``: one optimizer step of the part-seg loop at batch 16 (per-cloud scale/shift, forward,
  NLL over all points, backward, grad clip 10, AdamW over the official parameter groups);
* ``eval``: one no-grad forward + masked arg-max + IoU bookkeeping at batch 32 (official test batch
  of ReCon; Point-MAE uses 16, the per-shape cost is what is extrapolated).

Each rate is wall-clock and CPU-time (user + system of this process) seconds per batch, with the
1-minute load average. The extrapolation multiplies the per-sample cost by the official split sizes:
300 epochs of trainval (14,007 shapes, batch 16, last batch dropped) plus a test pass (2,874
shapes) after every epoch (official protocol), or train (12,137) + val (1,870) per epoch and one
test pass (recon's honest protocol). Prints a table, writes JSON; never fails on speed.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch

SPLITS = {"train": 12137, "val": 1870, "test": 2874}
EPOCHS = 300


def _cpu() -> float:
    t = os.times()
    return t.user + t.system


def _time(fn, repeats: int) -> dict:
    fn()  # warm-up
    walls, cpus = [], []
    for _ in range(repeats):
        w, c = time.perf_counter(), _cpu()
        fn()
        walls.append(time.perf_counter() - w)
        cpus.append(_cpu() - c)
    return {"wall_s": min(walls), "cpu_s": min(cpus), "repeats": repeats, "load1": os.getloadavg()[0]}


def measure(name: str, repeats: int, train_batch: int = 16, eval_batch: int = 32, npoints: int = 2048) -> dict:
    from recon.data.shapenetpart import PART_IDS
    from recon.engine.train_partseg import partseg_param_groups, partseg_step
    from recon.eval.miou import PartSegMeter
    from recon.models import create_model

    torch.manual_seed(0)
    model = create_model(name)
    mult = 10.0 if name.startswith("recon") else 1.0
    opt = torch.optim.AdamW(partseg_param_groups(model, 0.05, 1e-4, mult), lr=1e-4)
    step = partseg_step()
    parts = list(PART_IDS.values())

    def batch(b):
        cat = torch.randint(0, 16, (b,))
        seg = torch.stack([torch.tensor(parts[c])[torch.randint(0, len(parts[c]), (npoints,))] for c in cat])
        return {"points": torch.rand(b, npoints, 3) * 2 - 1, "label": cat, "seg": seg}

    tb, eb = batch(train_batch), batch(eval_batch)

    def train():
        model.train()
        loss = step(model, tb)["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        opt.step()

    def evaluate():
        model.eval()
        meter = PartSegMeter(parts)
        with torch.no_grad():
            meter.update(model(eb["points"], eb["label"]), eb["seg"], eb["label"])

    return {"train": {**_time(train, repeats), "batch": train_batch},
            "eval": {**_time(evaluate, repeats), "batch": eval_batch}}


def extrapolate(rates: dict, key: str = "cpu_s") -> dict:
    """Seconds of 300 epochs under both protocols from the per-sample costs."""
    tr = rates["train"][key] / rates["train"]["batch"]
    ev = rates["eval"][key] / rates["eval"]["batch"]
    trainval = SPLITS["train"] + SPLITS["val"]
    official = EPOCHS * ((trainval // 16) * 16 * tr + SPLITS["test"] * ev)
    honest = EPOCHS * ((SPLITS["train"] // 16) * 16 * tr + SPLITS["val"] * ev) + SPLITS["test"] * ev
    return {"official_s": official, "honest_s": honest}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=["recon_base_partseg", "pointmae_base_partseg"])
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    results = {"threads": torch.get_num_threads(), "torch": torch.__version__, "cpus": os.cpu_count(),
               "date": time.strftime("%Y-%m-%d"), "models": {}}
    print(f"{'model':<24}{'what':<7}{'batch':>6}{'wall s':>9}{'cpu s':>9}{'load':>6}"
          f"{'300 ep official (cpu)':>24}{'300 ep honest (cpu)':>22}")
    for name in args.models:
        rates = measure(name, args.repeats)
        ext = extrapolate(rates)
        results["models"][name] = {**rates, "extrapolated": ext}
        for what in ("train", "eval"):
            r = rates[what]
            tail = (f"{ext['official_s'] / 86400:>21.1f} d{ext['honest_s'] / 86400:>19.1f} d" if what == "train"
                    else "")
            print(f"{name:<24}{what:<7}{r['batch']:>6}{r['wall_s']:>9.2f}{r['cpu_s']:>9.2f}{r['load1']:>6.1f}{tail}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

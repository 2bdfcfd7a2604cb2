import numpy as np
import pytest
import torch

from recon.eval import visualize as vis
from eval_helpers import blobs


def _ply(path, pts, fmt):
    header = (f"ply\nformat {fmt} 1.0\ncomment made by a test\nelement vertex {len(pts)}\n"
              "property float x\nproperty float y\nproperty float z\nproperty uchar red\n"
              "element face 0\nproperty list uchar int vertex_indices\nend_header\n")
    with open(path, "wb") as f:
        f.write(header.encode())
        if fmt == "ascii":
            f.write("".join(f"{x} {y} {z} 7\n" for x, y, z in pts).encode())
        else:
            order = "<" if fmt == "binary_little_endian" else ">"
            rec = np.zeros(len(pts), dtype=[("x", order + "f4"), ("y", order + "f4"), ("z", order + "f4"), ("r", "u1")])
            rec["x"], rec["y"], rec["z"] = pts.T
            f.write(rec.tobytes())


def test_read_points_all_formats(tmp_path):
    pts = np.random.default_rng(0).normal(size=(20, 3)).astype(np.float32)
    np.save(tmp_path / "a.npy", pts)
    np.savetxt(tmp_path / "b.txt", np.concatenate([pts, pts], 1), delimiter=",")  # x,y,z,nx,ny,nz rows
    np.savetxt(tmp_path / "c.txt", pts)
    for fmt in ("ascii", "binary_little_endian", "binary_big_endian"):
        _ply(tmp_path / f"{fmt}.ply", pts, fmt)
    for name in ("a.npy", "b.txt", "c.txt", "ascii.ply", "binary_little_endian.ply", "binary_big_endian.ply"):
        np.testing.assert_allclose(vis.read_points(tmp_path / name), pts, rtol=1e-5, err_msg=name)
    (tmp_path / "d.obj").write_text("v 1 2 3\n")
    with pytest.raises(ValueError, match=".npy, .txt or .ply"):
        vis.read_points(tmp_path / "d.obj")
    np.save(tmp_path / "e.npy", np.zeros((5, 2)))
    with pytest.raises(ValueError, match="N, >=3"):
        vis.read_points(tmp_path / "e.npy")
    with pytest.raises(FileNotFoundError):
        vis.read_points(tmp_path / "none.ply")


def test_token_weights_reach_their_groups():
    pts = torch.tensor([[0.0, 0, 0], [0.1, 0, 0], [5.0, 0, 0], [5.1, 0, 0], [9.0, 0, 0]])
    center = torch.tensor([[0.0, 0, 0], [5.0, 0, 0]])
    w = vis.token_to_points(pts, center, torch.tensor([0.2, 0.8]), group_size=2)
    # groups {0,1} and {2,3}; point 4 is in no group and takes its nearest centre's weight
    assert w.tolist() == pytest.approx([0.2, 0.2, 0.8, 0.8, 0.8])
    overlap = vis.token_to_points(pts[:2], center[:1].repeat(2, 1), torch.tensor([0.3, 0.6]), group_size=2)
    assert overlap.tolist() == pytest.approx([0.6, 0.6])  # the larger weight wins


def test_query_attention_layer_choice(standin):
    pts, _ = blobs(n_per_class=1, npoints=128)
    mean = vis.query_attention(standin, pts[0])
    last = vis.query_attention(standin, pts[0], layer=-1)
    assert mean["img"].shape == (16,) and mean["center"].shape == (16, 3)
    assert mean["img"].sum().item() == pytest.approx(1.0, abs=1e-5)
    assert not torch.allclose(mean["text"], last["text"])
    with pytest.raises(ValueError, match="layer"):
        vis.query_attention(standin, pts[0], layer=2)


def test_png_size_and_not_blank(standin, tmp_path):
    import matplotlib.image as mpimg

    pts, _ = blobs(n_per_class=1, npoints=300)
    path = vis.visualize(standin, pts[1].numpy(), tmp_path / "att.png", npoints=128, group_size=8, title="t")
    img = mpimg.imread(path)
    assert img.shape[:2] == (600, 1200)
    rgb = img[..., :3]
    assert rgb.std() > 0.01  # not a blank canvas
    # both panels carry coloured points (not only white/grey): saturation in each half
    sat = rgb.max(-1) - rgb.min(-1)
    assert (sat[:, :600] > 0.3).sum() > 50 and (sat[:, 600:] > 0.3).sum() > 50
    with pytest.raises(ValueError, match="at least 1024"):
        vis.visualize(standin, pts[1].numpy(), tmp_path / "x.png", npoints=1024)

"""The GPU path (pytest -m cuda): training in bf16 and fp32, NAL's loss under autocast, kill and resume, a CUDA
checkpoint resumed on the CPU, the device-resident loader, and every paper recipe, on a CUDA device.

Skipped with the reason where torch sees no CUDA device. tools/gpu_evidence.py runs these first on a lent GPU;
its rehearsal on the CPU runs them with NALKIT_TEST_DEVICE=cpu (the same code on the CPU device).
"""

import importlib.util
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from nalkit.loader import DeviceLoader
from nalkit.losses import nal_loss
from nalkit.records import read_metrics
from nalkit.results import load_arrays
from nalkit.train import train

from test_train import TIMING, tiny

#: the device under test: CUDA, or the CPU for the evidence script's rehearsal (NALKIT_TEST_DEVICE=cpu)
DEVICE = os.environ.get("NALKIT_TEST_DEVICE", "cuda")
pytestmark = [pytest.mark.cuda, pytest.mark.usefixtures("fashion_mnist"),
              pytest.mark.skipif(DEVICE == "cuda" and not torch.cuda.is_available(),
                                 reason="no CUDA device: torch.cuda.is_available() is False here")]
#: bf16 keeps 8 bits of mantissa: NAL's loss (computed in float32 from bf16 logits) within 2 % of fp32's, its
#: gradient within 5 % (relative to the gradient's largest entry)
BF16_LOSS_RTOL, BF16_GRAD_RTOL = 0.02, 0.05
#: a resumed CUDA run repeats the uninterrupted one up to cuDNN's nondeterministic kernels: test accuracy within
#: this many points after 4 epochs (on the CPU it is bit-identical, tests/test_train.py)
RESUME_ATOL = 0.03
RECIPES = sorted(p.stem for p in (Path(__file__).resolve().parents[1] / "configs" / "paper").glob("*.yaml"))


def cuda_tiny(method="nal", **extra):
    return tiny(method, **{"run.device": DEVICE, **extra})


@pytest.mark.parametrize("amp", [True, False], ids=["bf16", "fp32"])
def test_a_short_run_trains_on_cuda(tmp_path, amp):
    # NAL's loss is not a learning curve (its -lambda log tau term and the mixture move with tau), and the tiny
    # model fits slowly under it: NAL must stay finite; CE must learn
    for method in ("nal", "ce"):
        run = train(cuda_tiny(method, **{"run.amp": amp, "optim.epochs": 6, "run.snapshot_epochs": [1, 6]}),
                    results_dir=tmp_path)
        m = read_metrics(run)
        env = json.loads((run / "environment.json").read_text())
        assert env["device"].startswith(DEVICE) and (env.get("cuda") or DEVICE != "cuda")
        assert np.isfinite(m.loss).all() and np.isfinite(m.test_acc.dropna()).all(), method
        if method == "ce":
            assert m.loss.iloc[-1] < m.loss.iloc[0] and m.train_acc_noisy.iloc[-1] > m.train_acc_noisy.iloc[0] + 0.05


def test_nal_loss_and_gradients_under_bf16_match_fp32():
    torch.manual_seed(0)
    z = torch.randn(256, 10, device=DEVICE) * 3
    s = torch.randn(256, device=DEVICE) * 2
    q = torch.softmax(torch.randn(256, 10, device=DEVICE) * 3, dim=1)
    grads = {}
    for amp in (False, True):
        zz, ss = z.clone().requires_grad_(True), s.clone().requires_grad_(True)
        with torch.autocast(DEVICE, dtype=torch.bfloat16, enabled=amp):
            loss = nal_loss(zz * 1.0, ss * 1.0, q, lam=2.0)
        assert loss.dtype == torch.float32
        loss.backward()
        grads[amp] = (float(loss), zz.grad.clone(), ss.grad.clone())
    (l32, gz32, gs32), (l16, gz16, gs16) = grads[False], grads[True]
    assert abs(l16 - l32) <= BF16_LOSS_RTOL * abs(l32)
    assert (gz16 - gz32).abs().max() <= BF16_GRAD_RTOL * gz32.abs().max()
    assert (gs16 - gs32).abs().max() <= BF16_GRAD_RTOL * gs32.abs().max()


def test_a_run_killed_and_resumed_on_cuda_repeats_the_uninterrupted_one(tmp_path):
    full = train(cuda_tiny(), results_dir=tmp_path / "a")
    train(cuda_tiny(), results_dir=tmp_path / "b", stop_after_epoch=2)
    resumed = train(cuda_tiny(), results_dir=tmp_path / "b")
    a, b = (read_metrics(r).drop(columns=TIMING) for r in (full, resumed))
    assert list(a.epoch) == list(b.epoch)
    np.testing.assert_allclose(a.test_acc.dropna(), b.test_acc.dropna(), atol=RESUME_ATOL)


def test_a_checkpoint_written_on_cuda_resumes_on_the_cpu(tmp_path):
    cfg = cuda_tiny()
    train(cfg, results_dir=tmp_path, stop_after_epoch=2)
    run_dir = tmp_path / cfg.run_name()
    assert list(run_dir.glob("ckpt-*.pt"))
    # the same run, its device a knob outside the config hash: resume it on the CPU
    done = train(cfg.apply_overrides(["run.device=cpu"]), run_dir=run_dir)
    assert json.loads((done / "status.json").read_text())["state"] == "complete"
    assert json.loads((done / "environment.json").read_text())["device"] == "cpu"
    assert np.isfinite(load_arrays(done)["final_loss"]).all()


def test_the_device_loader_gives_the_same_batches_on_cuda_as_on_the_cpu():
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (300, 3, 32, 32), dtype=torch.uint8, generator=g)
    labels = torch.randint(0, 10, (300,), generator=g)
    kw = dict(batch_size=64, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25), shuffle=True, augment=True, seed=3)
    cpu, gpu = DeviceLoader(images, labels, device="cpu", **kw), DeviceLoader(images, labels, device=DEVICE, **kw)
    for (x1, y1, i1), (x2, y2, i2) in zip(cpu, gpu):
        assert torch.equal(i1, i2.cpu()) and torch.equal(y1, y2.cpu())
        torch.testing.assert_close(x1, x2.cpu(), rtol=0, atol=1e-5)


@pytest.mark.parametrize("name", RECIPES)
def test_every_paper_recipe_trains_a_few_steps_on_cuda(name, tmp_path):
    from test_paper_recipes import ROOT, run_recipe

    if name == "webvision" and importlib.util.find_spec("timm") is None:
        pytest.skip("timm is not installed: InceptionResNetV2 is timm's (pip install 'nalkit[models]')")
    cfg, accs = run_recipe(ROOT / "configs" / "paper" / f"{name}.yaml", tmp_path, [f"run.device={DEVICE}"])
    assert cfg.run.device == DEVICE and all(0 <= v <= 1 for v in accs.values())

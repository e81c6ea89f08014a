"""Checks that need a CUDA GPU: CUDA graphs, torch.compile modes and gpu_pool on a real device.

Skipped where CUDA is absent (CI); the device session script (scripts/device_session.sh) runs them on
the lent GPU. Training checks use the real data at small sizes, as on CPU."""

from __future__ import annotations

import contextlib
import copy
from pathlib import Path

import pytest
import torch
from runs import compose_train

from fmnist.models.factory import build_model
from fmnist.train.graphs import CudaGraphModel, capture_training_step
from fmnist.train.loop import train_one_epoch
from fmnist.train.run import train

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

SMALL = ["model.width=16", "trainer.epochs=2", "data.subset=4096", "logger=none", "seed=3"]


def _cfg(data_dir: Path, *overrides: str):
    return compose_train(data_dir, *SMALL, *overrides)


@pytest.fixture
def exact_fp32():
    """fp32 convolutions without TF32 and with cuDNN's deterministic kernels, for comparing a graphed step with an
    eager one: TF32 (on by default for cuDNN convolutions) rounds to ~1e-3, and six SGD steps of a BatchNorm net
    amplify that to a quarter of the update itself (seen on the H200), so only exact fp32 can tell a bug from noise."""
    saved = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32,
             torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    yield
    (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32,
     torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark) = saved


def test_capture_restores_state_and_matches_eager_step(real_resplit_dir: Path, exact_fp32: None) -> None:
    """Capturing leaves weights, BatchNorm statistics and the CUDA RNG as they were, and one replayed
    training step gives the eager step's logits and gradients."""
    torch.manual_seed(0)
    model = build_model(_cfg(real_resplit_dir)).cuda()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.cuda.get_rng_state()
    graphed = capture_training_step(model, 64, (1, 28, 28), "fp32", channels_last=False)
    assert isinstance(graphed, CudaGraphModel)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert torch.equal(rng, torch.cuda.get_rng_state())

    x = torch.randn(64, 1, 28, 28, device="cuda")
    grads = []
    for run in (model, graphed):
        model.load_state_dict(before)
        run.train()
        model.zero_grad(set_to_none=True)
        logits = run(x)
        logits.float().sum().backward()
        grads.append(([p.grad.clone() for p in model.parameters()], logits.detach().clone()))
    (g_eager, out_eager), (g_graph, out_graph) = grads
    # loose enough for another cuDNN algorithm inside the graph; a stale input or weight is far off
    torch.testing.assert_close(out_graph, out_eager, rtol=2e-2, atol=2e-3)
    for a, b in zip(g_graph, g_eager):
        torch.testing.assert_close(a, b, rtol=2e-2, atol=2e-3)


def test_replayed_steps_follow_the_eager_ones_with_the_optimizer_and_schedule(real_resplit_dir: Path,
                                                                             exact_fp32: None) -> None:
    """Six steps of the trainer's loop with fused SGD (Nesterov, weight decay) and a per-step OneCycle schedule
    outside the graph: the graphed run ends with the eager run's weights, BatchNorm statistics and learning rate.
    A learning rate frozen into the graph, a stale weight or a lost buffer update moves a tensor by the order of its
    whole update; rounding noise stays a small fraction of it (on the CPU, a 1e-6 relative change of every gradient
    moved the first conv by 0.25 % of its six-step update, and a 1e-3 one by 7 %)."""
    torch.manual_seed(0)
    base = build_model(_cfg(real_resplit_dir)).cuda()
    batches = [(torch.randn(32, 1, 28, 28, device="cuda"), torch.randint(0, 10, (32,), device="cuda"))
               for _ in range(6)]
    ends = []
    for graphed in (False, True):
        model = copy.deepcopy(base)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4,
                                    fused=True)
        scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.1, total_steps=len(batches))
        runner = capture_training_step(model, 32, (1, 28, 28), "fp32", channels_last=False) if graphed else model
        train_one_epoch(runner, ((x, y, y) for x, y in batches), optimizer, scheduler, contextlib.nullcontext)
        ends.append(({k: v.clone() for k, v in model.state_dict().items()}, optimizer.param_groups[0]["lr"]))
    (eager, eager_lr), (graph, graph_lr) = ends
    assert graph_lr == eager_lr
    start = base.state_dict()
    assert all(not torch.equal(graph[k], start[k]) for k in start if k.endswith("weight"))  # every layer trained
    for key, value in eager.items():
        update = float((value.double() - start[key].double()).abs().max())
        torch.testing.assert_close(graph[key], value, rtol=0, atol=0.05 * update + 1e-6,
                                   msg=lambda m, k=key, u=update: f"{k} (largest eager update {u:.4g}): {m}")


def test_replays_draw_new_dropout_masks_and_update_batchnorm(real_resplit_dir: Path) -> None:
    """Dropout inside the graph draws a new mask at every replay (the CUDA RNG advances), and every replay moves the
    BatchNorm running statistics as an eager forward does."""
    torch.manual_seed(0)
    model = build_model(_cfg(real_resplit_dir, "model.dropout=0.5")).cuda()
    graphed = capture_training_step(model, 32, (1, 28, 28), "fp32", channels_last=False)
    tracked = {k: v.clone() for k, v in model.state_dict().items() if k.endswith("num_batches_tracked")}
    assert tracked
    graphed.train()
    x = torch.randn(32, 1, 28, 28, device="cuda")
    first, second = graphed(x).detach().clone(), graphed(x).detach().clone()
    assert not torch.equal(first, second)
    state = model.state_dict()
    assert all(int(state[k]) == int(v) + 2 for k, v in tracked.items())


def test_cuda_graph_training_matches_eager(real_resplit_dir: Path, tmp_path: Path) -> None:
    eager = train(_cfg(real_resplit_dir, "trainer.cuda_graphs=false"), tmp_path / "eager")
    graphs = train(_cfg(real_resplit_dir, "trainer.cuda_graphs=true"), tmp_path / "graphs")
    assert graphs["status"] == "completed" and graphs["cuda_graphs"] == "captured" and graphs["graph_capture_s"] > 0
    assert "cuda_graphs" not in eager
    assert graphs["best_val_acc"] == pytest.approx(eager["best_val_acc"], abs=0.03)  # bf16, cuDNN: not bitwise
    assert graphs["test_acc"] == pytest.approx(eager["test_acc"], abs=0.03)


def test_cuda_graphs_with_a_partial_last_batch_and_ema(real_resplit_dir: Path, tmp_path: Path) -> None:
    summary = train(_cfg(real_resplit_dir, "trainer.cuda_graphs=true", "trainer.drop_last=false",
                         "data.subset=4000", "trainer.ema_decay=0.99", "augment=strong"), tmp_path / "r")
    assert summary["status"] == "completed" and summary["test_acc"] > 0.5


@pytest.mark.parametrize("mode", ["default", "reduce-overhead"])
def test_compile_modes_train(real_resplit_dir: Path, tmp_path: Path, mode: str) -> None:
    summary = train(_cfg(real_resplit_dir, f"trainer.compile={mode}", "trainer.epochs=1"), tmp_path / mode)
    assert summary["status"] == "completed" and summary["test_acc"] > 0.5


def test_gpu_pool_runs_two_jobs_on_the_gpu(real_resplit_dir: Path, tmp_path: Path) -> None:
    """gpu_pool with K=2 on the real GPU: both jobs complete on CUDA, in one sweep folder."""
    import json
    import subprocess

    from runs import train_cmd

    proc = subprocess.run(
        train_cmd("-m", "hydra/launcher=gpu_pool", "hydra.launcher.jobs_per_gpu=2", f"data.dir={real_resplit_dir}",
                  f"hydra.sweep.dir={tmp_path / 'sweep'}", "model.width=16", "data.subset=4096", "logger=none",
                  "trainer.epochs=1", "seed=0,1"),
        cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    summaries = [json.loads(p.read_text()) for p in (tmp_path / "sweep").glob("*/summary.json")]
    assert len(summaries) == 2
    assert all(s["status"] == "completed" and s["device"].startswith("cuda") for s in summaries)

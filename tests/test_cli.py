"""The command line: help, Hydra's flags, each model's train -> eval -> sample, TensorBoard's own reader
on the event files, and one clear line for every bad input. Runs go through the console script's
entry point in this process (helpers.run_cli); a few run it as a real subprocess (exit codes,
stderr, DDP's re-launch)."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from helpers import read_metrics, run_cli, run_directory, run_subprocess

TINY_GAN = ["model.generator.mlp.hidden=[64,64]", "model.discriminator.mlp.hidden=[32,32]",
            "model.discriminator.mlp.dropout=0"]
TINY_FLOW = ["model.flow.vector.num_layers=4", "model.flow.vector.hidden=[32,32]",
             "model.flow.image.num_scales=1", "model.flow.image.hidden_channels=8", "model.flow.image.num_blocks=1"]
SHORT = ["trainer.max_steps=40", "trainer.val_check_interval=20", "trainer.log_every_n_steps=10",
         "callbacks.samples.every_n_steps=20", "callbacks.checkpoint.every_n_train_steps=20"]


def error_line(proc) -> str:
    """The last line on stderr, which must be the one-line error."""
    assert proc.returncode != 0, proc.stdout
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith("gen-runner: error: "), proc.stderr
    return line


def tb_tags(run_dir) -> dict:
    acc = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"images": 0, "scalars": 0})
    acc.Reload()
    return acc.Tags() | {"accumulator": acc}


# -- help and Hydra's flags -------------------------------------------------------------------------
def test_help_lists_commands_groups_and_options_without_importing_lightning():
    code = ("import sys; from gen_runner.cli import main; main(['--help']); "
            "print('HEAVY' if {'lightning', 'torch'} & set(sys.modules) else 'LIGHT')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().endswith("LIGHT")
    for word in ["train", "eval", "sample", "report", "model", "pacgan4", "realnvp", "model/objective", "ring8",
                 "ddp_cpu", "experiment", "debug", "budget"]:
        assert word in out


@pytest.mark.parametrize("args, message", [
    (["fit"], "unknown command 'fit'; choose one of: train, eval, sample"),
    (["train", "model=stylegan9"], "unknown model 'stylegan9'; choose one of: acgan, began, bigan,"),
    (["train", "data=cifar"], "unknown data 'cifar'; choose one of: binarized_digits,"),
    (["train", "--multirun", "model=gan,nope"], "unknown model 'nope'"),
])
def test_unknown_names_fail_listing_the_valid_ones(tmp_path, args, message):
    assert message in error_line(run_cli(*args, cwd=tmp_path, check=False))


def test_hydra_flags(tmp_path):
    job = run_cli("train", "model=gan", "data=ring8", "--cfg", "job", cwd=tmp_path).stdout
    assert "_target_: gen_runner.gans.module.GANModule" in job and "max_steps: 3000" in job
    tree = run_cli("train", "experiment=gan_ring8", "--info", "defaults-tree", cwd=tmp_path).stdout
    assert "experiment: gan_ring8" in tree and "model: gan" in tree
    line = "gen-runner train mod"
    env = {"COMP_LINE": line, "COMP_POINT": str(len(line))}
    completion = run_cli("-sc", "query=bash", cwd=tmp_path, env=env).stdout.split()
    assert {"model", "model."} & set(completion) and not any(c.startswith("data") for c in completion)
    assert not list(tmp_path.glob("outputs/train/*"))  # none of these ran a job


# -- train -> eval -> sample, one model at a time --------------------------------------------------
@pytest.fixture(scope="module")
def gan_run(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("gan")
    proc = run_cli("train", "experiment=gan_ring8", *TINY_GAN, *SHORT, "data.num_train=4000", cwd=cwd)
    return cwd, run_directory(proc, cwd), proc


def test_gan_train_writes_the_run_directory(gan_run):
    cwd, run, proc = gan_run
    assert run.parent.parent == cwd / "outputs" / "train" and run.parent.name == "gan_ring8"
    for f in [".hydra/config.yaml", "checkpoints/last.ckpt", "samples/train_final.png", "metrics.json", "train.log"]:
        assert (run / f).is_file(), f
    assert f"tensorboard --logdir outputs/train/gan_ring8/{run.name}/tensorboard" in proc.stdout
    ckpt = torch.load(run / "checkpoints/last.ckpt", weights_only=True)
    assert ckpt["global_step"] == 40 and ckpt["gen_runner"]["config"]["model"]["latent_dim"] == 2
    assert read_metrics(run)["protocol"]["steps"] == 40


def test_gan_tensorboard_events(gan_run):
    tags = tb_tags(gan_run[1])
    assert {"train/d_loss", "train/g_loss"} <= set(tags["scalars"])
    assert "samples/scatter" in tags["images"]
    steps = [e.step for e in tags["accumulator"].Scalars("train/d_loss")]
    assert steps == [9, 19, 29, 39]  # x-axis in batches, under manual optimization too
    assert [e.step for e in tags["accumulator"].Images("samples/scatter")] == [20, 40]
    hparams = tags["accumulator"].PluginTagToContent("hparams")  # the HPARAMS tab, with final metrics
    assert "_hparams_/experiment" in hparams and b"hparams/train_d_loss" in hparams["_hparams_/experiment"]


def test_gan_eval_mode_metrics(gan_run):
    cwd, run, _ = gan_run
    proc = run_cli("eval", f"ckpt_path={run}/checkpoints/last.ckpt", cwd=cwd)
    out = run_directory(proc, cwd)
    assert out.parent.parent == cwd / "outputs" / "eval" and out.parent.name == "gan_ring8"
    metrics = read_metrics(out)
    assert 0 <= metrics["modes"] <= 8 and 0 <= metrics["high_quality_pct"] <= 100 and metrics["reverse_kl"] >= 0
    assert metrics["protocol"]["num_samples"] == 2500 and metrics["protocol"]["step"] == 40
    assert "eval/modes" in tb_tags(out)["scalars"]


def test_gan_sample_writes_png_pt_npy(gan_run):
    cwd, run, _ = gan_run
    proc = run_cli("sample", f"ckpt_path={run}/checkpoints/last.ckpt", "num_samples=700", "seed=5", "batch_size=300",
                   cwd=cwd)
    out = run_directory(proc, cwd) / "samples"
    x = torch.load(out / "samples.pt")
    assert x.shape == (700, 2) and np.array_equal(np.load(out / "samples.npy"), x.numpy())
    assert (out / "samples.png").stat().st_size > 1000
    again = run_cli("sample", f"ckpt_path={run}/checkpoints/last.ckpt", "num_samples=700", "seed=5", cwd=cwd)
    assert torch.equal(torch.load(run_directory(again, cwd) / "samples/samples.pt"), x)  # seeded


def test_dcgan_on_digits(tmp_path):
    proc = run_cli("train", "model=dcgan", "data=digits", "model.generator.conv.base_channels=16",
                   "model.discriminator.conv.base_channels=16", *SHORT, cwd=tmp_path)
    run = run_directory(proc, tmp_path)
    assert "samples/grid" in tb_tags(run)["images"]
    sample = run_cli("sample", f"ckpt_path={run}/checkpoints/last.ckpt", "num_samples=16", cwd=tmp_path)
    x = torch.load(run_directory(sample, tmp_path) / "samples/samples.pt")
    assert x.shape == (16, 1, 8, 8) and 0 <= x.min() and x.max() <= 1
    # Image metrics need a feature extractor: one line saying which.
    assert "no metric applies to model=dcgan on data=digits; it offers: fid, kid" in error_line(
        run_cli("eval", f"ckpt_path={run}/checkpoints/last.ckpt", cwd=tmp_path, check=False))


def test_realnvp_on_moons(tmp_path):
    proc = run_cli("train", "model=realnvp", "data=moons", *TINY_FLOW, *SHORT, cwd=tmp_path)
    run = run_directory(proc, tmp_path)
    tags = tb_tags(run)
    assert {"val/nll", "train/nll"} <= set(tags["scalars"]) and "samples/scatter" in tags["images"]
    assert [e.step for e in tags["accumulator"].Scalars("val/nll")] == [19, 39]
    ev = read_metrics(run_directory(run_cli("eval", f"ckpt_path={run}/checkpoints/last.ckpt", cwd=tmp_path), tmp_path))
    assert np.isfinite(ev["nll"]) and "bpd" not in ev and ev["protocol"]["split"] == "test"
    hot = run_cli("sample", f"ckpt_path={run}/checkpoints/last.ckpt", "num_samples=500", cwd=tmp_path)
    cold = run_cli("sample", f"ckpt_path={run}/checkpoints/last.ckpt", "num_samples=500", "temperature=0.3",
                   cwd=tmp_path)
    spread = [torch.load(run_directory(p, tmp_path) / "samples/samples.pt").std(0).mean() for p in (hot, cold)]
    assert spread[1] < 0.6 * spread[0]


def test_realnvp_on_digits_reports_bits_per_dim(tmp_path):
    proc = run_cli("train", "model=realnvp", "data=digits", *TINY_FLOW, *SHORT, cwd=tmp_path)
    run = run_directory(proc, tmp_path)
    assert {"val/bpd", "val/nll"} <= set(tb_tags(run)["scalars"])
    ev = read_metrics(run_directory(run_cli("eval", f"ckpt_path={run}/checkpoints/last.ckpt", cwd=tmp_path), tmp_path))
    # bits/dim and nll are one quantity in two units: nll / (64 ln 2) = bpd
    assert ev["bpd"] == pytest.approx(ev["nll"] / (64 * np.log(2)), rel=1e-6)
    assert 0 < ev["bpd"] < np.log2(17) + 1 and ev["protocol"]["num_levels"] == 17


def test_held_out_tensor_file_scored_whole(tmp_path):
    points = np.random.default_rng(0).normal(size=(300, 2)).astype(np.float32)
    np.save(tmp_path / "train.npy", points)
    np.save(tmp_path / "held.npy", points[:123] + 0.1)
    run = run_directory(run_cli("train", "model=realnvp", "data=tensor_file", f"data.path={tmp_path}/train.npy",
                                *TINY_FLOW, "trainer.max_steps=5", cwd=tmp_path), tmp_path)
    out = run_directory(run_cli("eval", f"ckpt_path={run}/checkpoints/last.ckpt", "data=tensor_file",
                                f"data.path={tmp_path}/held.npy", "eval.split=all", cwd=tmp_path), tmp_path)
    assert read_metrics(out)["protocol"]["num_examples"] == 123


def test_multirun_sweeps_seeds(tmp_path):
    run_cli("train", "--multirun", "model=gan", "data=ring8", *TINY_GAN, "data.num_train=500", "trainer.max_steps=3",
            "callbacks=minimal", "trainer.log_every_n_steps=1", "seed=0,1", cwd=tmp_path)
    runs = sorted(tmp_path.glob("outputs/multirun/train/*/*_gan-ring8/metrics.json"))
    assert len(runs) == 2
    assert [json.loads(r.read_text())["protocol"]["seed"] for r in runs] == [0, 1]
    # ... and the sweep becomes a leaderboard: one row, mean and std over the two seeds.
    proc = run_cli("report", str(runs[0].parent.parent), cwd=tmp_path)
    out = run_directory(proc, tmp_path)
    table = (out / "leaderboard.md").read_text()
    assert "± " in table and "n=2" in table and (out / "leaderboard.csv").is_file()
    assert (out / "plots" / "train_d_loss.png").is_file()


# -- bad input: one line, saying what to do -----------------------------------------------------------
def test_bad_checkpoints(tmp_path):
    assert "checkpoint not found: nope.ckpt" in error_line(run_cli("eval", "ckpt_path=nope.ckpt", cwd=tmp_path,
                                                                   check=False))
    (tmp_path / "junk.ckpt").write_bytes(b"not a checkpoint at all")
    assert "it is corrupt or not a PyTorch checkpoint" in error_line(
        run_cli("sample", "ckpt_path=junk.ckpt", cwd=tmp_path, check=False))
    torch.save({"state_dict": {}}, tmp_path / "other.ckpt")
    assert "is not a gen-runner checkpoint" in error_line(
        run_cli("eval", "ckpt_path=other.ckpt", cwd=tmp_path, check=False))
    assert "needs a checkpoint" in error_line(run_cli("sample", cwd=tmp_path, check=False))


def test_console_script_exit_codes_and_one_stderr_line(tmp_path):
    """The installed `gen-runner` script, as a shell sees it: exit status 1 for a bad input, 2 for a bad
    command, one line on stderr."""
    script = os.path.join(os.path.dirname(sys.executable), "gen-runner")
    proc = subprocess.run([script, "eval", "ckpt_path=nope.ckpt"], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 1 and proc.stderr.strip().splitlines() == [
        "gen-runner: error: checkpoint not found: nope.ckpt; pass ckpt_path=<run directory>/checkpoints/last.ckpt"]
    proc = subprocess.run([script, "fit"], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1


def test_bad_data_files(tmp_path):
    np.save(tmp_path / "flat.npy", np.zeros(10, dtype=np.float32))
    line = error_line(run_cli("train", "data=tensor_file", "data.path=flat.npy", cwd=tmp_path, check=False))
    assert "flat.npy" in line and "N x D" in line
    line = error_line(run_cli("train", "data=tensor_file", "data.path=missing.npy", cwd=tmp_path, check=False))
    assert "missing.npy" in line
    line = error_line(run_cli("train", "data=mnist", f"data.root={tmp_path}", cwd=tmp_path, check=False))
    assert "data.download=true" in line
    line = error_line(run_cli("train", "model=dcgan", "data=ring8", cwd=tmp_path, check=False))
    assert "model=dcgan" in line and "use model=gan" in line


@pytest.mark.slow
def test_tensorboard_server_serves_the_run(gan_run):
    """`tensorboard --logdir <run>` started for real; its HTTP data API lists our tags."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    tb = os.path.join(os.path.dirname(sys.executable), "tensorboard")
    server = subprocess.Popen([tb, "--logdir", str(gan_run[1]), "--host", "127.0.0.1", "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(120):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/data/plugin/scalars/tags", timeout=2) as r:
                    tags = json.load(r)
                if tags:
                    break
            except OSError:
                pass
            time.sleep(0.5)
        scalar_tags = {t for run in tags.values() for t in run}
        assert {"train/d_loss", "train/g_loss"} <= scalar_tags
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/data/plugin/images/tags", timeout=5) as r:
            assert any("samples/scatter" in run for run in json.load(r).values())
    finally:
        server.terminate()
        server.wait(10)


def test_ddp_on_two_cpu_processes(tmp_path):
    """trainer=ddp_cpu: two gloo ranks, relaunched by Lightning through this same CLI."""
    proc = run_subprocess("train", "model=gan", "data=ring8", *TINY_GAN, "data.num_train=2000", "trainer=ddp_cpu",
                   "trainer.max_steps=12", "callbacks.checkpoint.every_n_train_steps=5", cwd=tmp_path)
    assert proc.stdout.count("Run directory:") == 1  # only rank 0 reports
    run = run_directory(proc, tmp_path)
    ckpt = torch.load(run / "checkpoints/last.ckpt", weights_only=True)
    assert ckpt["global_step"] == 12
    # Each rank took half of every epoch's permutation: 2000 points / 2 ranks / batch 100.
    assert ckpt["loops"]["fit_loop"]["state_dict"]["combined_loader"][0] == {"epoch": 1, "batches": 2}


def test_ddp_inside_a_local_sweep_is_refused(tmp_path):
    proc = run_cli("train", "--multirun", "model=gan", "data=ring8", "trainer=ddp_cpu", "seed=0,1", cwd=tmp_path,
                   check=False)
    assert "cannot run inside a local --multirun" in proc.stderr


def test_mode_collapse_benchmark_preset_through_the_cli(tmp_path):
    """One cell of the 2-D benchmark: PacGAN2 on PacGAN's ring8 protocol, trained and evaluated."""
    proc = run_cli("train", "experiment=modes_ring8", "model=pacgan2", "trainer.max_steps=20", "callbacks=minimal",
                   cwd=tmp_path)
    run = run_directory(proc, tmp_path)
    assert run.parent.name == "modes_ring8-pacgan2"
    metrics = read_metrics(run_directory(run_cli("eval", f"ckpt_path={run}/checkpoints/last.ckpt", cwd=tmp_path),
                                         tmp_path))
    assert metrics["protocol"]["num_samples"] == 2500 and metrics["protocol"]["model"] == "pacgan2"


@pytest.mark.slow
def test_mode_collapse_table_script(tmp_path):
    """Two seeds trained in two invocations, the second folding the first's runs into its table."""
    script = os.path.join(os.path.dirname(__file__), "..", "scripts", "mode_collapse_table.py")
    common = [sys.executable, script, "--models", "gan,pacgan2", "--datasets", "ring8", "--steps", "20", "--jobs", "2"]
    subprocess.run([*common, "--seeds", "0", "--out", str(tmp_path / "a")], check=True, cwd=tmp_path)
    subprocess.run([*common, "--seeds", "1", "--out", str(tmp_path / "b"), "--include", str(tmp_path / "a")],
                   check=True, cwd=tmp_path)
    table = (tmp_path / "b" / "mode_collapse_table.md").read_text()
    assert "| ring8 | pacgan2 |" in table and "PacGAN T1: 7.9 / 95.6 / 0.07" in table and "±" in table
    assert "over 2 seed(s)" in table
    subprocess.run([*common, "--tabulate", "--out", str(tmp_path / "c"), "--include", str(tmp_path / "a"),
                    str(tmp_path / "b")], check=True, cwd=tmp_path)
    assert (tmp_path / "c" / "mode_collapse_table.md").read_text() == table.split("\nTraining took")[0] + "\n"
    assert not (tmp_path / "c" / "train").exists()


@pytest.mark.slow
def test_bench_flows_script(tmp_path):
    """The flow benchmark's table, our flows only (the reference library is not installed here)."""
    script = os.path.join(os.path.dirname(__file__), "..", "scripts", "bench_flows.py")
    subprocess.run([sys.executable, script, "--steps", "5", "--datasets", "moons,gauss8", "--models", "maf,sos",
                    "--reference", "none", "--out", str(tmp_path / "table.md")], check=True, cwd=tmp_path)
    table = (tmp_path / "table.md").read_text()
    assert "| gauss8 | sos |" in table and "| moons | maf |" in table

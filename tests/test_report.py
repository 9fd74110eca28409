"""`gen-runner report`: leaderboards of synthetic run directories (metrics.json, .hydra/, TensorBoard
events) written here, so the tests need no training."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from omegaconf import OmegaConf
from torch.utils.tensorboard import SummaryWriter

from gen_runner.errors import UserError
from gen_runner.report import make_report

from helpers import compose_config

CONFIG = {
    "task_name": "train",
    "name": "${hydra:runtime.choices.model}-${hydra:runtime.choices.data}",
    "seed": 0,
    "ckpt_path": None,
    "paths": {"root": "outputs", "output_dir": "${hydra:runtime.output_dir}"},
    "trainer": {"max_steps": 100, "default_root_dir": "${paths.output_dir}"},
    "logger": {"tensorboard": {"save_dir": "${paths.output_dir}", "name": "tensorboard"}},
    "callbacks": {"checkpoint": {"dirpath": "${paths.output_dir}/checkpoints", "every_n_train_steps": 50},
                  "samples": {"num_samples": "${num_samples}"}},
    "model": {"lr": 0.001, "hidden": [16, 16]},
    "data": {"batch_size": 100, "cache_file": "${paths.output_dir}/cache.pt"},
    "num_samples": 64,
}
CHOICES = {"model": "gan", "data": "ring8", "paths": "default", "hydra": "default", "hydra/launcher": "basic"}


def make_run(path: Path, metrics: dict, overrides: tuple[str, ...] = (), protocol: dict | None = None,
             scalars: dict[str, list[float]] | None = None, config: dict = CONFIG, cwd: Path | None = None) -> Path:
    """A run directory as `gen-runner train|eval` writes it."""
    cfg = OmegaConf.merge(config, OmegaConf.from_dotlist(list(overrides)))
    (path / ".hydra").mkdir(parents=True)
    OmegaConf.save(cfg, path / ".hydra" / "config.yaml")
    hydra = {"run": {"dir": "${paths.root}/${now:%Y}"}, "runtime": {
        "output_dir": str(path.resolve()), "cwd": str(cwd or path.parent), "choices": CHOICES}}
    OmegaConf.save({"hydra": hydra}, path / ".hydra" / "hydra.yaml")
    if protocol is None:
        protocol = {"command": "train", "model": "gan", "data": "ring8", "seed": cfg.seed, "steps": 100,
                    "batch_size": 100, "metrics": "final logged values"}
    (path / "metrics.json").write_text(json.dumps({**metrics, "protocol": protocol}))
    if scalars:
        writer = SummaryWriter(str(path / "tensorboard"))
        for tag, values in scalars.items():
            for step, value in enumerate(values):
                writer.add_scalar(tag, value, step * 10)
        writer.close()
    return path


def read_csv(path: Path) -> list[dict]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def table(markdown: str) -> list[list[str]]:
    """The markdown table's header and rows, as lists of cells."""
    lines = [line for line in markdown.splitlines() if line.startswith("|") and not line.startswith("|---")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    """Two learning rates x three seeds; nll 2.0/2.2/2.4 at lr 1e-3 and 1.0/1.1/1.2 at lr 1e-4."""
    root = tmp_path_factory.mktemp("sweep")
    for i, (lr, nlls) in enumerate([(0.001, [2.0, 2.2, 2.4]), (0.0001, [1.0, 1.1, 1.2])]):
        for seed, nll in enumerate(nlls):
            scalars = {"train/loss": [3.0, 2.0, nll], "val/nll": [nll + 1, nll], "epoch": [0, 1]}
            if i == seed == 0:
                scalars["only_here"] = [1.0, 2.0]
            make_run(root / f"{3 * i + seed}_gan", {"train/nll": nll / 2, "val/nll": nll},
                     (f"model.lr={lr}", f"seed={seed}"), scalars=scalars)
    return root


@pytest.fixture(scope="module")
def report(sweep, tmp_path_factory) -> dict:
    return make_report([sweep], tmp_path_factory.mktemp("report"))


def test_columns_are_the_differing_config_keys_then_the_metrics(report):
    header = table(report["markdown"])[0]
    # not name, paths.*, dirpath/save_dir/default_root_dir, data.cache_file (the run's own path) or seed
    assert header == ["run", "seeds", "model.lr", "train/nll", "val/nll"]
    rows = read_csv(report["csv"])
    assert list(rows[0]) == ["run", "seeds", "model.lr", "train/nll", "std(train/nll)", "val/nll", "std(val/nll)"]
    assert (report["csv"].parent / "leaderboard.md").read_text() == report["markdown"]


def test_seeds_are_aggregated_mean_std_in_the_table_both_in_the_csv(report):
    rows = table(report["markdown"])[1:]
    assert [r[:3] for r in rows] == [["3_gan, 4_gan, 5_gan", "n=3", "0.0001"], ["0_gan, 1_gan, 2_gan", "n=3", "0.001"]]
    assert rows[0][3:] == ["0.55 ± 0.05 (n=3)", "1.1 ± 0.1 (n=3)"]
    assert rows[1][4] == "2.2 ± 0.2 (n=3)"
    csv_rows = read_csv(report["csv"])
    assert [r["seeds"] for r in csv_rows] == ["n=3", "0", "1", "2", "n=3", "0", "1", "2"]
    assert float(csv_rows[0]["val/nll"]) == pytest.approx(1.1)
    assert float(csv_rows[0]["std(val/nll)"]) == pytest.approx(0.1)
    assert [r["run"] for r in csv_rows[1:4]] == ["3_gan", "4_gan", "5_gan"] and csv_rows[1]["std(val/nll)"] == ""
    assert float(csv_rows[4]["std(val/nll)"]) == pytest.approx(0.2)


def test_ranking_metric_and_direction(report, tmp_path):
    assert report["ranked_by"] == "val/nll"  # held-out values before train/nll
    assert report["markdown"].startswith("# Leaderboard: ranked by `val/nll` (lower is better)")
    for name, modes, hq in [("a", 3, 90.0), ("b", 8, 10.0), ("c", 5, 50.0)]:
        make_run(tmp_path / "runs" / name, {"modes": modes, "high_quality_pct": hq, "reverse_kl": 0.1},
                 (f"model.lr={modes}",))
    out = tmp_path / "out"
    # reverse_kl comes first in the default order, but ties here; `sort` picks the metric
    by_modes = make_report([tmp_path / "runs"], out, sort="modes")
    assert [r[0] for r in table(by_modes["markdown"])[1:]] == ["b", "c", "a"]
    assert "ranked by `modes` (higher is better)" in by_modes["markdown"]
    by_hq = make_report([tmp_path / "runs"], out, sort="high_quality_pct")
    assert [r[0] for r in table(by_hq["markdown"])[1:]] == ["a", "c", "b"]
    with pytest.raises(UserError, match="report.sort=fid: not a metric of these runs; choose one of: modes, "
                                        "high_quality_pct, reverse_kl"):
        make_report([tmp_path / "runs"], out, sort="fid")


def test_plots_one_png_per_shared_scalar(report, sweep, tmp_path):
    plots = report["plots"]
    assert [p.name for p in plots] == ["train_loss.png", "val_nll.png"]  # not epoch, not only_here
    assert all(p.read_bytes().startswith(b"\x89PNG") for p in plots)
    chosen = make_report([sweep], tmp_path, scalars=["only_here"])
    assert [p.name for p in chosen["plots"]] == ["only_here.png"]
    with pytest.raises(UserError, match="report.scalars: no run logged nope; the runs logged: epoch, only_here"):
        make_report([sweep], tmp_path, scalars=["nope"])


def eval_protocol(num_samples: int, seed: int = 0) -> dict:
    return {"command": "eval", "checkpoint": f"/elsewhere/{seed}/checkpoints/last.ckpt", "step": 100 + seed,
            "model": "gan", "data": "ring8", "seed": seed, "num_samples": num_samples, "threshold_std": 3.0}


def test_mismatched_protocols_are_refused_unless_mixed(tmp_path):
    make_run(tmp_path / "runs" / "a", {"modes": 8}, ("model.lr=1",), protocol=eval_protocol(2500, seed=0))
    make_run(tmp_path / "runs" / "b", {"modes": 7}, ("model.lr=2",), protocol=eval_protocol(2500, seed=1))
    make_report([tmp_path / "runs"], tmp_path / "out")  # the same protocol, but for checkpoint, step and seed
    make_run(tmp_path / "runs" / "c", {"modes": 6}, ("model.lr=3",), protocol=eval_protocol(1000))
    with pytest.raises(UserError) as refused:
        make_report([tmp_path / "runs"], tmp_path / "out")
    message = str(refused.value)
    assert "\n" not in message and "num_samples: 1000, 2500" in message
    assert message.endswith("pass report.mix_protocols=true to rank them together")
    mixed = make_report([tmp_path / "runs"], tmp_path / "out", mix_protocols=True)
    header, *rows = table(mixed["markdown"])
    assert header == ["run", "seeds", "eval.model.lr", "protocol.num_samples", "modes"]
    assert rows == [["a", "", "1", "2500", "8"], ["b", "", "2", "2500", "7"], ["c", "", "3", "1000", "6"]]


def test_eval_runs_show_their_training_runs_config(tmp_path):
    eval_config = {"task_name": "eval", "name": "${ckpt_run_name:${ckpt_path}}", "seed": 0, "ckpt_path": None,
                   "paths": {"output_dir": "${hydra:runtime.output_dir}"}, "data": None,
                   "eval": {"split": "test", "num_samples": 2500}}
    for name, lr, modes in [("slow", 0.0001, 5), ("fast", 0.001, 7)]:
        make_run(tmp_path / "train" / name, {"train/d_loss": 1.0}, (f"model.lr={lr}",))
        ckpt = f"train/{name}/checkpoints/last.ckpt"  # relative to where eval ran: hydra.runtime.cwd
        make_run(tmp_path / "eval" / name, {"modes": modes}, (f"ckpt_path={ckpt}",), config=eval_config,
                 protocol={**eval_protocol(2500), "checkpoint": ckpt}, cwd=tmp_path)
    report = make_report([tmp_path / "eval"], tmp_path / "out")
    header, *rows = table(report["markdown"])
    assert header == ["run", "seeds", "model.lr", "modes"]
    assert rows == [["fast", "0", "0.001", "7"], ["slow", "0", "0.0001", "5"]]


def test_no_runs_is_a_user_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match=f"no runs .* at or below: {tmp_path / 'empty'}; pass run or multirun"):
        make_report([tmp_path / "empty"], tmp_path / "out")
    with pytest.raises(UserError, match="no such directory: .*nope"):
        make_report([tmp_path / "nope"], tmp_path / "out")


def test_report_task_writes_into_its_run_directory(sweep, tmp_path, capsys):
    from gen_runner.tasks.report import report

    out = tmp_path / "report_run"
    out.mkdir()
    cfg = compose_config("report", [f"report.dirs=['{sweep}']", "report.sort=train/nll"], out)
    written = report(cfg)
    assert written["leaderboard"] == out / "leaderboard.md" and (out / "leaderboard.csv").is_file()
    assert (out / "plots" / "val_nll.png").is_file()
    printed = capsys.readouterr().out.strip().splitlines()
    assert printed[0] == "# Leaderboard: ranked by `train/nll` (lower is better)"
    assert printed[-1] == f"Run directory: {out}"

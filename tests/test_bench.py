"""`tinylm bench`: float32 agrees with float64, the PyTorch twin is the same model, and a quick run
produces complete, positive, finite figures. Timings are never asserted."""

import argparse
import json
import math
import subprocess
import sys

import numpy as np
import pytest

from tinylm.core import ModelConfig, TrainConfig, load_corpus, make_trainer
from tinylm.core.bench.main import add_bench_parser, main, run_bench
from tinylm.core.bench.report import format_profile, format_report

SLM = dict(block_size=8, n_layer=2, n_head=2, n_embd=16)


def _losses(dtype, steps=20):
    trainer = make_trainer(
        load_corpus("fables"),
        "char",
        model_config=ModelConfig(**SLM),
        train_config=TrainConfig(batch_size=8, max_steps=1000, eval_interval=10**6),
        dtype=dtype,
    )
    assert trainer.model.flat.dtype == dtype and trainer.m.dtype == dtype
    return np.array([trainer.step().train_loss for _ in range(steps)])


@pytest.mark.slow  # trains two models
def test_float32_losses_match_float64_for_20_steps():
    f32, f64 = _losses(np.float32), _losses(np.float64)
    rel = np.abs(f32 - f64) / np.abs(f64)
    print("largest relative difference of the first 20 losses:", rel.max())
    assert rel.max() < 1e-4


def test_parser_registers_bench_with_run_bench():
    parser = argparse.ArgumentParser()
    add_bench_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["bench", "--configs", "slm", "--quick", "--json", "--threads", "1"])
    assert args.func is run_bench
    assert (args.configs, args.quick, args.json, args.threads, args.profile) == ("slm", True, True, 1, False)


def test_unknown_configuration_is_a_clear_error(capsys):
    assert main(["--configs", "huge", "--quick", "--no-torch"]) == 2
    assert capsys.readouterr().err.startswith("tinylm: error: unknown configuration huge")
    for bad in (["--threads", "0"], ["--rounds", "-1"]):  # refused before anything runs
        with pytest.raises(SystemExit):
            main([*bad, "--quick", "--no-torch"])
        assert "must be a positive whole number" in capsys.readouterr().err


def _numbers(node, path=""):
    """Every number in a JSON tree, with its path."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _numbers(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _numbers(value, f"{path}[{i}]")
    elif isinstance(node, (int, float)) and not isinstance(node, bool):
        yield path, node


@pytest.mark.slow
def test_quick_run_reports_every_figure(capsys):
    # --no-cold-start: compiling every kernel from nothing takes a minute on a busy 2-core machine.
    assert main(["--quick", "--configs", "slm", "--json", "--threads", "1", "--no-cold-start"]) == 0
    result = json.loads(capsys.readouterr().out)
    for key in (
        "machine",
        "threads",
        "matmul_peak_gflops",
        "idle_rss_mib",
        "configs",
        "generation",
        "startup",
        "targets",
        "flop_formula",
        "load_before",
        "load_after",
        "blas",
        "torch",
    ):
        assert key in result
    slm = result["configs"]["slm"]
    for key in ("step_ms", "tokens_per_s", "gflops", "peak_share", "peak_rss_mib"):
        assert math.isfinite(slm["tinylm"][key]) and slm["tinylm"][key] > 0
    assert result["generation"]["tinylm_kv_tokens_per_s"] > 0
    assert result["startup"]["warm_s"] > 0 and "cold_s" not in result["startup"]
    if result["torch"]["available"]:
        assert slm["speed_ratio"] > 0 and result["generation"]["ratio_vs_torch_kv"] > 0
    else:
        assert "skipped" in result["torch"]["note"]
    for path, value in _numbers({k: v for k, v in result.items() if k not in ("load_before", "load_after")}):
        if "losses" not in path and "threads" not in path and "seed" not in path:
            assert math.isfinite(value) and value >= 0, path
    text = format_report(result)
    assert "training" in text and "slm" in text and "targets" in text


@pytest.mark.slow  # a benchmark run
def test_quick_profile_rows_add_up(capsys):
    assert main(["--profile", "--quick", "--json", "--threads", "1"]) == 0
    profile = json.loads(capsys.readouterr().out)
    ops = {row["op"] for row in profile["rows"]}
    assert {"attention_forward", "matmul_forward mlp.c_fc", "lm_head_backward", "adamw_update"} <= ops
    # the timed namespace is still the CPU one (its DEVICE a value, not a timed call), so the profiled step
    # takes the CPU's path: no fused attention, which only a GPU's forward pass uses
    assert "attention_forward_fused" not in ops
    assert all(row["ms"] > 0 and row["calls"] > 0 for row in profile["rows"])
    assert sum(row["ms"] for row in profile["rows"]) <= profile["step_ms_profiled"]
    assert "other" in format_profile(profile)


def test_torch_twin_computes_the_same_logits_and_caches_correctly():
    torch = pytest.importorskip("torch")
    from tinylm.core import GPT
    from tinylm.core.bench.torch_gpt import TorchGPT, generate

    cfg = ModelConfig(vocab_size=11, **SLM)
    ours = GPT(cfg, seed=3)
    ours.flat[:] = np.random.default_rng(4).normal(0, 0.3, ours.flat.size)  # larger than init: real signal
    twin = TorchGPT(11, cfg.block_size, cfg.n_layer, cfg.n_head, cfg.n_embd)
    twin.load_tinylm(ours.params)
    ids = np.random.default_rng(5).integers(0, 11, (3, 8))
    with torch.no_grad():
        theirs = twin(torch.from_numpy(ids)).numpy()
    np.testing.assert_allclose(ours.logits(ids), theirs, atol=2e-5, rtol=1e-4)
    # Until the context is full, the cached loop samples exactly the tokens of the uncached one.
    assert generate(twin, 1, 7, kv_cache=True, seed=7) == generate(twin, 1, 7, kv_cache=False, seed=7)
    assert len(generate(twin, 1, 30, kv_cache=True, seed=7)) == 30  # through several cache refills


@pytest.mark.slow
def test_without_torch_the_benchmark_runs_and_says_so(monkeypatch, capsys):
    import tinylm.core.bench.main as bench

    monkeypatch.setattr(bench, "torch_available", lambda: False)
    assert main(["--quick", "--configs", "slm", "--threads", "1", "--no-cold-start"]) == 0
    out = capsys.readouterr().out
    assert bench.TORCH_SKIPPED in out and "tinylm" in out and "\n       torch " not in out  # no PyTorch row


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="VmHWM is Linux's")
def test_a_childs_peak_memory_is_its_own():
    """ru_maxrss of a child carries over the parent's resident size across fork+exec on Linux;
    the benchmark reads VmHWM, so a small child of a big parent reports a small peak."""
    from tinylm.core.bench import memory_peak

    parent = np.ones(25_000_000)  # 200 MB resident here
    code = f"import runpy; print(runpy.run_path({memory_peak.__file__!r})['peak_rss_kb']())"
    child_kb = int(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
    assert parent.sum() > 0 and 1_000 < child_kb < 100_000
    assert memory_peak.peak_rss_kb() > 200_000  # and this process's own includes the array


GPT2_TOY = dict(vocab_size=300, block_size=64, n_layer=2, n_head=2, n_embd=32)


@pytest.mark.slow
def test_gpt2_configuration_reports_every_figure_at_a_scaled_down_shape(monkeypatch, capsys):
    """The gpt2 configuration end to end (checkpoint written, opened, traced, generated from, and
    the same in transformers when installed), at a toy shape so that it stays quick."""
    import tinylm.core.bench.gpt2 as gpt2

    monkeypatch.setattr(gpt2, "GPT2_SHAPE", GPT2_TOY)
    assert main(["--quick", "--configs", "gpt2", "--json", "--threads", "1"]) == 0
    result = json.loads(capsys.readouterr().out)
    g = result["gpt2"]
    assert g["model"] == GPT2_TOY and "configs" in result and not result["configs"]
    params = ModelConfig(**GPT2_TOY)
    from tinylm.core import GPT

    assert g["weight_bytes"] == GPT(params, seed=0).flat.nbytes
    ours = g["tinylm"]
    for key in ("load_s", "load_over_mib", "trace_ms", "gen_tokens_per_s", "token_ms", "pass_ms"):
        assert math.isfinite(ours[key]) and ours[key] > 0, key
    assert ours["token_ms"] == pytest.approx(1e3 / ours["gen_tokens_per_s"])
    assert g["token_over_pass"] == pytest.approx(ours["token_ms"] / ours["pass_ms"])
    keys = {t["key"]: t for t in result["targets"]}
    assert keys["gpt2.load_over_weights"]["value"] == g["load_over_weights"]
    if g["transformers"] is not None:
        hf = g["transformers"]
        assert g["trace_speed_ratio"] == pytest.approx(hf["forward_ms"] / ours["trace_ms"])
        assert g["gen_speed_ratio"] == pytest.approx(ours["gen_tokens_per_s"] / hf["gen_tokens_per_s"])
        assert g["greedy_tokens_agree"] >= 1  # the same weights reached transformers: same first token
    else:
        assert "skipped" in g["note"] and keys["gpt2.gen_speed_ratio"]["met"] is None
    text = format_report(result)
    assert "GPT-2 scale" in text and "training" not in text and "gpt2: opening" in text


def test_gpt2_configuration_is_named_and_profile_refuses_it(capsys):
    from tinylm.core.bench.main import config_names

    assert config_names(argparse.Namespace(configs="gpt2,baby")) == ["gpt2", "baby"]
    assert "gpt2" not in config_names(argparse.Namespace(configs=None))  # the default stays the training set
    assert main(["--profile", "--configs", "gpt2", "--quick", "--no-torch"]) == 2
    assert "training step" in capsys.readouterr().err


PRINT_OMP = "import os; print(os.environ.get('OMP_WAIT_POLICY'), os.environ.get('GOMP_SPINCOUNT'))"
CHILD_ENV = "from tinylm.core.bench.children import _child_env; import json; print(json.dumps(_child_env(1)))"


def _children_see(user_env: dict) -> str:
    """What a bench child prints of the OpenMP settings when the bench runs under `user_env`."""
    import os

    base = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    made = subprocess.run(
        [sys.executable, "-c", CHILD_ENV], env={**base, **user_env}, capture_output=True, text=True, check=True
    )
    env = json.loads(made.stdout)
    return subprocess.run([sys.executable, "-c", PRINT_OMP], env=env, capture_output=True, text=True).stdout.strip()


def test_children_start_without_the_openmp_settings_tinylm_made_but_with_the_users():
    """Importing tinylm makes OpenMP workers passive; PyTorch's child must run with its own defaults (passive
    workers slowed its small operators 2x), and a setting the user made is the user's, kept for both engines."""
    from tinylm.kernels import ENV_DEFAULTS

    assert _children_see({}) == "None None"
    assert _children_see({"OMP_WAIT_POLICY": "ACTIVE"}) == "ACTIVE None"
    assert _children_see({"GOMP_SPINCOUNT": "5"}) == "None 5"
    assert set(ENV_DEFAULTS) <= {"OMP_WAIT_POLICY", "GOMP_SPINCOUNT"}

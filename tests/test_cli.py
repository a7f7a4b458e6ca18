"""The `tinylm` command line: train, resume, Ctrl-C, generate, inspect, info, and every bad input."""

import contextlib
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest

from tinylm.core import Sampling, Trainer, TrainingDiverged, load
from tinylm.core.cli.common import show_token
from tinylm.core.cli.info import sparkline
from tinylm.core.cli.inspect import format_matrix
from tinylm.core.cli.main import main
from tinylm.core.cli.progress import Progress
from tinylm.core.trainer import TrainMetrics

TINY = ["--layers", "1", "--heads", "2", "--embd", "16", "--context", "16", "--batch-size", "4", "--eval-batches", "2"]
EXACT = ("step", "max_steps", "train_loss", "val_loss", "accuracy", "lr", "grad_norm")


def run(argv):
    """main(argv) in-process with stdout and stderr captured: (status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main([str(a) for a in argv])
    return status, out.getvalue(), err.getvalue()


def train(out, *extra, steps=30):
    return run(["train", *TINY, "--steps", steps, "--out", out, *extra])


def read_log(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def assert_one_line_error(status, err, *words):
    assert status == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("tinylm: error: ") and "Traceback" not in err
    for word in words:
        assert word in lines[0], lines[0]


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    """A tiny trained checkpoint and its per-step log, shared by the read-only tests."""
    root = tmp_path_factory.mktemp("cli")
    status, out, err = train(root / "run", "--json-log", root / "log.jsonl")
    assert status == 0, err
    return root / "run", root / "log.jsonl", out


# ----- train, info ------------------------------------------------------------------------------


def test_help_of_every_command_has_examples():
    for argv in ([], ["train"], ["generate"], ["inspect"], ["info"]):
        status, out, _ = run([*argv, "--help"])
        assert status == 0 and "examples:" in out and "usage: tinylm" in out


def test_no_command_prints_help_and_fails():
    status, out, _ = run([])
    assert status == 2 and "commands:" in out


def test_train_writes_a_checkpoint_that_loads_and_info_reports(ckpt):
    path, log, out = ckpt
    model = load(path)
    assert model.config.n_layer == 1 and model.config.n_embd == 16 and model.tokenizer.kind == "char"
    assert f"saved checkpoint to {path}" in out
    assert "step 30/30: val loss" in out and "--- sample" in out
    assert re.search(r"step\s+30/30 100% \| [\d:]+ elapsed, 0:00 left \| loss \d\.\d{4} \| lr .* tok/s$", out, re.M)
    lines = read_log(log)
    assert [m["step"] for m in lines] == list(range(1, 31))
    assert set(TrainMetrics.__dataclass_fields__) <= set(lines[0])
    status, info, _ = run(["info", path])
    assert status == 0
    assert re.search(r"^step\s+30 of 30$", info, re.M)
    assert re.search(r"^parameters\s+" + f"{model.config.num_params():,}$", info, re.M)
    assert "char, vocabulary" in info and "fables (builtin)" in info and "on disk" in info
    assert f"val loss {lines[-1]['val_loss']:.4f}" in info
    assert re.search(r"^train loss\s+[▁▂▃▄▅▆▇█]+ ", info, re.M)
    steps = [s.step for s in Trainer.resume(path).recorder.snapshots()]
    assert steps == [0, 1, 2, 3, 4, 6, 8, 12, 16, 24, 30]
    assert re.search(r"^snapshots\s+11 at steps 0, 1, 2, 3, 4, 6, 8, 12, 16, 24, 30 \(history.json\)$", info, re.M)


def test_default_out_never_reuses_an_existing_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for expected in ("runs/typed-char", "runs/typed-char-2"):
        status, out, err = run(["train", *TINY, "--steps", 2, "--quiet", "--text", "the cat sat on the mat. " * 20])
        assert status == 0, err
        assert out.strip() == f"saved checkpoint to {expected}"
    assert_one_line_error(*run(["train", "--resume", "runs/typed-char", "--steps", 3])[::2], "--text")


def test_resume_after_ctrl_c_matches_an_uninterrupted_run(ckpt, tmp_path, monkeypatch):
    _, straight_log, _ = ckpt
    step = Trainer.step

    def interrupted_at_12(self):
        if self.step_count == 12:
            raise KeyboardInterrupt
        return step(self)

    monkeypatch.setattr(Trainer, "step", interrupted_at_12)
    log = tmp_path / "log.jsonl"
    status, _, err = train(tmp_path / "run", "--json-log", log)
    assert status == 130 and "Traceback" not in err
    assert f"interrupted at step 12/30; saved to {tmp_path / 'run'}" in err
    assert f"resume with: tinylm train --resume {tmp_path / 'run'}" in err
    assert Trainer.resume(tmp_path / "run").step_count == 12
    monkeypatch.setattr(Trainer, "step", step)

    status, out, err = run(["train", "--resume", tmp_path / "run", "--json-log", log])
    assert status == 0, err
    assert "resuming    at step 12 of 30" in out
    resumed, straight = read_log(log), read_log(straight_log)
    assert [m["step"] for m in resumed] == list(range(1, 31))
    for a, b in zip(resumed, straight):
        for key in EXACT:
            assert a[key] == pytest.approx(b[key], rel=1e-6), (a["step"], key)


def test_resume_can_train_longer_but_not_change_settings(ckpt, tmp_path):
    path, _, _ = ckpt
    shutil.copytree(path, tmp_path / "run")
    status, _, err = run(["train", "--resume", tmp_path / "run"])
    assert status == 0 and "already trained 30 of 30 steps" in err
    assert_one_line_error(*run(["train", "--resume", tmp_path / "run", "--lr", "0.01"])[::2], "--lr", "resuming")
    status, out, err = run(["train", "--resume", tmp_path / "run", "--steps", 33])
    assert status == 0 and "training to step 33 (was 30)" in out and err == ""
    assert Trainer.resume(tmp_path / "run").step_count == 33


def test_no_attention_trains_an_mlp_only_model_that_info_names(ckpt, tmp_path):
    status, out, err = train(tmp_path / "mlp", "--no-attention", steps=4)
    assert status == 0, err
    assert "MLP only (no attention)" in out
    assert json.loads((tmp_path / "mlp" / "config.json").read_text())["tinylm"]["attention"] is False
    status, out, _ = run(["info", tmp_path / "mlp"])
    assert status == 0 and "MLP only (no attention)" in out
    status, out, err = run(["inspect", tmp_path / "mlp", "--prompt", "The fox", "--all-layers"])
    assert status == 0, err
    assert out.count("this model has no attention (MLP only)") == 1 and "head 0 of" not in out
    status, out, err = run(["generate", tmp_path / "mlp", "--prompt", "The", "--tokens", "5", "--seed", "1"])
    assert status == 0, err
    # a run keeps its attention setting: resuming with the switch is refused by name
    path, _, _ = ckpt
    shutil.copytree(path, tmp_path / "run")
    assert_one_line_error(*run(["train", "--resume", tmp_path / "run", "--no-attention"])[::2], "--no-attention")


def test_tty_progress_is_one_updating_line():
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    term = Terminal()
    progress = Progress(term)
    for step in (1, 2):
        progress.update(
            TrainMetrics(
                step, 2, 3.0, 2.5 if step == 2 else None, 0.25 if step == 2 else None, 1e-3, 0.5, 1000.0, 1.0, 1.0
            )
        )
    progress.close()
    text = term.getvalue()
    assert text.count("\n") == 2  # the durable evaluation line and the final newline
    assert "\rstep 1/2" in text and "step 2/2: val loss 2.5000, accuracy 25.0%" in text
    assert "val 2.5000 acc 25.0%" in text


# ----- generate ---------------------------------------------------------------------------------


def test_generate_streams_tokens_reproducibly(ckpt, monkeypatch):
    path, _, _ = ckpt

    class Recorder(io.StringIO):
        flushes = 0

        def flush(self):
            Recorder.flushes += 1

    outputs = []
    for _ in range(2):
        stream = Recorder()
        monkeypatch.setattr(sys, "stdout", stream)
        assert main(["generate", str(path), "--prompt", "The", "--tokens", "25", "--seed", "3"]) == 0
        outputs.append(stream.getvalue())
    assert outputs[0] == outputs[1] and Recorder.flushes >= 2 * 25
    expected = "".join(s.text for s in load(path).generate("The", Sampling(seed=3), max_new_tokens=25))
    assert outputs[0] == "The" + expected + "\n" and len(expected) == 25


def test_generate_greedy_without_prompt(ckpt):
    path, _, _ = ckpt
    status, out, _ = run(["generate", path, "--greedy", "--tokens", 10])
    assert status == 0 and out.startswith("\n") and len(out) == 12


# ----- inspect ----------------------------------------------------------------------------------


def test_inspect_prints_the_trace(ckpt):
    path, _, _ = ckpt
    status, out, err = run(["inspect", path, "--prompt", "The Fox", "--precision", 4])
    assert status == 0 and err == ""
    model = load(path)
    tr = model.trace("The Fox")
    for pos, (i, tok) in enumerate(zip(tr.ids, tr.tokens)):
        assert re.search(rf"^\s+{pos}\s+{i}\s+{re.escape(repr(tok))}$", out, re.M)
    for title in ("token embeddings", "position embeddings", "head 1 of 2  (7 x 7)", "block 0 output"):
        assert title in out
    probs = tr["probs"][-1]
    top = int(np.argmax(probs))
    match = re.search(r"^\s+1\. (.+?)\s+id\s+(\d+)\s+(\d\.\d{4})", out, re.M)
    assert int(match.group(2)) == top and match.group(1) == repr(model.tokenizer.token_text(top))
    assert float(match.group(3)) == pytest.approx(float(probs[top]), abs=1e-4)
    assert len(re.findall(r"^\s+\d+\. .+ id ", out, re.M)) == 10
    # the second row of head 0: the second token attends to the first two
    assert f"{tr['h.0.att'][0][1, 0]:.4f} {tr['h.0.att'][0][1, 1]:.4f}" in out


def test_inspect_shows_how_bpe_merged_each_chunk(tmp_path):
    path = tmp_path / "bpe"
    assert train(path, "--tokenizer", "bpe", "--vocab-size", "300", steps=2)[0] == 0
    prompt = "The fox 🦊"
    status, out, err = run(["inspect", path, "--prompt", prompt])
    assert status == 0 and "how byte-level BPE made them" in out
    tok = load(path).tokenizer
    assert tok.chunks(prompt) == ["The", " fox", " 🦊"]
    assert "      bytes        ␣ \\xf0 \\x9f \\xa6 \\x8a" in out  # a split character shows its bytes
    for chunk in tok.chunks(prompt):
        steps = tok.merge_steps(chunk)
        final = " ".join(show_token(tok.token_label(i), 12) for i in tok.encode(chunk))
        assert (steps[-1].ids if steps else tok.chunk_ids(chunk)) == tok.encode(chunk).tolist()
        for step in steps:  # every merge the tokenizer applied, in rank order, ending at encode's tokens
            assert re.search(rf"^\s+rank {step.rank}\s", out, re.M)
        assert final in out


def test_inspect_crops_a_long_prompt_and_notes_unseen_characters(ckpt):
    path, _, _ = ckpt
    status, out, err = run(["inspect", path, "--prompt", "Ω" + "the fox and the crow " * 3])
    assert status == 0
    assert "keeping its last 16 tokens" in err and "'Ω' not seen in training" in err
    assert "-> 16 tokens" in out
    status, out, err = run(["inspect", path, "--prompt", "Ωb"])
    assert status == 0 and "<unk>" in err and "'<unk>'" in out


def test_matrix_and_sparkline_formatting():
    lines = format_matrix(np.arange(60, dtype=float).reshape(3, 20) / 7, ["a", "b", "c"], precision=2, width=60)
    assert all(len(line) <= 60 for line in lines) and "…" in lines[0] and lines[1].startswith("a  ")
    att = format_matrix(np.tril(np.ones((3, 3))) / 3, ["0 x", "1 y", "2 z"], ["x", "y", "z"], mask_upper=True)
    assert att[1].split()[2:] == ["0.333", "·", "·"]
    assert sparkline([3, 2, 1]) == "█▅▁" and sparkline([1.0] * 100) == "▁" * 40


# ----- bad input --------------------------------------------------------------------------------


def bad_files(tmp):
    (tmp / "empty.txt").write_text("")
    (tmp / "binary.bin").write_bytes(b"abc\x00\x01\x02" * 50)
    (tmp / "latin1.txt").write_bytes("café au lait ".encode("latin-1") * 50)
    (tmp / "a_file").write_text("x")
    if hasattr(os, "mkfifo"):
        os.mkfifo(tmp / "fifo")
    return tmp


@pytest.mark.parametrize(
    "args, words",
    [
        (["--corpus", "{tmp}/missing.txt"], ["not found"]),
        (["--corpus", "{tmp}/empty.txt"], ["empty"]),
        (["--corpus", "{tmp}/binary.bin"], ["binary"]),
        (["--corpus", "{tmp}/latin1.txt"], ["UTF-8"]),
        (["--corpus", "{tmp}"], ["directory"]),
        (["--corpus", "{tmp}/fifo"], ["FIFO", "not a regular file"]),
        (["--corpus", "/dev/zero"], ["character device", "not a regular file"]),
        (["--corpus", "{tmp}/\x1b[2Jgone\r.txt"], ["\\x1b[2Jgone .txt", "not found"]),
        (["--corpus", "nosuchcorpus"], ["unknown built-in corpus"]),
        (["--text", "too short"], ["context"]),
        (["--layers", "0"], ["n_layer", "--layers"]),
        (["--steps", "-5"], ["max_steps", "--steps"]),
        (["--lr", "0"], ["learning_rate", "--lr"]),
        (["--heads", "3"], ["not divisible", "--heads"]),
        (["--dropout", "1.5"], ["dropout"]),
        (["--tokenizer", "bpe", "--vocab-size", "100"], ["at least 256"]),
        (["--steps", "many"], ["invalid int value"]),
        (["--threads", "0"], ["positive"]),
        (["--seed", "-1"], ["seed", "from 0", "--seed"]),
        (["--layers", "100", "--embd", "100000"], ["needs about", "GiB of memory", "available"]),
        (["--context", "1000000000"], ["needs about", "available"]),
        (["--out", "{tmp}/a_file"], ["is a file"]),
        (["--resume", "{tmp}/missing"], ["does not exist"]),
        (["--json-log", "{tmp}/no/such/dir/log"], ["--json-log"]),
    ],
)
def test_bad_train_input_is_one_line_and_status_2(tmp_path, args, words):
    bad_files(tmp_path)
    fresh = [] if "--resume" in args else [*TINY, "--steps", "3"]
    argv = ["train", *fresh, *[a.format(tmp=tmp_path) for a in args]]
    if "--out" not in args:
        argv += ["--out", tmp_path / "out"]
    status, _, err = run(argv)
    assert_one_line_error(status, err, *words)


def damaged(src, tmp):
    """Checkpoint copies with one defect each."""
    cases = {}
    for name, harm in {
        "truncated_weights": lambda d: (d / "model.safetensors").write_bytes(b"\x10" + b"\x00" * 99),
        "bad_json": lambda d: (d / "config.json").write_text("{not json"),
        "wrong_width": lambda d: (d / "config.json").write_text(
            (d / "config.json").read_text().replace('"n_embd": 16', '"n_embd": 32')
        ),
        "no_weights": lambda d: (d / "model.safetensors").unlink(),
    }.items():
        shutil.copytree(src, tmp / name)
        harm(tmp / name)
        cases[name] = tmp / name
    (tmp / "empty_dir").mkdir()
    cases["empty_dir"] = tmp / "empty_dir"
    cases["a_file"] = tmp / "a_file"
    (tmp / "a_file").write_text("x")
    return cases


def test_damaged_or_mismatched_checkpoints(ckpt, tmp_path):
    path, _, _ = ckpt
    for name, bad in damaged(path, tmp_path).items():
        for argv in (
            ["info", bad],
            ["generate", bad, "--tokens", 3],
            ["inspect", bad, "--prompt", "a"],
            ["train", "--resume", bad],
        ):
            status, _, err = run(argv)
            assert_one_line_error(status, err), (name, argv)


@pytest.mark.parametrize(
    "argv, words",
    [
        (["generate", "{ckpt}", "--temperature", "0"], ["temperature"]),
        (["generate", "{ckpt}", "--top-p", "1.5"], ["top_p"]),
        (["generate", "{ckpt}", "--tokens", "-1"], ["0 or more"]),
        (["generate", "{ckpt}", "--seed", "-1"], ["seed", "from 0"]),
        (["generate", "{ckpt}", "--prompt", ""], ["empty"]),
        (["inspect", "{ckpt}", "--prompt", "a", "--layer", "1"], ["--layer 1", "0 to 0"]),
        (["inspect", "{ckpt}"], ["--prompt"]),
        (["info"], ["CHECKPOINT"]),
        (["nosuchcommand"], ["invalid choice"]),
    ],
)
def test_bad_generate_inspect_input(ckpt, argv, words):
    path, _, _ = ckpt
    status, _, err = run([a.format(ckpt=path) for a in argv])
    assert_one_line_error(status, err, *words)


def test_a_failed_run_leaves_the_earlier_checkpoint_alone(ckpt, tmp_path, monkeypatch):
    path, _, _ = ckpt
    shutil.copytree(path, tmp_path / "run")
    before = {f.name: f.read_bytes() for f in (tmp_path / "run").iterdir()}
    status, _, err = train(tmp_path / "run", "--corpus", tmp_path / "missing.txt")
    assert_one_line_error(status, err, "not found")

    def diverge(self):
        raise TrainingDiverged("training diverged at step 1 (loss nan); lower the learning rate")

    monkeypatch.setattr(Trainer, "step", diverge)
    status, _, err = train(tmp_path / "run", "--overwrite")
    assert_one_line_error(status, err, "diverged")
    assert {f.name: f.read_bytes() for f in (tmp_path / "run").iterdir()} == before


def test_installed_console_script(ckpt, tmp_path):
    """The `tinylm` entry point: real exit statuses and streams, not just main()."""
    path, _, _ = ckpt
    exe = shutil.which("tinylm")
    if exe is None:
        pytest.skip("the tinylm console script is not installed (pip install -e .)")
    done = subprocess.run(
        [exe, "generate", str(path), "--prompt", "The", "--tokens", "8", "--seed", "5"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == run(["generate", path, "--prompt", "The", "--tokens", 8, "--seed", 5])[1]
    done = subprocess.run(
        [exe, "train", "--corpus", str(tmp_path / "missing.txt")], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("tinylm: error: corpus file not found") and done.stderr.count("\n") == 1


def test_a_checkpoint_left_aside_by_a_killed_save_is_put_back_and_said_so(ckpt, tmp_path):
    path, _, _ = ckpt
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    shutil.copytree(path, tmp_path / f".run.old-{gone.stdout.strip()}-x")  # killed between its two renames
    status, out, err = run(["info", tmp_path / "run"])
    assert status == 0 and "step" in out
    assert err == f"tinylm: {tmp_path / 'run'}: put the previous version back\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


# ----- where a run saves: never over another run, never lost ----------------------------------------


def files_of(path):
    return {f.name: f.read_bytes() for f in path.iterdir()}


def test_out_holding_another_run_is_refused_before_training(ckpt, tmp_path, monkeypatch):
    path, _, _ = ckpt
    shutil.copytree(path, tmp_path / "run")
    before = files_of(tmp_path / "run")
    monkeypatch.setattr(Trainer, "step", lambda self: pytest.fail("trained before refusing"))
    assert_one_line_error(*train(tmp_path / "run", "--seed", 5)[::2], "already holds a checkpoint", "--overwrite")
    assert_one_line_error(
        *run(["train", "--resume", path, "--out", tmp_path / "run", "--steps", 40])[::2], "already holds"
    )
    assert files_of(tmp_path / "run") == before
    monkeypatch.undo()
    status, _, err = train(tmp_path / "run", "--seed", 5, "--overwrite", "--quiet", steps=3)
    assert status == 0, err
    assert Trainer.resume(tmp_path / "run").config.seed == 5


def test_an_unwritable_or_full_out_is_refused_before_training(tmp_path, monkeypatch):
    import tinylm.core.cli.saving as saving

    monkeypatch.setattr(Trainer, "step", lambda self: pytest.fail("trained before refusing"))
    if os.path.isdir("/proc"):  # not writable even by root
        assert_one_line_error(*train("/proc/tinylm-run")[::2], "cannot write --out /proc/tinylm-run")
    monkeypatch.setattr(saving.shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(10**9, 10**9 - 5000, 5000))
    assert_one_line_error(*train(tmp_path / "run")[::2], "the checkpoint needs about", "4.9 KiB is free")
    assert not (tmp_path / "run").exists()


def test_a_failed_final_save_goes_to_a_rescue_directory(ckpt, tmp_path, monkeypatch):
    """The directory of --out is replaced by a file while training: the run is saved elsewhere."""
    _, straight_log, _ = ckpt
    monkeypatch.chdir(tmp_path)
    step = Trainer.step

    def vanish_at_10(self):
        if self.step_count == 10:
            shutil.rmtree(tmp_path / "runs")
            (tmp_path / "runs").write_text("not a directory any more")
        return step(self)

    monkeypatch.setattr(Trainer, "step", vanish_at_10)
    (tmp_path / "runs").mkdir()
    status, _, err = train(tmp_path / "runs" / "run", "--quiet")
    rescued = tmp_path / "run-rescued"
    assert_one_line_error(
        status, err, f"could not save to {tmp_path / 'runs' / 'run'}", f"saved the checkpoint to {rescued}"
    )
    trainer = Trainer.resume(rescued)
    assert trainer.step_count == 30
    assert trainer.history[-1].val_loss == pytest.approx(read_log(straight_log)[-1]["val_loss"], rel=1e-6)


def test_an_out_that_another_run_saves_into_meanwhile_is_left_alone(ckpt, tmp_path, monkeypatch):
    path, _, _ = ckpt
    step = Trainer.step

    def other_run_saves_at_5(self):
        if self.step_count == 5:
            shutil.copytree(path, tmp_path / "run")
        return step(self)

    monkeypatch.setattr(Trainer, "step", other_run_saves_at_5)
    status, _, err = train(tmp_path / "run", "--quiet", "--seed", 9)
    assert_one_line_error(status, err, "changed while training", f"saved the checkpoint to {tmp_path / 'run-rescued'}")
    assert files_of(tmp_path / "run") == files_of(path)
    assert Trainer.resume(tmp_path / "run-rescued").config.seed == 9


@pytest.mark.parametrize("where", ["forward", "update", "evaluation"])
def test_a_second_ctrl_c_inside_a_step_saves_a_step_boundary(ckpt, tmp_path, monkeypatch, where):
    """Ctrl-C twice, the second landing inside step 12 (an evaluation step): the run saves at a step
    boundary and, resumed, reaches the same losses as the uninterrupted run."""
    import tinylm.kernels as cpu_kernels
    from tinylm.core import GPT

    _, straight_log, _ = ckpt
    current, fired = [None], []
    step = Trainer.step

    def recording_step(self):
        current[0] = self
        return step(self)

    owner, name, at = {
        "forward": (GPT, "forward", 11),  # step 12's forward pass (step_count is 11 until it is done)
        "update": (cpu_kernels, "adamw_update", 11),  # just after step 12's weights changed
        "evaluation": (Trainer, "evaluate", 12),  # step 12 is done; its validation is under way
    }[where]
    real = getattr(owner, name)

    def ctrl_c_twice_inside(*args, **kwargs):
        result = real(*args, **kwargs)
        if current[0].step_count == at and not fired:
            fired.append(True)
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)
        return result

    monkeypatch.setattr(Trainer, "step", recording_step)
    monkeypatch.setattr(owner, name, ctrl_c_twice_inside)
    log = tmp_path / "log.jsonl"
    status, _, err = train(tmp_path / "run", "--json-log", log)
    assert status == 130 and fired and "Traceback" not in err, err
    saved_at = 11 if where == "forward" else 12
    assert f"interrupted at step {saved_at}/30" in err
    monkeypatch.undo()

    status, _, err = run(["train", "--resume", tmp_path / "run", "--json-log", log, "--quiet"])
    assert status == 0, err
    resumed, straight = read_log(log), read_log(straight_log)
    assert [m["step"] for m in resumed] == list(range(1, 31))
    for a, b in zip(resumed, straight):
        for key in EXACT:
            if where == "evaluation" and a["step"] == 12 and key in ("val_loss", "accuracy"):
                assert a[key] is None  # the evaluation Ctrl-C cut short is skipped, not faked
                continue
            assert a[key] == pytest.approx(b[key], rel=1e-6), (a["step"], key)


def edit_json(path, name, change):
    data = json.loads((path / name).read_text())
    change(data)
    (path / name).write_text(json.dumps(data))


WRONG_TYPES = {
    "tinylm block a string": ("config.json", lambda d: d.update(tinylm="x")),
    "train settings a list": ("config.json", lambda d: d["tinylm"].update(train=[1, 2])),
    "batch size a string": ("config.json", lambda d: d["tinylm"]["train"].update(batch_size="12")),
    "learning rate null": ("config.json", lambda d: d["tinylm"]["train"].update(learning_rate=None)),
    "warmup a float": ("config.json", lambda d: d["tinylm"]["train"].update(warmup_steps=2.5)),
    "seed negative": ("config.json", lambda d: d["tinylm"]["train"].update(seed=-1)),
    "corpus a list": ("config.json", lambda d: d["tinylm"].update(corpus=[1])),
    "corpus path a number": ("config.json", lambda d: d["tinylm"]["corpus"].update(path=5, name=None, sha256=None)),
    "dropout a string": ("config.json", lambda d: d["tinylm"].update(dropout="x")),
    "positional a number": ("config.json", lambda d: d["tinylm"].update(positional=5)),
    "n_positions 1e9": ("config.json", lambda d: d.update(n_positions=1e9)),
    "step a string": ("trainer_state.json", lambda d: d.update(step="abc")),
    "step negative": ("trainer_state.json", lambda d: d.update(step=-3)),
    "history of strings": ("trainer_state.json", lambda d: d["history"][0].update(train_loss="low")),
    "history a dict": ("trainer_state.json", lambda d: d.update(history={"a": 1})),
    "rng a number": ("trainer_state.json", lambda d: d.update(rng=5)),
}


@pytest.mark.parametrize("case", sorted(WRONG_TYPES))
def test_wrong_types_in_a_checkpoint_are_one_line_errors(ckpt, tmp_path, case):
    path, _, _ = ckpt
    name, change = WRONG_TYPES[case]
    shutil.copytree(path, tmp_path / "run")
    edit_json(tmp_path / "run", name, change)
    before = files_of(tmp_path / "run")
    for argv in (["info", "{p}"], ["generate", "{p}", "--tokens", 2], ["train", "--resume", "{p}", "--steps", 31]):
        status, _, err = run([str(a).format(p=tmp_path / "run") for a in argv])
        if status != 0 or argv[0] == "train":
            assert_one_line_error(status, err)
    assert files_of(tmp_path / "run") == before


@pytest.mark.parametrize("tensor", ["transformer.ln_f.weight", "transformer.h.0.attn.c_attn.weight"])
def test_weights_too_large_for_float32_are_one_line_errors_not_nan(ckpt, tmp_path, tensor):
    """Finite but huge weights (a flipped exponent bit) overflow the forward pass: every command says
    so in one line instead of sampling from or printing NaN probabilities."""
    from safetensors.numpy import load_file, save_file

    from tinylm.core import NonFiniteOutput, Sampling

    path, _, _ = ckpt
    shutil.copytree(path, tmp_path / "run")
    weights = load_file(str(tmp_path / "run" / "model.safetensors"))
    weights[tensor][...] = 3e38
    save_file(weights, str(tmp_path / "run" / "model.safetensors"), metadata={"format": "pt"})
    model = load(tmp_path / "run")
    with pytest.raises(NonFiniteOutput, match="not finite"):
        model.trace("The")
    with pytest.raises(NonFiniteOutput, match="largest \\|weight\\| 3e\\+38"):
        next(iter(model.generate("The", Sampling(seed=1), max_new_tokens=3)))
    for argv in (
        ["generate", tmp_path / "run", "--tokens", 3, "--seed", 1],
        ["inspect", tmp_path / "run", "--prompt", "The"],
        ["train", "--resume", tmp_path / "run", "--steps", 32, "--out", tmp_path / "more"],
    ):
        status, _, err = run(argv)
        assert_one_line_error(status, err)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_json_log_into_a_fifo_nobody_reads_is_refused_and_a_full_disk_does_not_stop_training(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    assert_one_line_error(*train(tmp_path / "run", "--json-log", tmp_path / "fifo")[::2], "no process reads")
    if os.path.exists("/dev/full"):  # every write fails with ENOSPC
        status, out, err = train(tmp_path / "run", "--json-log", "/dev/full", "--quiet", steps=3)
        assert status == 0 and out.strip() == f"saved checkpoint to {tmp_path / 'run'}"
        assert err.startswith("tinylm: cannot write --json-log /dev/full (No space left on device); the log stops")


def test_out_as_the_current_directory_is_refused_and_a_link_keeps_pointing_at_the_checkpoint(
    ckpt, tmp_path, monkeypatch
):
    path, _, _ = ckpt
    (tmp_path / "empty").mkdir()
    monkeypatch.chdir(tmp_path / "empty")
    assert_one_line_error(*train(".")[::2], "--out . is the current directory")
    monkeypatch.chdir(tmp_path)
    shutil.copytree(path, tmp_path / "target")
    (tmp_path / "link").symlink_to("target")
    status, _, err = train("link", "--overwrite", "--quiet", "--seed", 4, steps=3)
    assert status == 0, err
    assert (tmp_path / "link").is_symlink() and Trainer.resume(tmp_path / "target").config.seed == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "link", "target"]


@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="no TERM/HUP signals here")
@pytest.mark.parametrize("sig", ["SIGTERM", "SIGHUP"])
def test_kill_or_a_closed_terminal_stops_after_the_step_and_saves(tmp_path, sig):
    """`kill` (TERM) and a hang-up (a closed terminal or SSH connection) save the run like Ctrl-C."""
    import time

    exe = shutil.which("tinylm")
    if exe is None:
        pytest.skip("the tinylm console script is not installed (pip install -e .)")
    log = tmp_path / "log.jsonl"
    argv = [exe, "train", *TINY, "--steps", 100000, "--out", tmp_path / "run", "--json-log", log, "--quiet"]
    # A run started under nohup keeps ignoring HUP (on purpose); the child starts as from a terminal.
    child = subprocess.Popen(
        [str(a) for a in argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 120
    while not (log.exists() and len(log.read_text().splitlines()) >= 5) and time.monotonic() < deadline:
        time.sleep(0.05)
    child.send_signal(getattr(signal, sig))
    _, err = child.communicate(timeout=120)
    assert child.returncode == 130, err
    assert f"{sig} received: stopping after this step and saving" in err
    steps = read_log(log)[-1]["step"]
    assert f"interrupted at step {steps}/100000; saved to {tmp_path / 'run'}" in err
    assert Trainer.resume(tmp_path / "run").step_count == steps


def test_files_kept_beside_the_model_survive_a_save_and_a_log_inside_keeps_growing(ckpt, tmp_path):
    """Notes, a subdirectory and the run's own --json-log kept in the checkpoint directory: a resumed
    run's save swaps the directory but loses none of them, and is not mistaken for another run's."""
    path, _, _ = ckpt
    run_dir = tmp_path / "run"
    shutil.copytree(path, run_dir)
    (run_dir / "notes.txt").write_text("lr 1e-3 looked best")
    (run_dir / "plots").mkdir()
    (run_dir / "plots" / "loss.svg").write_text("<svg/>")
    log = run_dir / "steps.jsonl"
    status, out, err = run(["train", "--resume", run_dir, "--steps", 34, "--json-log", log, "--quiet"])
    assert status == 0 and out.strip() == f"saved checkpoint to {run_dir}", err
    assert Trainer.resume(run_dir).step_count == 34
    assert (run_dir / "notes.txt").read_text() == "lr 1e-3 looked best"
    assert (run_dir / "plots" / "loss.svg").read_text() == "<svg/>"
    assert [m["step"] for m in read_log(log)] == [31, 32, 33, 34]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]

"""`tinylm inspect --export / --csv`: the file holds the trace's (and backward trace's) numbers under
the documented names, and opens with `safetensors`."""

import contextlib
import csv
import io
import json

import numpy as np
import pytest
from safetensors import safe_open

from tinylm.core import Corpus, ModelConfig, TrainConfig, backtrace, load, make_trainer, prompt_window, save_checkpoint
from tinylm.core.cli.main import main

TEXT = "the fox and the crow met by the old oak tree. " * 20


def run(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main([str(a) for a in argv])
    return status, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    t = make_trainer(
        Corpus.from_text(TEXT), "char", model_config=ModelConfig(n_layer=2, n_head=2, n_embd=16, block_size=16),
        train_config=TrainConfig(batch_size=4, max_steps=5, eval_interval=100),
    )  # fmt: skip
    for _ in range(5):
        t.step()
    path = tmp_path_factory.mktemp("export") / "run"
    save_checkpoint(path, t.model)
    return path


def _read(path):
    with safe_open(str(path), framework="numpy") as f:
        return {name: f.get_tensor(name) for name in f.keys()}, f.metadata()


def test_forward_export_is_the_trace(ckpt, tmp_path):
    out = tmp_path / "fox.safetensors"
    status, _, err = run(["inspect", ckpt, "--prompt", "the fox", "--export", out])
    assert status == 0 and "wrote" in err
    tensors, meta = _read(out)
    tr = load(ckpt).trace("the fox")
    assert set(tensors) == set(tr.names) | {"ids"}
    for name in tr.names:
        np.testing.assert_array_equal(tensors[name], tr[name], err_msg=name)
    np.testing.assert_array_equal(tensors["ids"], tr.ids)
    assert json.loads(meta["tokens"]) == tr.tokens and meta["prompt"] == "the fox"
    # never replaced without asking
    status, _, err = run(["inspect", ckpt, "--prompt", "the fox", "--export", out])
    assert status == 2 and "already exists" in err and "--overwrite" in err
    assert run(["inspect", ckpt, "--prompt", "the fox", "--export", out, "--overwrite"])[0] == 0


def test_backward_export_holds_every_gradient(ckpt, tmp_path):
    out = tmp_path / "grads.safetensors"
    status, _, err = run(["inspect", ckpt, "--prompt", "the crow", "--backward", "--export", out])
    assert status == 0, err
    tensors, meta = _read(out)
    model = load(ckpt)
    ids, targets = prompt_window(model, "the crow")
    bt = backtrace(model, ids, targets)
    np.testing.assert_array_equal(tensors["targets"], targets)
    np.testing.assert_array_equal(tensors["ids"], ids)
    assert float(meta["loss"]) == pytest.approx(bt.loss, rel=1e-6)
    for name, g in bt.arrays.items():
        np.testing.assert_allclose(tensors[name], g, rtol=1e-5, atol=1e-8, err_msg=name)
    for name, g in bt.grads.items():
        np.testing.assert_allclose(tensors["grad." + name], g, rtol=1e-5, atol=1e-8, err_msg=name)
    _, grads = model.loss_and_grads(ids[None], targets[None])
    fc = "transformer.h.1.mlp.c_fc.weight"
    np.testing.assert_allclose(tensors["grad." + fc], grads[fc], rtol=1e-4, atol=1e-7)


def test_csv_of_one_head(ckpt):
    status, out, err = run(["inspect", ckpt, "--prompt", "the oak", "--csv", "h.1.att[1]"])
    assert status == 0, err
    rows = list(csv.reader(io.StringIO(out)))
    tr = load(ckpt).trace("the oak")
    assert rows[0] == ["token", *map(str, range(7))] and len(rows) == 8
    got = np.array([[float(x) for x in r[1:]] for r in rows[1:]])
    np.testing.assert_array_equal(got, tr["h.1.att"][1].astype(np.float64))
    assert rows[2][0] == "1 h"


def test_csv_of_a_gradient_needs_backward(ckpt):
    status, out, err = run(["inspect", ckpt, "--prompt", "the oak", "--csv", "d.h.0.scores[0]"])
    assert status == 2 and "--backward" in err
    status, out, err = run(["inspect", ckpt, "--prompt", "the oak", "--backward", "--csv", "d.h.0.scores[0]"])
    assert status == 0, err
    model = load(ckpt)
    bt = backtrace(model, *prompt_window(model, "the oak"))
    got = np.array([[float(x) for x in r[1:]] for r in list(csv.reader(io.StringIO(out)))[1:]])
    np.testing.assert_allclose(got, bt["d.h.0.scores"][0], rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize(
    "argv,words",
    [
        (["--csv", "h.0.att"], ["pick one slice", "h.0.att[0]"]),
        (["--csv", "h.0.att[9]"], ["2 slices"]),
        (["--csv", "nope"], ["no such tensor"]),
        (["--csv", "x0[1]"], ["not split by heads"]),
        (["--backward"], ["--export OUT or --csv NAME"]),
        (["--export", "/"], ["directory"]),
        (["--export", "no/such/folder/x.safetensors"], ["does not exist"]),
        (["--backward", "--csv", "x0", "--prompt", "t"], ["at least 2 tokens"]),
    ],
)
def test_bad_export_input_gets_one_line(ckpt, argv, words):
    status, out, err = run(["inspect", ckpt, "--prompt", "the oak", *argv])
    assert status == 2 and err.count("\n") == 1 and "Traceback" not in err
    for w in words:
        assert w in err

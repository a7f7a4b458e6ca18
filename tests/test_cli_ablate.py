"""`tinylm inspect --ablate / --rank-heads`: the printed probabilities are the float64 reference's."""

import contextlib
import io
import re

import numpy as np
import pytest

from tinylm.core import GPT, ModelConfig, reference, save_checkpoint, train_tokenizer
from tinylm.core.cli.main import main

TEXT = "the quick brown fox jumps over the lazy dog"
PROMPT = "over the lazy"


def run(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main([str(a) for a in argv])
    return status, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    tok = train_tokenizer("char", TEXT)
    m = GPT(ModelConfig(vocab_size=tok.vocab_size, block_size=16, n_layer=2, n_head=4, n_embd=16), tok, seed=2)
    m.flat[:] = np.random.default_rng(4).normal(0, 0.3, m.flat.size).astype(np.float32)
    path = tmp_path_factory.mktemp("ablate") / "run"
    save_checkpoint(path, m)
    return path, m


def ref_probs(m, ablate=None):
    ids = m.tokenizer.encode(PROMPT)
    return reference.forward(m.params, ids, m.config.n_head, m.wpe, ablate=ablate)["probs"][-1]


def test_ablate_prints_both_top_lists_and_the_change(ckpt):
    path, m = ckpt
    status, out, err = run(["inspect", path, "--prompt", PROMPT, "--ablate", "1.3", "--ablate", "0.mlp"])
    assert status == 0, err
    before, after = ref_probs(m), ref_probs(m, {"1.3": "zero", "0.mlp": "zero"})
    chosen = int(np.argmax(before))
    line = next(s for s in out.splitlines() if s.startswith("p("))
    shown = [float(x) for x in re.findall(r"[-+]?\d+\.\d{4}", line)]
    assert shown == pytest.approx([before[chosen], after[chosen], after[chosen] - before[chosen]], abs=1e-4)
    first = next(s for s in out.splitlines() if s.startswith(" 1. "))
    p_without, p_with = (float(x) for x in re.findall(r"\d\.\d{4}", first))
    assert p_without == pytest.approx(before.max(), abs=1e-4) and p_with == pytest.approx(after.max(), abs=1e-4)
    assert "layer 1 · head 3 (zeroed)" in out and "layer 0 · MLP (zeroed)" in out  # the screens' words and order


def test_mean_mode_and_attention_layer(ckpt):
    path, m = ckpt
    status, out, err = run(["inspect", path, "--prompt", PROMPT, "--ablate", "0.attn", "--ablate-mode", "mean"])
    assert status == 0, err
    before, after = ref_probs(m), ref_probs(m, {"0.attn": "mean"})
    chosen = int(np.argmax(before))
    line = next(s for s in out.splitlines() if s.startswith("p("))
    assert float(re.findall(r"\d\.\d{4}", line)[1]) == pytest.approx(after[chosen], abs=1e-4)


def test_rank_heads_lists_every_part_with_its_reference_probability(ckpt):
    path, m = ckpt
    status, out, err = run(["inspect", path, "--prompt", PROMPT, "--rank-heads"])
    assert status == 0, err
    before = ref_probs(m)
    chosen = int(np.argmax(before))
    rows = re.findall(r"^\s+\d+\s+(\d\.(?:\d|attn|mlp))\s+(\d\.\d{4})\s+([-+]\d\.\d{4})", out, re.M)
    assert sorted(r[0] for r in rows) == sorted(
        [f"{l}.{h}" for l in range(2) for h in range(4)] + [f"{l}.{p}" for l in range(2) for p in ("attn", "mlp")]
    )
    for part, p_after, delta in rows:
        ref = ref_probs(m, {part: "zero"})[chosen]
        assert float(p_after) == pytest.approx(ref, abs=1e-4), part
        assert float(delta) == pytest.approx(ref - before[chosen], abs=2e-4), part
    changes = [abs(float(r[2])) for r in rows]
    assert changes == sorted(changes, reverse=True)


@pytest.mark.parametrize(
    "part, words",
    [
        ("2.0", ["layer 2", "0 to 1"]),
        ("1.4", ["head 4", "0 to 3"]),
        ("x", ["cannot read"]),
        ("1.attention", ["LAYER.attn"]),
    ],
)
def test_out_of_range_parts_are_one_line_errors(ckpt, part, words):
    status, out, err = run(["inspect", ckpt[0], "--prompt", PROMPT, "--ablate", part])
    assert status == 2 and out == ""
    assert err.startswith("tinylm: error: --ablate") and err.count("\n") == 1
    for w in words:
        assert w in err


def test_set_token_runs_the_edited_prompt(ckpt):
    path, m = ckpt
    status, out, err = run(["inspect", path, "--prompt", PROMPT, "--set-token=-1=x", "--ablate", "0.2"])
    assert status == 0, err
    ids = m.tokenizer.encode(PROMPT)
    ids[-1] = m.tokenizer.encode("x")[0]
    after = reference.forward(m.params, ids, m.config.n_head, m.wpe, ablate={"0.2": "zero"})["probs"][-1]
    before = ref_probs(m)
    chosen = int(np.argmax(before))
    line = next(s for s in out.splitlines() if s.startswith("p("))
    assert float(re.findall(r"\d\.\d{4}", line)[1]) == pytest.approx(after[chosen], abs=1e-4)
    assert "token -1 'y' replaced by 'x'" in out


@pytest.mark.parametrize(
    "value, words", [("30=x", ["position 30", "13 tokens"]), ("3=xy", ["2 tokens"]), ("3", ["POS=TOKEN"])]
)
def test_bad_set_token_is_a_one_line_error(ckpt, value, words):
    status, out, err = run(["inspect", ckpt[0], "--prompt", PROMPT, f"--set-token={value}"])
    assert status == 2 and out == "" and err.count("\n") == 1
    for w in words:
        assert w in err


def test_tokens_read_the_same_in_the_top_list_and_the_knock_out_lists(ckpt):
    """Each list names a token as the same quoted literal, a space as ' ' (the quotes show it)."""
    path, m = ckpt
    status, plain, err = run(["inspect", path, "--prompt", PROMPT])
    assert status == 0, err
    lines = plain.splitlines()
    top = lines.index(next(s for s in lines if "top 10 of" in s))
    top_labels = [re.match(r"\s+\d+\. ('.*?')  id", s).group(1) for s in lines[top + 1 : top + 11]]
    status, out, err = run(["inspect", path, "--prompt", PROMPT, "--ablate", "1.3"])
    assert status == 0, err
    lines = out.splitlines()
    table = lines.index(next(s for s in lines if s.strip().startswith("without")))
    without = [re.match(r"\s*\d+\. ('.*?')\s+\d\.\d{4}", s).group(1) for s in lines[table + 1 : table + 11]]
    assert without == top_labels  # the same tokens, the same words
    assert all(label == repr(m.tokenizer.decode([m.tokenizer.encode(label[1:-1])[0]])) for label in without)
    assert "'␣'" not in out

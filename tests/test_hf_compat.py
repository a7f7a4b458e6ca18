"""Independent implementations: transformers opens our checkpoint; PyTorch autograd checks our gradients."""

import contextlib
import io

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from tinylm.core import ModelConfig, Sampling, TrainConfig, load, load_corpus, make_trainer  # noqa: E402
from tinylm.core.cli.main import main  # noqa: E402


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    tr = make_trainer(
        load_corpus("fables"),
        "char",
        None,
        ModelConfig(n_layer=2, n_head=4, n_embd=32, block_size=24),
        TrainConfig(batch_size=4, max_steps=20, eval_interval=20, eval_batches=1, learning_rate=3e-3),
    )
    for _ in range(20):
        tr.step()
    path = tmp_path_factory.mktemp("hf") / "ckpt"
    tr.save(path)
    return tr.model, path


def hf_model(path):
    m = transformers.GPT2LMHeadModel.from_pretrained(str(path))
    m.eval()
    return m


def test_transformers_gives_the_same_logits(checkpoint):
    model, path = checkpoint
    ids = np.random.default_rng(0).integers(0, model.config.vocab_size, (3, 24))
    with torch.no_grad():
        ref = hf_model(path)(torch.from_numpy(ids)).logits.numpy()
    assert np.abs(model.logits(ids) - ref).max() < 1e-4


def test_gradients_match_pytorch_autograd(checkpoint):
    model, path = checkpoint
    hf = hf_model(path)
    rng = np.random.default_rng(1)
    ids = rng.integers(0, model.config.vocab_size, (2, 24))
    targets = rng.integers(0, model.config.vocab_size, (2, 24))
    logits = hf(torch.from_numpy(ids)).logits
    loss = torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), torch.from_numpy(targets).reshape(-1)
    )
    loss.backward()
    ours_loss, grads = model.loss_and_grads(ids, targets)
    assert ours_loss == pytest.approx(loss.item(), rel=1e-5)
    theirs = dict(hf.named_parameters())
    for name, g in grads.items():
        ref = theirs[name].grad.numpy()
        scale = np.abs(ref).max() + 1e-12
        assert np.abs(g - ref).max() / scale < 1e-4, name


# ----- the whole checkpoint, tokenizer included, through transformers' Auto classes ------------------

PROMPTS = {"char": "The Fox", "word": "The Fox and the", "bpe": "The Fox and the"}


@pytest.fixture(scope="module", params=["char", "word", "bpe"])
def kind_checkpoint(request, tmp_path_factory):
    kind = request.param
    tr = make_trainer(
        load_corpus("fables"),
        kind,
        300 if kind == "bpe" else None,
        ModelConfig(n_layer=2, n_head=2, n_embd=32, block_size=48),
        TrainConfig(batch_size=4, max_steps=30, eval_interval=30, eval_batches=1, learning_rate=3e-3),
    )
    for _ in range(30):
        tr.step()
    path = tmp_path_factory.mktemp("hf") / kind
    tr.save(path)
    return kind, path


def test_auto_classes_generate_what_tinylm_generate_prints(kind_checkpoint):
    kind, path = kind_checkpoint
    prompt, n = PROMPTS[kind], 24
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(path))
    model = transformers.AutoModelForCausalLM.from_pretrained(str(path)).eval()
    ids = tokenizer(prompt, return_tensors="pt")["input_ids"]
    ours = load(path)
    assert ids[0].tolist() == ours.tokenizer.encode(prompt).tolist()
    with torch.no_grad():
        out = model.generate(ids, max_new_tokens=n, do_sample=False, attention_mask=torch.ones_like(ids))
    theirs = out[0, ids.shape[1] :].tolist()
    assert [step.id for step in ours.generate(prompt, Sampling(greedy=True), max_new_tokens=n)] == theirs
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["generate", str(path), "--prompt", prompt, "--tokens", str(n), "--greedy"]) == 0
    assert printed.getvalue() == tokenizer.decode(out[0].tolist()) + "\n"


def test_auto_tokenizer_round_trips_the_corpus(kind_checkpoint):
    kind, path = kind_checkpoint
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(path))
    ours = load(path).tokenizer
    text = load_corpus("fables").text
    text = text[: text.index("\n", 4000) + 1]  # whole words: a cut one is <unk> to the word tokenizer
    ids = tokenizer(text)["input_ids"]
    assert ids == ours.encode(text).tolist()
    assert tokenizer.decode(ids) == text
    unseen = "unseen ∮ 🦊 x² \x1c _a_ ½"
    assert tokenizer(unseen)["input_ids"] == ours.encode(unseen).tolist()  # <unk> where tinylm has it


def test_a_bpe_tokenizer_with_the_legacy_pattern_is_written_for_hugging_face_exactly(tmp_path):
    """tinylm's first BPE chunked text with Python's \\w and \\d; tokenizer.json spells those classes out."""
    import json

    from tinylm.core.tokenizers import BPETokenizer
    from tinylm.core.tokenizers.bpe import LEGACY_BPE_PATTERN

    text = load_corpus("fables").text
    tok = BPETokenizer(BPETokenizer.train(text, 300).merges, LEGACY_BPE_PATTERN)
    tok.save(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    hf = transformers.AutoTokenizer.from_pretrained(str(tmp_path))
    probe = text[:2000] + " x² ½ Ⅻ e\u0301 __x_ \x1c\x1d  \n\n end  "
    assert hf(probe)["input_ids"] == tok.encode(probe).tolist()
    assert hf.decode(tok.encode(probe).tolist()) == probe

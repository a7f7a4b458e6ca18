"""Independent implementations: transformers opens our checkpoint; PyTorch autograd checks our gradients."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from tinylm.core import ModelConfig, TrainConfig, load_corpus, make_trainer  # noqa: E402


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

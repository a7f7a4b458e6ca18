"""Checkpoints: Hugging Face layout, exact round trip, validation of damage, atomic writes."""

import json
import os
import re

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from tinylm.core import CheckpointError, ModelConfig, TrainConfig, load, load_corpus, make_trainer, save_checkpoint


@pytest.fixture
def trained(tmp_path):
    tr = make_trainer(
        load_corpus("fables"),
        "bpe",
        300,
        ModelConfig(n_layer=2, n_head=2, n_embd=16, block_size=16),
        TrainConfig(batch_size=4, max_steps=5, eval_interval=5, eval_batches=1),
    )
    for _ in range(3):
        tr.step()
    path = tmp_path / "ckpt"
    tr.save(path)
    return tr, path


def test_layout_is_hugging_face_gpt2(trained):
    tr, path = trained
    names = set(p.name for p in path.iterdir())
    assert {
        "config.json",
        "model.safetensors",
        "tinylm_tokenizer.json",
        "tokenizer.json",  # Hugging Face's files: AutoTokenizer opens the checkpoint too
        "vocab.json",
        "merges.txt",
        "optimizer.safetensors",
        "trainer_state.json",
    } <= names
    cfg = json.loads((path / "config.json").read_text())
    assert cfg["model_type"] == "gpt2" and cfg["architectures"] == ["GPT2LMHeadModel"]
    assert cfg["n_positions"] == 16 and cfg["n_inner"] == 64 and cfg["activation_function"] == "gelu_new"
    assert cfg["tie_word_embeddings"] is True and cfg["layer_norm_epsilon"] == 1e-5
    assert cfg["tinylm"]["tokenizer"] == "bpe" and cfg["tinylm"]["step"] == 3
    assert cfg["tinylm"]["corpus"]["sha256"] == load_corpus("fables").sha256
    tensors = load_file(str(path / "model.safetensors"))
    assert tensors["transformer.wte.weight"].shape == (300, 16)
    assert tensors["transformer.h.1.attn.c_attn.weight"].shape == (16, 48)
    assert tensors["transformer.h.0.mlp.c_proj.weight"].shape == (64, 16)
    assert all(t.dtype == np.float32 for t in tensors.values())
    assert not any(p.name.startswith(".") for p in path.parent.iterdir())  # no temporary left behind


def test_round_trip_is_exact(trained):
    tr, path = trained
    model = load(path)
    for name, value in tr.model.params.items():
        np.testing.assert_array_equal(model.params[name], value)
    text = "The fox and the crow"
    np.testing.assert_array_equal(model.tokenizer.encode(text), tr.model.tokenizer.encode(text))
    ids = model.tokenizer.encode(text)[None, :16]
    np.testing.assert_array_equal(model.logits(ids), tr.model.logits(ids))


def test_sincos_table_is_saved_as_wpe(tmp_path):
    tr = make_trainer(
        load_corpus("verses"),
        "char",
        None,
        ModelConfig(n_layer=1, n_head=2, n_embd=8, block_size=8, positional="sincos"),
        TrainConfig(batch_size=2, max_steps=2),
    )
    save_checkpoint(tmp_path / "s", tr.model)
    wpe = load_file(str(tmp_path / "s" / "model.safetensors"))["transformer.wpe.weight"]
    np.testing.assert_allclose(wpe, tr.model.wpe)
    assert load(tmp_path / "s").config.positional == "sincos"


def damage_truncate(path):
    f = path / "model.safetensors"
    f.write_bytes(f.read_bytes()[:200])


def damage_json(path):
    (path / "config.json").write_text("{not json")


def damage_missing_tensor(path):
    t = load_file(str(path / "model.safetensors"))
    del t["transformer.h.1.ln_2.bias"]
    save_file(t, str(path / "model.safetensors"))


def damage_shape(path):
    t = load_file(str(path / "model.safetensors"))
    t["transformer.h.0.attn.c_proj.weight"] = np.zeros((16, 15), np.float32)
    save_file(t, str(path / "model.safetensors"))


def damage_nan(path):
    t = load_file(str(path / "model.safetensors"))
    t["transformer.ln_f.weight"][3] = np.nan
    save_file(t, str(path / "model.safetensors"))


def damage_vocab(path):
    cfg = json.loads((path / "config.json").read_text())
    cfg["vocab_size"] = 299
    (path / "config.json").write_text(json.dumps(cfg))


def damage_tokenizer(path):
    (path / "tinylm_tokenizer.json").write_text('{"kind": "bpe"}')


def damage_model_type(path):
    cfg = json.loads((path / "config.json").read_text())
    cfg["model_type"] = "llama"
    (path / "config.json").write_text(json.dumps(cfg))


@pytest.mark.parametrize(
    "damage, words",
    [
        (damage_truncate, "damaged"),
        (damage_json, "not valid JSON"),
        (damage_missing_tensor, "missing tensor transformer.h.1.ln_2.bias"),
        (damage_shape, "has shape (16, 15), expected (16, 16)"),
        (damage_nan, "NaN"),
        (damage_vocab, "tokenizer has 300 tokens"),
        (damage_tokenizer, "ckpt"),
        (damage_model_type, "'llama' model"),
    ],
)
def test_damaged_checkpoints_give_one_line_errors(trained, damage, words):
    _, path = trained
    damage(path)
    with pytest.raises(CheckpointError, match=words.replace("(", r"\(").replace(")", r"\)")) as err:
        load(path)
    assert "\n" not in str(err.value)


def test_missing_file_and_directory_errors(tmp_path, trained):
    _, path = trained
    with pytest.raises(CheckpointError, match="does not exist"):
        load(tmp_path / "nope")
    with pytest.raises(CheckpointError, match="is a file"):
        load(path / "config.json")


def test_failed_save_leaves_the_previous_checkpoint_intact(trained, monkeypatch):
    tr, path = trained
    before = (path / "model.safetensors").read_bytes()
    tr.step()
    import tinylm.core.checkpoint as ck

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(ck, "save_file", boom)
    with pytest.raises(OSError):
        tr.save(path)
    assert (path / "model.safetensors").read_bytes() == before
    assert load(path) is not None
    assert [p.name for p in path.parent.iterdir()] == ["ckpt"]


def test_refuses_to_overwrite_something_that_is_not_a_checkpoint(tmp_path, trained):
    tr, _ = trained
    precious = tmp_path / "notes"
    precious.mkdir()
    (precious / "thesis.txt").write_text("do not lose me")
    with pytest.raises(CheckpointError, match="not a tinylm checkpoint"):
        tr.save(precious)
    assert (precious / "thesis.txt").read_text() == "do not lose me"


@pytest.mark.skipif(not hasattr(os, "mkfifo") or not os.path.exists("/dev/zero"), reason="needs FIFOs and /dev/zero")
@pytest.mark.parametrize("name", ["config.json", "tinylm_tokenizer.json"])
def test_special_files_inside_a_checkpoint_are_refused_without_hanging(trained, name):
    _, path = trained
    (path / name).unlink()
    os.mkfifo(path / name)  # opening it to read would wait for a writer forever
    with pytest.raises(CheckpointError, match=f"{name} is a FIFO"):
        load(path)
    (path / name).unlink()
    (path / name).symlink_to("/dev/zero")  # endless bytes
    with pytest.raises(CheckpointError, match=f"{name} is a character device"):
        load(path)


def test_a_checkpoint_written_the_old_way_still_opens(trained):
    """Before Hugging Face's tokenizer files, a checkpoint held only tinylm_tokenizer.json, and BPE
    tokenizers stored the Python approximation of GPT-2's pattern: such a checkpoint opens, keeps its
    ids, and is saved again with the files Hugging Face reads."""
    from tinylm.core.tokenizers.bpe import LEGACY_BPE_PATTERN

    tr, path = trained
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt"):
        (path / name).unlink()
    data = json.loads((path / "tinylm_tokenizer.json").read_text())
    data["pattern"] = LEGACY_BPE_PATTERN
    (path / "tinylm_tokenizer.json").write_text(json.dumps(data))
    model = load(path)
    assert model.tokenizer.pattern == LEGACY_BPE_PATTERN
    text = "x² + the fox's ½ apple\x1c"
    assert model.tokenizer.chunks(text) == re.findall(LEGACY_BPE_PATTERN, text)
    assert model.tokenizer.decode(model.tokenizer.encode(text)) == text
    again = path.parent / "again"
    save_checkpoint(again, model)
    assert (again / "tokenizer.json").is_file() and (again / "vocab.json").is_file()
    np.testing.assert_array_equal(load(again).tokenizer.encode(text), model.tokenizer.encode(text))


def test_unknown_tensors_are_refused(trained):
    """Every name is checked: an extra tensor in the weights or the optimizer state is refused."""
    from tinylm.core import Trainer

    _, path = trained
    moments = load_file(str(path / "optimizer.safetensors"))
    moments["exp_avg.transformer.h.9.mlp.c_fc.weight"] = np.zeros((2, 2), np.float32)
    save_file(moments, str(path / "optimizer.safetensors"))
    with pytest.raises(CheckpointError, match="exp_avg.transformer.h.9.mlp.c_fc.weight is not an AdamW moment"):
        Trainer.resume(path)
    weights = load_file(str(path / "model.safetensors"))
    weights["transformer.h.0.mlp.extra"] = np.zeros((2,), np.float32)
    save_file(weights, str(path / "model.safetensors"))
    with pytest.raises(CheckpointError, match="transformer.h.0.mlp.extra is not part of a GPT-2"):
        load(path)

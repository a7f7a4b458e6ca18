"""The safetensors reader: the same values as the safetensors library, in any float dtype, and a
checkpoint opens holding its weights once."""

import json
import struct
import subprocess
import sys

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from tinylm.core import GPT, CheckpointError, ModelConfig, save_checkpoint
from tinylm.core.tensorfile import TensorFile


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("out_dtype", [np.float32, np.float64])
def test_reads_what_the_safetensors_library_reads(tmp_path, dtype, out_dtype, monkeypatch):
    import tinylm.core.tensorfile as tf

    monkeypatch.setattr(tf, "_CHUNK", 7)  # several conversion chunks, the last one partial
    rng = np.random.default_rng(0)
    tensors = {"a": rng.normal(size=(5, 9)).astype(dtype), "b": rng.normal(size=(3,)).astype(dtype)}
    save_file(tensors, str(tmp_path / "t.safetensors"), metadata={"format": "pt"})
    reference = load_file(str(tmp_path / "t.safetensors"))
    f = TensorFile(tmp_path / "t.safetensors")
    assert f.names() == {"a", "b"} and f.shape("a") == (5, 9)
    for name, expected in reference.items():
        out = np.full(expected.shape, np.nan, dtype=out_dtype)
        f.read_into(name, out)
        np.testing.assert_array_equal(out, expected.astype(out_dtype))


def _write_raw(path, header: dict, data: bytes):
    head = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(head)) + head + data)


def test_bfloat16_is_widened_exactly(tmp_path):
    values = np.array([1.0, -2.5, 3.140625, 1e-3], dtype=np.float32)
    bits = (values.view(np.uint32) >> 16).astype("<u2")  # bfloat16: the top half of each float32
    exact = (bits.astype(np.uint32) << 16).view(np.float32)
    _write_raw(
        tmp_path / "b.safetensors", {"w": {"dtype": "BF16", "shape": [4], "data_offsets": [0, 8]}}, bits.tobytes()
    )
    out = np.zeros(4, np.float32)
    TensorFile(tmp_path / "b.safetensors").read_into("w", out)
    np.testing.assert_array_equal(out, exact)
    assert np.abs(out - values).max() < 1e-2


@pytest.mark.parametrize(
    "header, data, words",
    [
        ({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, b"\0" * 8, "runs past the file"),
        ({"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 16]}}, b"\0" * 16, "runs past the file"),
        ({"w": {"dtype": "I64", "shape": [2], "data_offsets": [0, 16]}}, b"\0" * 16, "dtype I64"),
    ],
)
def test_damaged_tensors_are_one_line_errors(tmp_path, header, data, words):
    _write_raw(tmp_path / "d.safetensors", header, data)
    with pytest.raises(CheckpointError, match=words):
        TensorFile(tmp_path / "d.safetensors").read_into("w", np.zeros(header["w"]["shape"], np.float32))


def test_a_file_that_is_not_safetensors_is_a_one_line_error(tmp_path):
    (tmp_path / "x.safetensors").write_bytes(b"not a safetensors file at all")
    with pytest.raises(CheckpointError, match="damaged"):
        TensorFile(tmp_path / "x.safetensors")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="VmHWM is Linux's")
def test_opening_a_checkpoint_holds_its_weights_about_once(tmp_path):
    cfg = ModelConfig(vocab_size=20000, block_size=64, n_layer=2, n_head=4, n_embd=512)
    save_checkpoint(tmp_path / "big", GPT(cfg, seed=0))
    code = (
        "from tinylm.core import load\n"
        "from tinylm.core.bench.memory_peak import peak_rss_kb\n"
        "before = peak_rss_kb()\n"
        f"m = load({str(tmp_path / 'big')!r})\n"
        "print(peak_rss_kb() - before, m.flat.nbytes // 1024)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    grown_kb, weights_kb = map(int, out.split())
    print(f"peak grew by {grown_kb / weights_kb:.2f}x the weights ({weights_kb / 1024:.0f} MiB)")
    assert weights_kb > 60_000 and grown_kb < 1.3 * weights_kb

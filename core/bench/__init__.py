"""The `tinylm bench` benchmark: tinylm against a PyTorch GPT of the same shapes, in child processes."""

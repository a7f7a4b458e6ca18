"""tinylm-tui: a Textual dashboard to configure, train, inspect and run a small GPT-2."""

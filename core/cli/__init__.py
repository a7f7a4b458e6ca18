"""The `tinylm` command line, one module per subcommand; `main.main` is the entry point."""

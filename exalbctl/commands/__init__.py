"""One module per subcommand: each adds its parser and sets ``run(args, out, err) -> exit code``."""

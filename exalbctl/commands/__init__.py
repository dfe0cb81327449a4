"""One module per subcommand: each adds its parser and sets ``run(args, out, err) -> exit code``.

``peers`` and ``explain`` slot in here the same way.
"""

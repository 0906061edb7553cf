"""One module per `tinyml` subcommand; each exposes `register(subparsers)`."""

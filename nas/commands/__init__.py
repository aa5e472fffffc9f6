"""One module per ``nas`` subcommand (see ``nas.cli.COMMANDS``)."""

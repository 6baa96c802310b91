"""Training-stack commands, plugged into the runtime's `toolkit` CLI (entry-point group
`toolkit.commands`). Modules here import only click at import time: torch loads when a command
runs, so `toolkit --help` stays fast."""

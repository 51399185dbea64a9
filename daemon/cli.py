"""The ``stackmm`` command: each subcommand lives in ``daemon/commands/<name>.py`` with ``main(argv)``."""

from __future__ import annotations

import importlib
import sys

# subcommand -> module (imported lazily so `stackmm status` does not load ccxt)
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("daemon.commands.run", "run the daemon with a strategy config"),
    "paper-venue": ("daemon.commands.paper_venue", "serve local Binance-compatible paper venues"),
    "status": ("daemon.commands.status", "show an instance's live state from Redis"),
    "pause": ("daemon.commands.control", "stop quoting (orders are cancelled)"),
    "resume": ("daemon.commands.control", "resume quoting"),
    "cancel-all": ("daemon.commands.control", "cancel all of the instance's orders"),
    "inspect": ("daemon.commands.inspect", "print the instance's Redis keys with live values"),
    "config": ("daemon.commands.config", "validate a config file or print a template"),
    "simulate": ("daemon.commands.simulate", "Monte Carlo simulation of the pricing models"),
}


def _usage() -> str:
    width = max(len(name) for name in COMMANDS)
    lines = ["usage: stackmm <command> [options]", "", "commands:"]
    lines += [f"  {name:<{width}}  {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", "Run `stackmm <command> --help` for a command's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        print(f"stackmm: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    result: int = module.main(rest, command=name)
    return result


if __name__ == "__main__":
    sys.exit(main())

"""Subcommand dispatcher: ``python -m bench {text,stt,audio,cost,results,...} ...``.

Each subcommand lives in ``bench.<name>`` and is imported only when chosen,
so a missing or broken benchmark never stops the others. Its ``main(argv)``
gets every argument after the subcommand name and parses them itself
(``python -m bench text --help`` shows the text benchmark's own help).
"""

from __future__ import annotations

import argparse
import importlib
import sys

SUBCOMMANDS = {
    "text": "score strategies on a labelled transcript TSV",
    "stt": "speech-to-text benchmark on audio clips",
    "audio": "end-to-end audio barge-in benchmark",
    "cost": "cost/latency estimate",
    "results": "regenerate the README's Results section from all of them",
    "aec": "echo scenarios with and without acoustic echo cancellation (false interrupts, ERLE)",
    "echo_check": "the acoustic echo check's correlation on the audio bench's echo and user sounds",
    "load": "N sessions at once in one event loop: filter vs IdentityFilter",
    "soak": "a simulated hour on a virtual clock: memory over time, decision counts",
    "fuzz": "hostile-input timings and 100,000 generated frame sequences against the property",
    "train": "rebuild the English model's weights from the MRDA TSV (needs the train extra)",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="{" + ",".join(SUBCOMMANDS) + "}")
    sub.required = True
    for name, help_text in SUBCOMMANDS.items():
        # add_help=False: "--help" after the subcommand goes to the module's own parser.
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    ns, rest = build_parser().parse_known_args(argv)
    module_name = f"bench.{ns.command}"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name == module_name:
            print(
                f"error: 'bench {ns.command}' is not built yet ({module_name.replace('.', '/')}.py is missing)",
                file=sys.stderr,
            )
        else:
            print(f"error: 'bench {ns.command}' cannot be imported: {e}", file=sys.stderr)
        return 2
    except ImportError as e:
        print(f"error: 'bench {ns.command}' cannot be imported: {e}", file=sys.stderr)
        return 2
    if not callable(getattr(module, "main", None)):
        print(f"error: {module_name} has no main(argv) function", file=sys.stderr)
        return 2
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())

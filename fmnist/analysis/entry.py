"""The glue between Hydra and the analysis: errors reach the user as one line."""

from __future__ import annotations

import difflib
import logging
import re
import sys
from pathlib import Path

from omegaconf import DictConfig

from fmnist.analysis.options import known_options
from fmnist.config import unquoted_path_error
from fmnist.analysis.pipeline import main
from fmnist.errors import FmnistError
from fmnist.stopping import signals_as_interrupt

log = logging.getLogger("fmnist.analysis")


def argument_error(argv: list[str]) -> str | None:
    """The one-line error for a path given without its key (`python analyze.py multirun/...`: Hydra would only
    report a lexer error) or for an option conf/analyze.yaml does not have (`sweep_dirs=...`: Hydra's message
    spans lines and suggests `+sweep_dirs`) or for a path Hydra cannot read unquoted (one run dir of a sweep,
    `sweep_dir=multirun/.../0_model.skip=True,seed=0`, or `~/...`: again only a lexer error), else None. An
    option's value (`--cfg job`, `-cd conf`), `+key=` and `hydra.` overrides are left to Hydra (and the former
    to check_options)."""
    known = known_options()
    for before, arg in zip(["", *argv], argv):
        option_value = before.startswith("-") and before not in ("-m", "--multirun")
        if option_value or arg.startswith(("-", "~", "+")):
            continue
        if "=" not in arg:
            if "/" in arg or Path(arg).exists():
                return f"error: {arg} is not a key=value override: python analyze.py sweep_dir={arg}"
            continue
        key = re.split(r"[.\[=]", arg, maxsplit=1)[0]
        if key not in known and key != "hydra" and not key.startswith("hydra/"):
            close = difflib.get_close_matches(key, sorted(known), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            return (f"error: unknown option {key}{hint}: conf/analyze.yaml has {', '.join(sorted(known))} "
                    "(python analyze.py --cfg job shows them)")
        several = f"several sweeps: {key}=[{arg.split('=', 1)[1]}]" if key == "sweep_dir" else ""
        several = None if {"-m", "--multirun"} & set(argv) else several  # -m: one analysis per value
        if message := unquoted_path_error(arg, several):
            return message
    return None


def hydra_main(cfg: DictConfig) -> None:
    """Run the analysis (and report); a user-facing error exits with status 1 and one line, and so does Ctrl-C
    (or SIGTERM, SIGHUP) with status 130: the staging folders are removed and the previous analysis and report
    are kept, as after any failure."""
    try:
        with signals_as_interrupt():
            main(cfg)
    except KeyboardInterrupt:
        log.error("interrupted: the analysis stopped before it was complete; the previous analysis (and report) is "
                  "kept: run the same command again")
        sys.exit(130)
    except FmnistError as exc:
        log.error("error: %s", exc)
        sys.exit(1)

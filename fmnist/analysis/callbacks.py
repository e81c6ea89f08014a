"""The opt-in Hydra callback that analyses a sweep when it ends:

    python train.py -m ... hydra/callbacks=analyze [hydra.callbacks.analyze.report=true]

It runs ``analyze.py sweep_dir=<the sweep dir>`` in a subprocess (its own Hydra instance). Hydra's basic
sweeper raises after a batch with a failed job and then skips ``on_multirun_end``; the analysis then
still runs when the sweep process exits (an ``atexit`` hook armed in ``on_multirun_start``), so a sweep
with failed runs gets its analysis, with the failures reported. A failing analysis is logged, never
turned into a failure of the sweep. A sweep stopped by Ctrl-C (SIGTERM, SIGHUP) is not analysed: the user asked
to stop."""

from __future__ import annotations

import atexit
import logging
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any, Sequence

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from fmnist.config import hydra_quoted
from fmnist.stopping import STOPPED
from fmnist.study import ROOT

log = logging.getLogger("fmnist.analysis")

ANALYZE_SCRIPT = ROOT / "analyze.py"


class AnalyzeSweep(Callback):
    """Run the analysis (and with ``report=True`` the report) of the sweep that just finished."""

    def __init__(self, report: bool = False, overrides: Sequence[str] = ()) -> None:
        self.report = bool(report)
        self.overrides = [str(o) for o in overrides or ()]
        self._pending: Path | None = None

    def command(self, sweep_dir: Path) -> list[str]:
        path = str(sweep_dir)
        if re.search(r"[=,'\"\[\]{}()\s]", path):  # Hydra reads these as syntax unless the value is quoted
            path = hydra_quoted(path)
        return [sys.executable, str(ANALYZE_SCRIPT), f"sweep_dir={path}", f"report={str(self.report).lower()}",
                *self.overrides]

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._pending = Path(config.hydra.sweep.dir).resolve()
        atexit.register(self._run_pending)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        self._run_pending()

    def _run_pending(self) -> None:
        sweep_dir, self._pending = self._pending, None
        if sweep_dir is None:
            return
        cmd = self.command(sweep_dir)
        if STOPPED.is_set():  # Ctrl-C: the user asked to stop, not for the analysis of a partial sweep
            log.info("the sweep was interrupted: not analysed (resume it, or: %s)", shlex.join(cmd))
            return
        log.info("analysing the sweep: %s", shlex.join(cmd))
        code = subprocess.run(cmd).returncode
        if code != 0:
            log.error("the analysis of %s failed (exit status %d); rerun: %s", sweep_dir, code, shlex.join(cmd))

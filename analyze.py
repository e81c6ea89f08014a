"""Analyse sweeps into tables, figures and dead-neuron statistics (report=true: also the LaTeX report).

    python analyze.py sweep_dir=multirun/<date>/<time>_<name> [report=true]

All logic lives in fmnist/analysis/; see README ("Analysis and report") and conf/analyze.yaml."""

import sys

from fmnist.errors import guard_standard_streams, one_line_interrupts

one_line_interrupts()  # a Ctrl-C while torch and Hydra load: one line, not a traceback

import hydra  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

from fmnist.analysis.entry import argument_error, hydra_main  # noqa: E402


@hydra.main(version_base="1.3", config_path="conf", config_name="analyze")
def main(cfg: DictConfig) -> None:
    hydra_main(cfg)


if __name__ == "__main__":
    guard_standard_streams()
    if message := argument_error(sys.argv[1:]):
        sys.exit(message)
    main()

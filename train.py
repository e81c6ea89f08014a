"""Train one configuration (or a sweep with -m). All logic lives in fmnist/; see README."""

import sys

from fmnist.errors import guard_standard_streams, one_line_interrupts

one_line_interrupts()  # a Ctrl-C while torch and Hydra load: one line, not a traceback

import hydra  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

from fmnist.train.entry import argument_error, hydra_main  # noqa: E402


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    return hydra_main(cfg)


if __name__ == "__main__":
    guard_standard_streams()
    if message := argument_error(sys.argv[1:]):
        sys.exit(message)
    main()

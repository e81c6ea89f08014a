"""Train one configuration (or a sweep with -m). All logic lives in fmnist/; see README."""

import sys

import hydra
from omegaconf import DictConfig

from fmnist.errors import guard_standard_streams
from fmnist.train.entry import argument_error, hydra_main


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    return hydra_main(cfg)


if __name__ == "__main__":
    guard_standard_streams()
    if message := argument_error(sys.argv[1:]):
        sys.exit(message)
    main()

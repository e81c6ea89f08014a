"""A gpu_pool worker: `python -m hydra_plugins.fmnist_launchers._worker PAYLOAD RESULT`.

Loads the pickled sweep (Hydra context, the sweep's config, the task function, this job's overrides),
runs the one job as Hydra's own launchers do (`run_job`), and pickles its JobReturn to RESULT."""

from __future__ import annotations

import pickle
import sys


def main(argv: list[str]) -> int:
    import cloudpickle
    from hydra.core.singleton import Singleton
    from hydra.core.utils import run_job, setup_globals
    from omegaconf import open_dict

    payload_path, result_path = argv
    with open(payload_path, "rb") as f:
        payload = pickle.load(f)
    Singleton.set_state(payload["singletons"])
    setup_globals()
    context = payload["hydra_context"]
    config = context.config_loader.load_sweep_config(payload["config"], list(payload["overrides"]))
    with open_dict(config):
        config.hydra.job.id = payload["job_id"]
        config.hydra.job.num = payload["job_num"]
    ret = run_job(hydra_context=context, task_function=payload["task_function"], config=config,
                  job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir")
    try:
        data = cloudpickle.dumps(ret)
    except Exception:  # an unpicklable return value: keep the status, drop the value
        ret.return_value = None if ret.status.name == "COMPLETED" else RuntimeError(str(ret._return_value))
        data = cloudpickle.dumps(ret)
    tmp = result_path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    import os

    os.replace(tmp, result_path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

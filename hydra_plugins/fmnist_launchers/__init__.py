"""fmnist's Hydra launchers (found by Hydra through the `hydra_plugins` namespace package).

- `gpu_pool` (gpu_pool.py): K jobs at a time on every visible GPU, each job in its own process;
  K CPU workers on a machine without a GPU.
- `slurm` (slurm.py): hydra-submitit-launcher's Slurm launcher, except that a job that dies (killed,
  node failure, out of host memory) is recorded as failed and the sweep still ends normally.

Presets: conf/hydra/launcher/*.yaml; README, "Launching"."""

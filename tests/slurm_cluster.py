"""A real single-node Slurm cluster on localhost, for tests: munged, MariaDB, slurmdbd, slurmctld, slurmd.

    python tests/slurm_cluster.py start            # installs what is missing, starts, prints SLURM_CONF=...
    python tests/slurm_cluster.py stop STATE_DIR   # stops every daemon by its pid file
    python tests/slurm_cluster.py stop STATE_DIR --purge   # ... and removes STATE_DIR

Everything the cluster writes (configs, spool, logs, pid files, the database, munge's socket) lives in
one state folder; clients find the cluster through SLURM_CONF (`cluster.env`). Facts found by trying
Slurm on these machines (shared/notes/slurm.md) shape it: accounting through slurmdbd + MariaDB is
required (without it `sacct` fails and a cancelled job makes submitit hang), no cgroups
(proctrack/linuxproc, task/none), daemons as root and munged as user munge, no systemd (daemons are
started by hand and stopped by their pid files, never by name). Needs root (apt-get, daemons)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

PACKAGES = ("slurmctld", "slurmd", "slurm-client", "munge", "slurmdbd", "mariadb-server")
COMMANDS = ("slurmctld", "slurmd", "slurmdbd", "sbatch", "sacct", "scontrol", "sinfo", "munged",
            "mariadbd", "mariadb-install-db", "mariadb")
SBIN_DIRS = ("/usr/sbin", "/sbin", "/usr/bin")
DB_USER, DB_PASS, DB_NAME = "slurm", "fmnist-test", "slurm_acct_db"
PARTITION = "debug"


class ClusterUnavailable(RuntimeError):
    """The cluster cannot be installed or started here; the message says why."""


def _which(cmd: str) -> str | None:
    return shutil.which(cmd) or next((f"{d}/{cmd}" for d in SBIN_DIRS if os.access(f"{d}/{cmd}", os.X_OK)), None)


def missing_commands() -> list[str]:
    return [c for c in COMMANDS if _which(c) is None]


def ensure_installed(timeout: float = 900) -> None:
    """apt-get install the packages when a command is missing (root only)."""
    if not missing_commands():
        return
    if os.geteuid() != 0:
        raise ClusterUnavailable(f"Slurm is not installed ({', '.join(missing_commands())} missing) and "
                                 f"installing it needs root")
    if shutil.which("apt-get") is None:
        raise ClusterUnavailable("Slurm is not installed and there is no apt-get to install it")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    steps = [["apt-get", "update", "-qq"],
             ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *PACKAGES]]
    for cmd in steps:
        try:
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ClusterUnavailable(f"{' '.join(cmd)} failed: {exc}") from exc
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            raise ClusterUnavailable(f"{' '.join(cmd)} failed (exit {proc.returncode}): {' | '.join(tail)}")
    if missing_commands():
        raise ClusterUnavailable(f"still missing after apt-get install: {', '.join(missing_commands())}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (our own unreaped child) counts as gone
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _stop_pid_file(path: Path, timeout: float = 20) -> None:
    """SIGTERM the process named by `path`, wait for it, SIGKILL if it lingers."""
    pid = _read_pid(path)
    if pid is None or not _pid_alive(pid):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _pid_alive(pid):
            return
        time.sleep(0.1)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@dataclass
class SlurmCluster:
    """A cluster's state folder and how to talk to it (`env`, `run`)."""

    root: Path
    hostname: str = field(default_factory=lambda: socket.gethostname().split(".")[0])
    partition: str = PARTITION
    _children: list[subprocess.Popen] = field(default_factory=list, repr=False)
    _hosts_line: str | None = None

    # ----------------------------------------------------------------------------------------- layout
    @property
    def conf(self) -> Path:
        return self.root / "etc" / "slurm.conf"

    @property
    def munge_socket(self) -> Path:
        return self.root / "munge" / "munge.socket"

    def pid_file(self, daemon: str) -> Path:
        return self.root / "run" / f"{daemon}.pid"

    def log_file(self, daemon: str) -> Path:
        return self.root / "log" / f"{daemon}.log"

    @property
    def env(self) -> dict[str, str]:
        """The environment for Slurm clients (sbatch, sacct, submitit) talking to this cluster."""
        return dict(os.environ, SLURM_CONF=str(self.conf))

    def run(self, *cmd: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        proc = subprocess.run(list(cmd), env=self.env, capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise ClusterUnavailable(f"{' '.join(cmd)} failed (exit {proc.returncode}): "
                                     f"{(proc.stderr or proc.stdout).strip()[-500:]}")
        return proc

    def logs_tail(self, lines: int = 8) -> str:
        out = []
        for path in sorted((self.root / "log").glob("*.log")) + [self.root / "mysql" / "mariadb.err"]:
            if path.exists():
                tail = path.read_text(errors="replace").strip().splitlines()[-lines:]
                out.append(f"--- {path.name}\n" + "\n".join(tail))
        return "\n".join(out)

    # ------------------------------------------------------------------------------------------ start
    def start(self, timeout: float = 120) -> SlurmCluster:
        if os.geteuid() != 0:
            raise ClusterUnavailable("starting Slurm daemons needs root")
        ensure_installed()
        try:
            self._ensure_hostname_resolves()
            self._prepare_dirs()
            self._start_munge()
            db_port = self._start_mariadb(timeout)
            dbd_port = _free_port()
            self._write_configs(db_port, dbd_port)
            self._daemon("slurmdbd")
            self._wait_port(dbd_port, timeout, "slurmdbd")
            self._daemon("slurmctld")
            self._daemon("slurmd")
            self._wait_idle(timeout)
        except ClusterUnavailable as exc:
            self.stop()
            raise ClusterUnavailable(f"{exc}\n{self.logs_tail()}") from exc
        except BaseException:
            self.stop()
            raise
        (self.root / "cluster.env").write_text(f"SLURM_CONF={self.conf}\n")
        return self

    def _ensure_hostname_resolves(self) -> None:
        try:
            socket.gethostbyname(self.hostname)
        except OSError:
            self._hosts_line = f"127.0.0.1 {self.hostname}  # fmnist test Slurm cluster"
            with open("/etc/hosts", "a") as f:
                f.write(self._hosts_line + "\n")

    def _prepare_dirs(self) -> None:
        # munged (user munge) must reach its socket folder: the state folder is world-traversable
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o755)
        for sub in ("etc", "run", "log", "spool/ctld", "spool/d", "mysql"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        munge_dir = self.root / "munge"
        munge_dir.mkdir(exist_ok=True)
        shutil.chown(munge_dir, "munge", "munge")
        munge_dir.chmod(0o755)
        key = Path("/etc/munge/munge.key")
        if not key.exists():
            self._check([_which("mungekey") or "mungekey", "--create", f"--keyfile={key}"], "mungekey")
            shutil.chown(key, "munge", "munge")
            key.chmod(0o600)

    def _check(self, cmd: list[str], what: str, timeout: float = 60) -> None:
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ClusterUnavailable(f"{what} failed: {exc}") from exc
        if proc.returncode != 0:
            raise ClusterUnavailable(f"{what} failed (exit {proc.returncode}): "
                                     f"{(proc.stderr or proc.stdout).strip()[-500:]}")

    def _start_munge(self) -> None:
        munge_dir = self.root / "munge"
        self._check(["runuser", "-u", "munge", "--", _which("munged") or "munged",
                     f"--socket={self.munge_socket}", f"--pid-file={munge_dir / 'munged.pid'}",
                     f"--log-file={munge_dir / 'munged.log'}", f"--seed-file={munge_dir / 'munged.seed'}"],
                    "munged")
        shutil.copyfile(munge_dir / "munged.pid", self.pid_file("munged"))

    def _start_mariadb(self, timeout: float) -> int:
        mysql = self.root / "mysql"
        data = mysql / "data"
        if not data.exists():
            self._check([_which("mariadb-install-db") or "mariadb-install-db", "--no-defaults", f"--datadir={data}",
                         "--user=root", "--auth-root-authentication-method=socket", "--skip-test-db"],
                        "mariadb-install-db", timeout=timeout)
        port = _free_port()
        sock = mysql / "mysqld.sock"
        err = open(mysql / "mariadb.err", "ab")
        proc = subprocess.Popen(
            [_which("mariadbd") or "mariadbd", "--no-defaults", f"--datadir={data}", f"--socket={sock}",
             f"--port={port}", "--bind-address=127.0.0.1", f"--pid-file={self.pid_file('mariadbd')}",
             "--user=root", "--skip-name-resolve", "--innodb-buffer-pool-size=32M",
             "--innodb-log-file-size=8M", "--performance-schema=OFF"],
            stdout=err, stderr=err, stdin=subprocess.DEVNULL, start_new_session=True,
        )
        self._children.append(proc)
        deadline = time.monotonic() + timeout
        sql = (f"CREATE DATABASE IF NOT EXISTS {DB_NAME}; "
               f"CREATE USER IF NOT EXISTS '{DB_USER}'@'127.0.0.1' IDENTIFIED BY '{DB_PASS}'; "
               f"GRANT ALL ON {DB_NAME}.* TO '{DB_USER}'@'127.0.0.1'; FLUSH PRIVILEGES;")
        while True:
            if proc.poll() is not None:
                raise ClusterUnavailable(f"mariadbd exited with status {proc.returncode}")
            out = subprocess.run([_which("mariadb") or "mariadb", "--no-defaults", f"--socket={sock}", "-uroot",
                                  "-e", sql], capture_output=True, text=True)
            if out.returncode == 0:
                return port
            if time.monotonic() > deadline:
                raise ClusterUnavailable(f"MariaDB did not come up: {out.stderr.strip()[-300:]}")
            time.sleep(0.3)

    def _write_configs(self, db_port: int, dbd_port: int) -> None:
        cpus, memory = self._node_resources()
        r = self.root
        auth = f"AuthType=auth/munge\nAuthInfo=socket={self.munge_socket}\n"
        dbd = self.conf.with_name("slurmdbd.conf")
        dbd.write_text(
            f"{auth}DbdHost=localhost\nDbdAddr=127.0.0.1\nDbdPort={dbd_port}\nSlurmUser=root\n"
            f"LogFile={self.log_file('slurmdbd')}\nPidFile={self.pid_file('slurmdbd')}\n"
            f"StorageType=accounting_storage/mysql\nStorageHost=127.0.0.1\nStoragePort={db_port}\n"
            f"StorageUser={DB_USER}\nStoragePass={DB_PASS}\nStorageLoc={DB_NAME}\n"
        )
        dbd.chmod(0o600)
        self.conf.write_text(
            f"ClusterName=fmnisttest\nSlurmctldHost={self.hostname}\nSlurmUser=root\nSlurmdUser=root\n"
            f"SlurmctldPort={_free_port()}\nSlurmdPort={_free_port()}\n{auth}"
            f"StateSaveLocation={r / 'spool/ctld'}\nSlurmdSpoolDir={r / 'spool/d'}\n"
            f"SlurmctldPidFile={self.pid_file('slurmctld')}\nSlurmdPidFile={self.pid_file('slurmd')}\n"
            f"SlurmctldLogFile={self.log_file('slurmctld')}\nSlurmdLogFile={self.log_file('slurmd')}\n"
            "ProctrackType=proctrack/linuxproc\nTaskPlugin=task/none\n"
            "SelectType=select/cons_tres\nSelectTypeParameters=CR_CPU\nSchedulerType=sched/backfill\n"
            f"AccountingStorageType=accounting_storage/slurmdbd\nAccountingStorageHost=localhost\n"
            f"AccountingStoragePort={dbd_port}\nAccountingStoragePass={self.munge_socket}\n"
            "JobAcctGatherType=jobacct_gather/none\nJobCompType=jobcomp/none\n"
            "MailProg=/bin/true\nMpiDefault=none\nReturnToService=2\nKillWait=1\nMinJobAge=600\n"
            "SlurmdTimeout=300\nInactiveLimit=0\nJobRequeue=1\n"
            f"NodeName={self.hostname} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory} State=UNKNOWN\n"
            f"PartitionName={self.partition} Nodes={self.hostname} Default=YES MaxTime=INFINITE State=UP\n"
        )

    def _node_resources(self) -> tuple[int, int]:
        out = subprocess.run([_which("slurmd") or "slurmd", "-C"], capture_output=True, text=True).stdout
        fields = dict(kv.split("=", 1) for kv in out.split() if "=" in kv)
        cpus = int(fields.get("CPUs", os.cpu_count() or 1))
        memory = max(1, int(fields.get("RealMemory", 1024)) - 64)
        return cpus, memory

    def _daemon(self, name: str) -> None:
        """Start a Slurm daemon (it forks and writes its pid file); slurmdbd finds slurmdbd.conf beside
        SLURM_CONF."""
        cmd = [_which(name) or name]
        if name != "slurmdbd":
            cmd += ["-f", str(self.conf)]
        if name == "slurmd":
            cmd += ["-N", self.hostname]
        try:
            proc = subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ClusterUnavailable(f"{name} failed to start: {exc}") from exc
        if proc.returncode != 0:
            raise ClusterUnavailable(f"{name} failed to start (exit {proc.returncode}): "
                                     f"{(proc.stderr or proc.stdout).strip()[-300:]}")
        deadline = time.monotonic() + 20
        while _read_pid(self.pid_file(name)) is None:
            if time.monotonic() > deadline:
                raise ClusterUnavailable(f"{name} wrote no pid file")
            time.sleep(0.1)

    def _wait_port(self, port: int, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while True:
            with socket.socket() as s:
                s.settimeout(1)
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    return
            if time.monotonic() > deadline:
                raise ClusterUnavailable(f"{what} does not listen on port {port}")
            time.sleep(0.2)

    def _wait_idle(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        state = ""
        while True:
            proc = self.run("sinfo", "-h", "-o", "%T", check=False, timeout=30)
            state = proc.stdout.strip()
            if state == "idle":
                return
            for daemon in ("slurmctld", "slurmd", "slurmdbd"):
                pid = _read_pid(self.pid_file(daemon))
                if pid is None or not _pid_alive(pid):
                    raise ClusterUnavailable(f"{daemon} died while the cluster was starting")
            if time.monotonic() > deadline:
                raise ClusterUnavailable(f"the node did not become idle (sinfo: {state or proc.stderr.strip()})")
            time.sleep(0.3)

    # ------------------------------------------------------------------------------------------- stop
    def _kill_orphaned_steps(self) -> None:
        """slurmstepd processes of this cluster's jobs outlive slurmd when a job is cancelled just before
        the stop; find them by their working directory (inside this cluster's folder), not by name."""
        root = str(self.root.resolve())
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                cwd = os.readlink(entry / "cwd").removesuffix(" (deleted)")
                comm = (entry / "comm").read_text().strip()
            except OSError:
                continue
            if comm == "slurmstepd" and (cwd == root or cwd.startswith(root + os.sep)):
                try:
                    os.kill(int(entry.name), signal.SIGKILL)
                except OSError:
                    pass

    def stop(self, purge: bool = False) -> None:
        """Cancel the jobs left, then stop every daemon by its pid file (never by name)."""
        if self.conf.exists() and _read_pid(self.pid_file("slurmctld")) is not None:
            try:
                self.run("scancel", "--full", "--user=root", check=False, timeout=20)
            except (OSError, subprocess.TimeoutExpired):
                pass
        for daemon in ("slurmd", "slurmctld", "slurmdbd", "mariadbd", "munged"):
            _stop_pid_file(self.pid_file(daemon))
        self._kill_orphaned_steps()
        for proc in self._children:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        self._children.clear()
        if self._hosts_line is not None:
            try:
                lines = Path("/etc/hosts").read_text().splitlines()
                Path("/etc/hosts").write_text("\n".join(ln for ln in lines if ln != self._hosts_line) + "\n")
            except OSError:
                pass
            self._hosts_line = None
        if purge:
            shutil.rmtree(self.root, ignore_errors=True)


def start_cluster(root: Path | None = None, timeout: float = 120) -> SlurmCluster:
    """Start a cluster in `root` (default: a new folder under the system temp dir)."""
    root = Path(root) if root else Path(tempfile.mkdtemp(prefix="fmnist-slurm-"))
    return SlurmCluster(root).start(timeout)


def main(argv: list[str]) -> int:
    if argv[:1] == ["start"]:
        try:
            cluster = start_cluster(Path(argv[1]) if len(argv) > 1 else None)
        except ClusterUnavailable as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(f"SLURM_CONF={cluster.conf}")
        print(f"# stop: python {sys.argv[0]} stop {cluster.root} [--purge]")
        return 0
    if argv[:1] == ["stop"] and len(argv) >= 2:
        SlurmCluster(Path(argv[1])).stop(purge="--purge" in argv[2:])
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

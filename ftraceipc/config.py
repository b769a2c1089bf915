"""The user's configuration file: Neo4j credentials (issue #4), read only when a setting is not given.

    # ~/.config/ftraceipc/config.toml  (or the file named by $FTRACEIPC_CONFIG); chmod 600
    [neo4j]
    uri = "bolt://localhost:7687"
    user = "neo4j"
    password = "..."

Where: ``$FTRACEIPC_CONFIG`` if set (it must then exist), else ``$XDG_CONFIG_HOME/ftraceipc/config.toml``
or ``~/.config/ftraceipc/config.toml``; under sudo (root with ``SUDO_USER`` set) the invoking user's
``~/.config/ftraceipc/config.toml``, so that ``sudo ftraceipc load ...`` finds the user's settings.
A missing default file is no error.

Precedence, per setting: the explicit argument, else the environment (``NEO4J_URI``, ``NEO4J_USER``,
``NEO4J_PASSWORD``), else the config file, else the default (user ``neo4j``; no URI, no password).
A URI carrying credentials (``bolt://USER:PASSWORD@HOST:7687``) gives the user and password unless they
are explicit arguments; the URI kept (and ever printed) is the one without them. Anything that prints
a URI given by the user goes through ``redact_uri``.

A bad file (not TOML, ``[neo4j]`` not a table, a value not a string, an unknown key) is a ConfigError
with one line naming the file (and, for TOML syntax, the line and column; never a value). A file that
holds a password and that other users may read gets a one-line warning on stderr. A password never
appears in a message or a repr.
"""

from __future__ import annotations

import os
import re
import stat
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

from ftraceipc.errors import CommandError

CONFIG_ENV = "FTRACEIPC_CONFIG"
NEO4J_KEYS = ("uri", "user", "password")
NEO4J_ENV = {"uri": "NEO4J_URI", "user": "NEO4J_USER", "password": "NEO4J_PASSWORD"}
DEFAULT_NEO4J_USER = "neo4j"

_warned: set[str] = set()


# scheme://user:password@ (the password may hold '@': up to the last '@' before the host's end)
_URI_SECRET = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.\-]*://[^:@/?#\s'\"]*):[^/?#\s'\"]*@")
_BARE_SECRET = re.compile(r"^(?P<head>[^:@/?#\s'\"]*):[^/?#\s'\"]*@")  # user:password@host, no scheme
REDACTED = "***"


def redact_uri(text: str | None) -> str | None:
    """``text`` with the password of every ``scheme://user:password@`` in it replaced by ``***``
    (also a whole text ``user:password@host`` without a scheme): what is printed of a URI."""
    if not text:
        return text
    out = _URI_SECRET.sub(rf"\g<head>:{REDACTED}@", text)
    return out if "://" in out else _BARE_SECRET.sub(rf"\g<head>:{REDACTED}@", out)


def uri_credentials(uri: str) -> tuple[str, str | None, str | None]:
    """``uri`` without its ``user:password@`` part, and that user and password (percent-decoded;
    None when absent)."""
    from urllib.parse import unquote, urlsplit, urlunsplit

    if "://" not in uri or "@" not in uri.split("://", 1)[1].split("/", 1)[0]:
        return uri, None, None
    try:
        parts = urlsplit(uri)
    except ValueError:
        return uri, None, None
    host = parts.netloc.rpartition("@")[2]
    user = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    return urlunsplit(parts._replace(netloc=host)), user, password


class ConfigError(CommandError):
    """The configuration file is unreadable or malformed (exit code 2)."""


def _stderr_warning(msg: str) -> None:
    print(f"ftraceipc: warning: {msg}", file=sys.stderr)


def _home_dir(env: Mapping[str, str]) -> Path:
    """The invoking user's home under sudo, else this user's."""
    sudo_user = env.get("SUDO_USER")
    if sudo_user and os.geteuid() == 0 and sudo_user != "root":
        try:
            import pwd

            return Path(pwd.getpwnam(sudo_user).pw_dir)
        except (KeyError, ImportError):
            pass
    return Path(env.get("HOME") or os.path.expanduser("~"))


def config_path(env: Mapping[str, str] | None = None) -> tuple[Path, bool]:
    """The config file to read and whether it was named explicitly (``$FTRACEIPC_CONFIG``)."""
    env = os.environ if env is None else env
    named = env.get(CONFIG_ENV)
    if named:
        return Path(named).expanduser(), True
    if env.get("SUDO_USER") and os.geteuid() == 0 and env.get("SUDO_USER") != "root":
        return _home_dir(env) / ".config" / "ftraceipc" / "config.toml", False
    base = env.get("XDG_CONFIG_HOME")
    root = Path(base) if base else _home_dir(env) / ".config"
    return root / "ftraceipc" / "config.toml", False


def _parse_toml(text: str) -> dict:
    import tomllib  # Python 3.11+ (pyproject: requires-python >= 3.11)

    return tomllib.loads(text)


def read_config(path: Path | None = None, *, env: Mapping[str, str] | None = None,
                warn: Callable[[str], None] | None = None) -> dict:
    """The parsed config file (``{}`` when the default file does not exist). ConfigError for a
    file named by ``$FTRACEIPC_CONFIG`` that is missing, an unreadable file, bad TOML or a bad
    ``[neo4j]`` table; a warning when a file holding a password is readable by other users."""
    explicit = path is not None
    if path is None:
        path, explicit = config_path(env)
    path = Path(path)
    try:
        st = path.stat()
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        if explicit:
            raise ConfigError(f"config file {path} (${CONFIG_ENV}) does not exist") from None
        return {}
    except IsADirectoryError:
        raise ConfigError(f"config file {path} is a directory") from None
    except PermissionError:
        raise ConfigError(f"cannot read config file {path}: permission denied") from None
    except OSError as e:
        raise ConfigError(f"cannot read config file {path}: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path} is not UTF-8 text") from None
    try:
        data = _parse_toml(text)
    except ValueError as e:  # tomllib.TOMLDecodeError: "<what> (at line L, column C)", no values
        raise ConfigError(f"config file {path} is not valid TOML: {str(e).splitlines()[0]}") from None
    neo = data.get("neo4j")
    if neo is not None:
        if not isinstance(neo, dict):
            raise ConfigError(f"config file {path}: [neo4j] must be a table (uri, user, password)")
        unknown = sorted(set(neo) - set(NEO4J_KEYS))
        if unknown:
            raise ConfigError(f"config file {path}: unknown key(s) in [neo4j]: {', '.join(unknown)}",
                              hint=f"the keys are {', '.join(NEO4J_KEYS)}")
        for k in NEO4J_KEYS:
            if k in neo and not isinstance(neo[k], str):
                raise ConfigError(f"config file {path}: neo4j.{k} must be a string, "
                                  f"not {type(neo[k]).__name__}")
        if neo.get("password") is not None and st.st_mode & (stat.S_IRGRP | stat.S_IROTH):
            key = str(path.resolve())
            if key not in _warned:
                _warned.add(key)
                (warn or _stderr_warning)(
                    f"{path} holds a Neo4j password and other users may read it "
                    f"(mode {stat.S_IMODE(st.st_mode):04o}); chmod 600 {path}")
    return data


@dataclass(frozen=True)
class Neo4jSettings:
    """Resolved Neo4j connection settings; ``source`` tells where each came from
    (``argument``, ``environment``, the config file's path, ``default``). The password is kept out
    of the repr."""

    uri: str | None
    user: str
    password: str | None = field(repr=False)
    source: dict[str, str] = field(default_factory=dict, compare=False)

    def __str__(self) -> str:
        return f"Neo4j {self.uri} as {self.user} (password {'set' if self.password else 'not set'})"


def neo4j_settings(uri: str | None = None, user: str | None = None, password: str | None = None, *,
                   env: Mapping[str, str] | None = None, path: Path | None = None,
                   warn: Callable[[str], None] | None = None) -> Neo4jSettings:
    """URI, user and password: explicit arguments > environment > config file > defaults. The
    config file is read only if a setting is still missing."""
    env = os.environ if env is None else env
    given = {"uri": uri or None, "user": user or None, "password": password}
    out: dict[str, str | None] = {}
    source: dict[str, str] = {}
    for k in NEO4J_KEYS:
        if given[k] is not None:
            out[k], source[k] = given[k], "argument"
        elif env.get(NEO4J_ENV[k]) not in (None, "") or (k == "password" and NEO4J_ENV[k] in env):
            out[k], source[k] = env[NEO4J_ENV[k]], "environment"
    if any(k not in out for k in NEO4J_KEYS):
        where = Path(path) if path is not None else config_path(env)[0]
        neo = read_config(path, env=env, warn=warn).get("neo4j") or {}
        for k in NEO4J_KEYS:
            if k not in out and neo.get(k) is not None:
                out[k], source[k] = neo[k], str(where)
    if out.get("uri"):
        out["uri"], uri_user, uri_password = uri_credentials(out["uri"])
        for k, v in (("user", uri_user), ("password", uri_password)):
            if v is not None and source.get(k) != "argument":
                out[k], source[k] = v, "uri"
    if "user" not in out:
        out["user"], source["user"] = DEFAULT_NEO4J_USER, "default"
    return Neo4jSettings(out.get("uri"), out["user"], out.get("password"), source)

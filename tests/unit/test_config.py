"""The config file (ftraceipc.config): where it is looked for, precedence arguments > environment >
file > defaults, one-line errors for bad files, the warning for a password others may read, and no
password in any message or repr."""

from __future__ import annotations

import os

import pytest

from ftraceipc import config
from ftraceipc.config import ConfigError, config_path, neo4j_settings, read_config
from ftraceipc.errors import FtraceIPCError

SECRET = "s3cret-pw-do-not-print"


def write(path, text, mode=0o600):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    return path


@pytest.fixture(autouse=True)
def clean(monkeypatch):
    for v in ("NEO4J_URI", "NEO4J_USER", "NEO4J_PASSWORD", "FTRACEIPC_CONFIG", "SUDO_USER", "XDG_CONFIG_HOME"):
        monkeypatch.delenv(v, raising=False)
    config._warned.clear()


def full(tmp_path, mode=0o600):
    return write(tmp_path / "c.toml", f'[neo4j]\nuri = "bolt://file:7687"\nuser = "fileuser"\npassword = "{SECRET}"\n',
                 mode)


def test_paths(tmp_path):
    assert config_path({"FTRACEIPC_CONFIG": str(tmp_path / "x.toml"), "HOME": "/h"}) == (tmp_path / "x.toml", True)
    assert config_path({"XDG_CONFIG_HOME": "/xdg", "HOME": "/h"}) == (
        config.Path("/xdg/ftraceipc/config.toml"), False)
    if os.geteuid() != 0:
        assert config_path({"HOME": "/h", "SUDO_USER": "nobody"})[0] == config.Path("/h/.config/ftraceipc/config.toml")


@pytest.mark.skipif(os.geteuid() != 0, reason="the sudo case applies to root only")
def test_sudo_uses_the_invoking_users_home():
    import pwd

    user = next(p for p in pwd.getpwall() if p.pw_uid != 0 and p.pw_dir not in ("", "/"))  # daemon, nobody...
    path, named = config_path({"SUDO_USER": user.pw_name, "HOME": "/root", "XDG_CONFIG_HOME": "/root/.config"})
    assert path == config.Path(user.pw_dir) / ".config" / "ftraceipc" / "config.toml" and not named


def test_file_only(tmp_path):
    s = neo4j_settings(env={"FTRACEIPC_CONFIG": str(full(tmp_path))})
    assert (s.uri, s.user, s.password) == ("bolt://file:7687", "fileuser", SECRET)
    assert s.source == dict.fromkeys(("uri", "user", "password"), str(tmp_path / "c.toml"))
    assert SECRET not in repr(s) and SECRET not in str(s)


def test_precedence(tmp_path):
    env = {"FTRACEIPC_CONFIG": str(full(tmp_path)), "NEO4J_URI": "bolt://env:7687", "NEO4J_PASSWORD": "env-pw"}
    s = neo4j_settings(env=env)
    assert (s.uri, s.user, s.password) == ("bolt://env:7687", "fileuser", "env-pw")
    assert s.source["uri"] == "environment" and s.source["user"].endswith("c.toml")
    s = neo4j_settings("bolt://arg:7687", "arguser", "arg-pw", env=env)
    assert (s.uri, s.user, s.password) == ("bolt://arg:7687", "arguser", "arg-pw")
    assert set(s.source.values()) == {"argument"}


def test_defaults_without_a_file(tmp_path):
    s = neo4j_settings(env={"HOME": str(tmp_path)})  # ~/.config/ftraceipc/config.toml does not exist
    assert (s.uri, s.user, s.password) == (None, "neo4j", None) and s.source == {"user": "default"}


def test_file_not_read_when_everything_is_given(tmp_path):
    bad = write(tmp_path / "bad.toml", "not toml at all [[[")
    s = neo4j_settings("bolt://a:1", "u", "p", env={"FTRACEIPC_CONFIG": str(bad)})
    assert s.password == "p"


def test_empty_password_in_env_counts_as_given(tmp_path):
    s = neo4j_settings(env={"FTRACEIPC_CONFIG": str(full(tmp_path)), "NEO4J_PASSWORD": ""})
    assert s.password == "" and s.source["password"] == "environment"


@pytest.mark.parametrize("text, match", [
    ('[neo4j]\npassword = "x\n', r"is not valid TOML: .*line 2"),
    ("neo4j = 3\n", r"\[neo4j\] must be a table"),
    ("[neo4j]\nuri = 7687\n", r"neo4j.uri must be a string, not int"),
    (f'[neo4j]\npasword = "{SECRET}"\n', r"unknown key\(s\) in \[neo4j\]: pasword"),
])
def test_bad_files_are_one_line_errors(tmp_path, text, match):
    path = write(tmp_path / "c.toml", text)
    with pytest.raises(ConfigError, match=match) as e:
        neo4j_settings(env={"FTRACEIPC_CONFIG": str(path)})
    line = e.value.line()
    assert isinstance(e.value, FtraceIPCError) and e.value.exit_code == 2
    assert "\n" not in line and str(path) in line and SECRET not in line


def test_bad_toml_never_echoes_the_value(tmp_path):
    path = write(tmp_path / "c.toml", f'[neo4j]\npassword = "{SECRET}" junk\n')
    with pytest.raises(ConfigError) as e:
        read_config(path)
    assert SECRET not in e.value.line()


def test_named_file_must_exist(tmp_path):
    with pytest.raises(ConfigError, match=r"c.toml \(\$FTRACEIPC_CONFIG\) does not exist"):
        neo4j_settings(env={"FTRACEIPC_CONFIG": str(tmp_path / "c.toml")})


def _as_nobody(f) -> str:
    """``f()``'s ConfigError message (or "no error"), run by an unprivileged user: in this process when
    it is not root, else in a forked child that drops to uid/gid 65534 (and so every capability)."""
    def attempt() -> str:
        try:
            f()
        except ConfigError as e:
            return str(e)
        return "no error"

    if os.geteuid() != 0:
        return attempt()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: drop root, try, report, exit without running pytest's cleanup
        code = 1
        try:
            os.close(r)
            os.setgroups([])
            os.setresgid(65534, 65534, 65534)
            os.setresuid(65534, 65534, 65534)
            os.write(w, attempt().encode())
            code = 0
        finally:
            os._exit(code)
    os.close(w)
    with os.fdopen(r, "rb") as f_r:
        said = f_r.read().decode()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, said
    return said


def test_unreadable():
    import tempfile

    d = tempfile.mkdtemp(prefix="ftraceipc-config-")  # in /tmp, traversable by anyone: only the file is shut
    try:
        os.chmod(d, 0o755)
        path = write(config.Path(d) / "c.toml", "[neo4j]\n", 0o000)
        assert _as_nobody(lambda: read_config(path)) == f"cannot read config file {path}: permission denied"
    finally:
        import shutil

        shutil.rmtree(d)


def test_directory(tmp_path):
    with pytest.raises(ConfigError, match="is a directory"):
        read_config(tmp_path)


def test_world_readable_password_warns_once(tmp_path):
    path = full(tmp_path, 0o644)
    seen = []
    for _ in range(2):
        assert neo4j_settings(env={"FTRACEIPC_CONFIG": str(path)}, warn=seen.append).password == SECRET
    assert len(seen) == 1 and "other users may read it (mode 0644); chmod 600" in seen[0]
    assert SECRET not in seen[0]
    config._warned.clear()
    quiet = []
    write(tmp_path / "nopw.toml", '[neo4j]\nuri = "bolt://x:1"\n', 0o644)
    read_config(tmp_path / "nopw.toml", warn=quiet.append)  # no password: nothing to warn about
    read_config(full(tmp_path / "private", 0o600), warn=quiet.append)
    assert quiet == []


def test_warning_goes_to_stderr(tmp_path, capsys):
    read_config(full(tmp_path, 0o604))
    err = capsys.readouterr().err
    assert err.startswith("ftraceipc: warning: ") and err.count("\n") == 1 and SECRET not in err


def test_other_tables_are_ignored(tmp_path):
    path = write(tmp_path / "c.toml", '[other]\nx = 1\n[neo4j]\nuser = "u"\n')
    assert neo4j_settings(env={"FTRACEIPC_CONFIG": str(path)}).user == "u"


@pytest.mark.parametrize("text, shown", [
    ("bolt://neo4j:s3cret@127.0.0.1:1", "bolt://neo4j:***@127.0.0.1:1"),
    ("cannot reach Neo4j at neo4j+s://ipc:p@ss:w@db:7687/x; is it running?",
     "cannot reach Neo4j at neo4j+s://ipc:***@db:7687/x; is it running?"),
    ("--neo4j 'neo4j:s3cret@db:7687' is not a URI", "--neo4j 'neo4j:s3cret@db:7687' is not a URI"),
    ("neo4j:s3cret@db:7687", "neo4j:***@db:7687"),  # a whole value without a scheme
    ("bolt://db:7687 and bolt://u@db:1", "bolt://db:7687 and bolt://u@db:1"),  # nothing to hide
])
def test_redact_uri_hides_every_password(text, shown):
    assert config.redact_uri(text) == shown


def test_credentials_in_the_uri_are_taken_out_of_it(tmp_path):
    s = neo4j_settings("bolt://ipc:s3%40cret@db:7687", env={"NEO4J_PASSWORD": "env"}, path=full(tmp_path))
    assert (s.uri, s.user, s.password) == ("bolt://db:7687", "ipc", "s3@cret")
    assert s.source["password"] == "uri" and "s3" not in str(s) + repr(s)
    s = neo4j_settings("bolt://ipc:s3cret@db:7687", user="arg", password="argpw", path=full(tmp_path))
    assert (s.uri, s.user, s.password) == ("bolt://db:7687", "arg", "argpw")  # explicit arguments win
    s = neo4j_settings(env={"NEO4J_URI": "neo4j://u:pw-env@db:1"}, path=full(tmp_path))
    assert (s.uri, s.user, s.password) == ("neo4j://db:1", "u", "pw-env")

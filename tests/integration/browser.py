"""The headless-browser test kit: load a page in a real headless Chromium and read back what it
recorded, take a screenshot and tell whether it shows anything.

Pages made by ``ftraceipc.report`` record, for tests, in the DOM (``--dump-dom`` returns it):

- ``<body data-ready="1" data-nodes="N" data-edges="M">``: set once the vis network has drawn
  (N/M: the nodes and edges the network actually holds); a page with no graph sets them to 0;
- ``<pre id="ftipc-errors" hidden>``: one line per JavaScript error (``window.onerror`` and
  unhandled promise rejections).

    from tests.integration import browser        # or: import browser (tests/integration on sys.path)
    browser.require()                            # pytest.skip(reason) without chromium
    page = browser.load(path)                    # {"errors": [...], "nodes": 12, "edges": 14, "ready": True, ...}
    browser.screenshot(path, png)
    assert browser.not_blank(png)

Chromium runs with a throw-away profile in its own process group; it is killed (by its pid) on
timeout, so no browser is left behind.
"""

from __future__ import annotations

import html as _html
import os
import re
import shutil
import signal
import struct
import subprocess
import tempfile
import zlib
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
BUDGET_MS = 8000  # virtual time the page gets (physics, drawing) before the DOM is dumped
TIMEOUT_S = 90  # wall-clock limit for one chromium run
WINDOW = (1280, 900)


def find() -> str | None:
    """The chromium binary, or None."""
    env = os.environ.get("FTRACEIPC_CHROMIUM")
    if env and shutil.which(env):
        return shutil.which(env)
    for n in NAMES:
        p = shutil.which(n)
        if p:
            return p
    return None


def require() -> str:
    """The chromium binary; skips the calling test (with the reason) when there is none."""
    p = find()
    if p is None:
        from components import skip

        skip("chromium", "no headless browser (chromium, chromium-browser, google-chrome or $FTRACEIPC_CHROMIUM)")
    return p


def _url(path: str | os.PathLike) -> str:
    return Path(path).resolve().as_uri()


def _run(args: list[str], timeout: float) -> subprocess.CompletedProcess:
    """Run chromium with a temporary profile in a new session; kill its process group on timeout."""
    exe = require()
    with tempfile.TemporaryDirectory(prefix="ftipc-chromium-") as prof:
        cmd = [exe, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
               "--no-first-run", "--no-default-browser-check", "--disable-extensions",
               "--disable-background-networking", "--disable-sync", "--disable-component-update",
               "--mute-audio", "--hide-scrollbars", "--disable-breakpad", "--disable-crash-reporter", f"--user-data-dir={prof}",
               "--enable-logging=stderr", "--v=0", *args]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                errors="replace", start_new_session=True)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            out, err = proc.communicate()
            raise AssertionError(f"chromium did not finish in {timeout} s: {' '.join(cmd)}\n{err[-2000:]}")
        finally:
            # children (renderer, gpu, zygote) share the process group: make sure none is left
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


class _Dom(HTMLParser):
    """The body's attributes, the error element's text and the visible text of a dumped DOM."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.body: dict[str, str] = {}
        self.errors_text: list[str] = []
        self.text: list[str] = []
        self._in_errors = 0
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        a = {k: (v or "") for k, v in attrs}
        if tag == "body":
            self.body = a
        if a.get("id") == "ftipc-errors":
            self._in_errors = 1
        elif self._in_errors and tag not in ("br",):
            self._in_errors += 1
        if tag in ("script", "style"):
            self._skip += 1

    def handle_endtag(self, tag):
        if self._in_errors:
            self._in_errors -= 1
        if tag in ("script", "style") and self._skip:
            self._skip -= 1

    def handle_data(self, data):
        if self._in_errors:
            self.errors_text.append(data)
        elif not self._skip:
            self.text.append(data)


def _int(v: str | None) -> int | None:
    try:
        return int(v) if v not in (None, "") else None
    except ValueError:
        return None


def _body_tag(dom: str) -> str:
    m = re.search(r"<body\b[^>]*>", dom)
    return m.group(0) if m else ""


CONSOLE_ERROR = re.compile(r'(Uncaught [^"\n]*|"[^"\n]*Error[^"\n]*", source: [^\n]*)')


def load(html_path: str | os.PathLike, *, budget_ms: int = BUDGET_MS, timeout: float = TIMEOUT_S) -> dict:
    """Load a page headless and return what it recorded:

    ``errors`` (JavaScript errors: the page's own list plus uncaught errors chromium logged),
    ``nodes``/``edges`` (ints, or None when the page never set them), ``ready`` (bool),
    ``body`` (all the body's attributes), ``text`` (the page's visible text), ``dom`` (the dump),
    ``console`` (chromium's console lines). A page that has not set ``data-ready`` when the budget
    runs out is loaded once more with three times the budget (a busy machine can starve the frames
    while virtual time runs on)."""
    r = _run([f"--virtual-time-budget={budget_ms}", "--dump-dom", _url(html_path)], timeout)
    if 'data-ready="1"' not in _body_tag(r.stdout):
        # not drawn yet: a busy machine may starve chromium's frames while virtual time runs out; once more
        r = _run([f"--virtual-time-budget={budget_ms * 3}", "--dump-dom", _url(html_path)], timeout)
    dom = r.stdout
    p = _Dom()
    p.feed(dom)
    page_errors = [ln for ln in "".join(p.errors_text).splitlines() if ln.strip()]
    console = [ln for ln in r.stderr.splitlines() if "CONSOLE" in ln or "Uncaught" in ln]
    logged = [m.group(1) for ln in console if ":ERROR:" in ln or "Uncaught" in ln
              for m in [CONSOLE_ERROR.search(ln)] if m]
    body = p.body
    return {
        "errors": page_errors + [e for e in logged if not any(e in pe or pe in e for pe in page_errors)],
        "nodes": _int(body.get("data-nodes")),
        "edges": _int(body.get("data-edges")),
        "ready": body.get("data-ready") == "1",
        "body": body,
        "text": _html.unescape(" ".join(" ".join(p.text).split())),
        "dom": dom,
        "console": console,
        "returncode": r.returncode,
    }


def screenshot(html_path: str | os.PathLike, png_path: str | os.PathLike, *, window: tuple[int, int] = WINDOW,
               budget_ms: int = BUDGET_MS, timeout: float = TIMEOUT_S) -> Path:
    """A PNG of the page after ``budget_ms`` of virtual time, ``window`` pixels large."""
    png = Path(png_path).resolve()
    png.unlink(missing_ok=True)
    r = _run([f"--virtual-time-budget={budget_ms}", f"--screenshot={png}",
              f"--window-size={window[0]},{window[1]}", _url(html_path)], timeout)
    if not png.exists() or png.stat().st_size == 0:
        raise AssertionError(f"chromium wrote no screenshot (exit {r.returncode}):\n{r.stderr[-2000:]}")
    return png


# --- PNG decoding (no PIL) ---------------------------------------------------------------------------
_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def decode_png(png_path: str | os.PathLike) -> tuple[int, int, int, list[bytes]]:
    """(width, height, bytes per pixel, rows of raw pixel bytes) of an 8-bit, non-interlaced PNG."""
    data = Path(png_path).read_bytes()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{png_path}: not a PNG")
    pos, idat, ihdr, palette = 8, [], None, None
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + n]
        pos += 12 + n
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"PLTE":
            palette = body
        elif kind == b"IEND":
            break
    if ihdr is None:
        raise ValueError(f"{png_path}: no IHDR")
    w, h, depth, ctype, _, _, interlace = ihdr
    if depth != 8 or interlace or ctype not in _CHANNELS:
        raise ValueError(f"{png_path}: unsupported PNG (depth {depth}, colour type {ctype}, interlace {interlace})")
    bpp = _CHANNELS[ctype]
    raw = zlib.decompress(b"".join(idat))
    stride = w * bpp
    rows: list[bytes] = []
    prev = bytearray(stride)
    for y in range(h):
        off = y * (stride + 1)
        f = raw[off]
        cur = bytearray(raw[off + 1:off + 1 + stride])
        if f == 1:
            for i in range(bpp, stride):
                cur[i] = (cur[i] + cur[i - bpp]) & 255
        elif f == 2:
            cur = bytearray((a + b) & 255 for a, b in zip(cur, prev))
        elif f == 3:
            for i in range(stride):
                left = cur[i - bpp] if i >= bpp else 0
                cur[i] = (cur[i] + ((left + prev[i]) >> 1)) & 255
        elif f == 4:
            for i in range(stride):
                if i >= bpp:
                    cur[i] = (cur[i] + _paeth(cur[i - bpp], prev[i], prev[i - bpp])) & 255
                else:
                    cur[i] = (cur[i] + prev[i]) & 255
        elif f != 0:
            raise ValueError(f"{png_path}: bad filter {f} in row {y}")
        rows.append(bytes(cur))
        prev = cur
    if ctype == 3 and palette is not None:  # palette: expand to RGB
        rows = [b"".join(palette[3 * i:3 * i + 3] for i in r) for r in rows]
        bpp = 3
    return w, h, bpp, rows


def pixel_stats(png_path: str | os.PathLike) -> dict:
    """Background colour (the commonest), share of other pixels, number of distinct colours."""
    w, h, bpp, rows = decode_png(png_path)
    counts: Counter = Counter()
    for r in rows:
        counts.update(r[i:i + bpp] for i in range(0, len(r), bpp))
    total = w * h
    bg, n_bg = counts.most_common(1)[0]
    return {"width": w, "height": h, "background": tuple(bg), "non_background": 1 - n_bg / total,
            "colours": len(counts)}


def not_blank(png_path: str | os.PathLike, *, min_share: float = 0.02, min_colours: int = 8) -> bool:
    """True when at least ``min_share`` of the pixels differ from the background colour and the
    picture has more than ``min_colours`` distinct colours (text alone on white is ~1 %)."""
    s = pixel_stats(png_path)
    return s["non_background"] >= min_share and s["colours"] > min_colours

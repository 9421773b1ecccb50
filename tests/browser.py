"""A tiny Chrome DevTools Protocol client for the tests: a real headless Chromium renders a page and
the test asserts what a person would see (the DOM after layout, console errors, requests made).

The protocol runs over Chromium's ``--remote-debugging-pipe`` (JSON messages ended by NUL on file
descriptors 3 and 4), so there is no port to pick and no websocket library to install: the
standard library is enough. Debian's ``chromium`` package is the browser (``./run tests`` installs
it when it runs as root); ``find_chromium`` returns None where there is none.
"""

from __future__ import annotations

import base64
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")


def find_chromium() -> str | None:
    env = os.environ.get("CHROMIUM")
    if env and Path(env).exists():
        return env
    return next((p for p in map(shutil.which, CANDIDATES) if p), None)


def install_chromium() -> str | None:
    """apt-get install chromium when running as root on Debian/Ubuntu; the path, or None."""
    found = find_chromium()
    if found or os.geteuid() != 0 or not shutil.which("apt-get"):
        return found
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for argv in (
        ["apt-get", "install", "-y", "-q", "chromium"],
        ["apt-get", "update", "-q"],
        ["apt-get", "install", "-y", "-q", "chromium"],
    ):
        subprocess.run(argv, env=env, capture_output=True, timeout=900, check=False)
        found = find_chromium()
        if found:
            return found
    return None


def artifacts_dir() -> Path:
    """Where the screenshots go for people to look at: $PREFLIGHT_ARTIFACTS, else test-artifacts/ in the
    checkout (git-ignored; pytest's own tmp dirs are rotated away by later runs)."""
    d = Path(os.environ.get("PREFLIGHT_ARTIFACTS") or Path(__file__).resolve().parents[1] / "test-artifacts")
    d.mkdir(parents=True, exist_ok=True)
    return d


class CDPError(Exception):
    pass


class Browser:
    """One headless Chromium; ``open(url)`` gives a Page. Use as a context manager."""

    def __init__(self, exe: str, timeout: float = 60.0):
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="cdp_profile_")
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()

        def wire() -> None:  # in the child: the pipe ends on fds 3 (commands in) and 4 (replies out)
            for fd, target in ((to_child_r, 3), (from_child_w, 4)):
                if fd != target:
                    os.dup2(fd, target)
                os.set_inheritable(target, True)

        argv = [
            exe,
            "--headless",
            "--remote-debugging-pipe",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--mute-audio",
            f"--user-data-dir={self.profile}",
            "about:blank",
        ]
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            preexec_fn=wire,
            close_fds=False,
        )
        os.close(to_child_r)
        os.close(from_child_w)
        self._buf = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []

    # -- the wire -------------------------------------------------------------------------------
    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict[str, Any]:
        self._next_id += 1
        msg: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._to_child, json.dumps(msg).encode() + b"\0")
        while True:
            reply = self._read()
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise CDPError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_event(self, method: str, session: str | None = None) -> dict[str, Any]:
        for ev in self.events:
            if ev.get("method") == method and (session is None or ev.get("sessionId") == session):
                return ev
        while True:
            ev = self._read()
            self.events.append(ev)
            if ev.get("method") == method and (session is None or ev.get("sessionId") == session):
                return ev

    def _read(self) -> dict[str, Any]:
        deadline = time.monotonic() + self.timeout
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self._from_child], [], [], max(0.0, left))
            if not ready:
                raise CDPError(f"no answer from Chromium in {self.timeout:.0f}s")
            chunk = os.read(self._from_child, 1 << 16)
            if not chunk:
                err = self.proc.stderr.read().decode(errors="replace")[-2000:] if self.proc.stderr else ""
                raise CDPError(f"Chromium closed the pipe (exit {self.proc.poll()}): {err}")
            self._buf += chunk
        raw, _, self._buf = self._buf.partition(b"\0")
        return json.loads(raw)

    # -- pages ----------------------------------------------------------------------------------
    def open(self, url: str, width: int = 1200, height: int = 900) -> Page:
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self, session)
        for domain in ("Page", "Runtime", "Network", "Log"):
            self.send(f"{domain}.enable", {}, session)
        self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
            session,
        )
        self.send("Page.navigate", {"url": url}, session)
        self.wait_event("Page.loadEventFired", session)
        return page

    def close(self) -> None:
        try:
            if self.proc.poll() is None:
                self.send("Browser.close")
        except (CDPError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in (self._to_child, self._from_child):
            try:
                os.close(fd)
            except OSError:
                pass
        if self.proc.stderr:
            self.proc.stderr.close()
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class Page:
    def __init__(self, browser: Browser, session: str):
        self.browser, self.session = browser, session

    def eval(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (JSON-able values)."""
        out = self.browser.send("Runtime.evaluate", {"expression": expression, "returnByValue": True}, self.session)
        if "exceptionDetails" in out:
            raise CDPError(f"{expression}: {out['exceptionDetails'].get('text')}")
        return out.get("result", {}).get("value")

    def screenshot(self, path: str | Path) -> Path:
        """The whole page (beyond the viewport) as PNG."""
        data = self.browser.send(
            "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}, self.session
        )["data"]
        Path(path).write_bytes(base64.b64decode(data))
        return Path(path)

    def _events(self, method: str) -> list[dict[str, Any]]:
        return [
            e.get("params", {})
            for e in self.browser.events
            if e.get("method") == method and e.get("sessionId") == self.session
        ]

    def console_errors(self) -> list[str]:
        """Console errors, uncaught exceptions and browser log errors (CSP violations among them)."""
        out = [str(e.get("exceptionDetails", {}).get("text")) for e in self._events("Runtime.exceptionThrown")]
        out += [
            " ".join(str(a.get("value", a.get("description", ""))) for a in e.get("args", []))
            for e in self._events("Runtime.consoleAPICalled")
            if e.get("type") in ("error", "assert")
        ]
        out += [
            e["entry"].get("text", "")
            for e in self._events("Log.entryAdded")
            if e.get("entry", {}).get("level") == "error"
        ]
        return out

    def requests(self) -> list[str]:
        """Every URL the page asked for (the document itself included)."""
        return [e.get("request", {}).get("url", "") for e in self._events("Network.requestWillBeSent")]

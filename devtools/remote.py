"""Remote debugging: run the plugin against a Dify instance's debug port.

    cp .env.example .env   # fill in REMOTE_INSTALL_URL and REMOTE_INSTALL_KEY from Dify: Plugins > Debug
    ./dev remote

Checks the settings first (so a typo gives a message, not a stack trace), then runs `python -m main`
with INSTALL_METHOD=remote. The plugin appears in that Dify workspace until you stop it (Ctrl-C).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from dotenv import dotenv_values

REPO_ROOT = Path(__file__).resolve().parent.parent
PLACEHOLDER = "paste-the-debug-key-here"


def settings_problems(values: dict[str, str | None]) -> list[str]:
    problems = []
    url = (values.get("REMOTE_INSTALL_URL") or "").strip()
    host, _, port = url.rpartition(":")
    if "://" in url:
        problems.append(f"REMOTE_INSTALL_URL '{url}' must be host:port without a scheme (e.g. debug.dify.example.com:5003)")
    elif not host or not port.isdigit():
        problems.append(f"REMOTE_INSTALL_URL '{url}' must be host:port, as shown under Plugins > Debug in Dify")
    key = (values.get("REMOTE_INSTALL_KEY") or "").strip()
    if not key or key == PLACEHOLDER:
        problems.append("REMOTE_INSTALL_KEY is not set: copy the debug key from Plugins > Debug in Dify")
    return problems


def main(argv: list[str] | None = None) -> int:
    env_file = REPO_ROOT / ".env"
    if not env_file.exists():
        print("no .env file: copy .env.example to .env and fill in REMOTE_INSTALL_URL and REMOTE_INSTALL_KEY", file=sys.stderr)
        return 1
    values = {**dotenv_values(env_file), **{k: v for k, v in os.environ.items() if k.startswith("REMOTE_INSTALL_")}}
    problems = settings_problems(values)
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 1
    env = {**os.environ, **{k: v for k, v in values.items() if v is not None}, "INSTALL_METHOD": "remote"}
    print(f"connecting to the Dify debug port at {values['REMOTE_INSTALL_URL']} (Ctrl-C to stop)", file=sys.stderr)
    os.chdir(REPO_ROOT)
    os.execve(sys.executable, [sys.executable, "-m", "main"], env)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())

"""The README's "Using `pen`" walk, run line by line in one shell as a new
user would paste it: every line must succeed, and the story it tells (PASSED,
VALID, USED, books balance) must be what the commands say."""
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def walkthrough():
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Using `pen`"):]
    block = re.search(r"```sh\n(.*?)```", section, re.S).group(1)
    return [line for line in block.splitlines() if line.strip()]


def test_the_walkthrough_starts_from_nothing():
    lines = walkthrough()
    assert lines[0].startswith("export PEN_HOME=") and lines[1].startswith("pen init")
    assert not any("..." in line or "<" in line.split("#")[0] for line in lines)


def test_readme_walkthrough_runs_line_by_line(tmp_path):
    lines = walkthrough()
    script = ["set -e -o pipefail"]
    for i, line in enumerate(lines):
        script += ["echo '@@ %d' >&2" % i, "echo '@@ %d'" % i, line]
    env = dict(os.environ, HOME=str(tmp_path), PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"])
    env.pop("PEN_HOME", None)
    p = subprocess.run(["bash", "-c", "\n".join(script)], capture_output=True, text=True, cwd=str(tmp_path),
                       env=env, timeout=300)
    ran = re.findall(r"^@@ (\d+)$", p.stderr, re.M)
    last = int(ran[-1]) if ran else 0
    assert p.returncode == 0, "README line failed: %r\n%s" % (lines[last], p.stderr[-1500:])
    assert len(ran) == len(lines)
    out = {int(n): body for n, body in re.findall(r"^@@ (\d+)\n(.*?)(?=^@@ |\Z)", p.stdout, re.S | re.M)}

    def said(fragment):
        return next(out[i] for i, line in enumerate(lines) if fragment in line)

    assert "created the Pen folder" in said("pen init")
    assert "PASSED" in said("votation close")
    assert "verified" in said("votation verify")
    assert said("token check").startswith("VALID")
    assert "USED" in said("token show")
    assert "books balance: 30000 spent, 30000 credited" in said("ctb status")
    assert (tmp_path / "pen-valley" / "ctb.sqlite").exists() and (tmp_path / "all.pen").exists()

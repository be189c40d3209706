"""examples/quickstart.py runs as README.md shows it."""

import re
import subprocess
import sys
from pathlib import Path

from conftest import CALL_SID

PACKAGE = Path(__file__).resolve().parent.parent
QUICKSTART = PACKAGE / "examples" / "quickstart.py"


def quickstart(*args):
    return subprocess.run([sys.executable, str(QUICKSTART), *args], capture_output=True,
                          text=True, timeout=60)


def test_the_readme_shows_the_quickstart_as_it_is():
    blocks = re.findall(r"```python\n(.*?)```", (PACKAGE / "README.md").read_text(), re.S)
    assert blocks, "README.md has no python example"
    assert blocks[0] in QUICKSTART.read_text()


def test_the_quickstart_creates_sends_and_deletes(fixture):
    done = quickstart(fixture.target, CALL_SID)
    assert done.returncode == 0, done.stderr
    assert re.fullmatch(r"ZY[0-9a-f]{32}\nKX[0-9a-f]{32}\n", done.stdout)


def test_the_quickstart_says_what_to_do_after_an_error(fixture):
    done = quickstart(fixture.target, "CA-not-a-call")
    assert done.returncode == 1
    assert done.stderr.startswith("INVALID_ARGUMENT INVALID_REQUEST: fix the request and use a "
                                  "new key")

"""Every shell block of the README and of docs/ runs as written, in a copy of the
repository's data and examples: the README's in order, then each page of docs/ on the
README's work folder. Set-up lines (``make ...``, ``pip install ...``) are what CI itself
runs before the tests, so they are not run again here."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SETUP = ("make ", "pip install ")


def shell_blocks(page: Path) -> list[str]:
    """The ```sh blocks of a Markdown page, set-up lines left out."""
    blocks = re.findall(r"^```sh\n(.*?)^```", page.read_text(encoding="utf-8"), re.S | re.M)
    return [
        "\n".join(line for line in block.splitlines() if not line.startswith(SETUP))
        for block in blocks
    ]


def test_every_shell_block_of_the_readme_and_docs_runs(tmp_path):
    for folder in ("sample_data", "examples"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    ran = {}
    for page in pages:
        for block in shell_blocks(page):
            if not block.strip():
                continue
            result = subprocess.run(
                ["bash", "-e", "-o", "pipefail", "-c", block],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
            )
            assert result.returncode == 0, (
                f"{page.name}: exit {result.returncode}\n{block}\n"
                f"stdout: {result.stdout[-2000:]}\nstderr: {result.stderr[-3000:]}"
            )
            ran[page.name] = ran.get(page.name, 0) + block.count("mmcli ")
    # The quick start, new data, checking blocks; the pretrained and video examples.
    assert ran["README.md"] >= 15 and ran["stages.md"] >= 7, ran
    assert (tmp_path / "work/eval/report.html").is_file()
    assert (tmp_path / "predictions.csv").is_file()

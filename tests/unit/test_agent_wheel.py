"""The agent-only distribution: the agent package, pypdf as its one requirement, its own command."""
import subprocess
import sys
import zipfile
from pathlib import Path

from tools.build_agent_wheel import build


def test_the_agent_wheel_holds_the_agent_alone_and_requires_only_pypdf(tmp_path):
    wheel = build(tmp_path)
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        info = next(n.split("/")[0] for n in names if n.endswith(".dist-info/METADATA"))
        metadata = archive.read(f"{info}/METADATA").decode()
        entry_points = archive.read(f"{info}/entry_points.txt").decode()
    assert {name.split("/")[0] for name in names} == {"agent", info}
    assert "agent/backend.py" in names and "agent/pagecount/ghostscript.py" in names
    assert [line for line in metadata.splitlines() if line.startswith("Requires-Dist")] == ["Requires-Dist: pypdf>=4.0"]
    assert "pageledger-agent = agent.cli:main" in entry_points


def test_pip_installs_the_wheel_and_its_command_counts_a_document(tmp_path):
    from tests import sample_documents as docs

    wheel = build(tmp_path / "dist")
    target = tmp_path / "site"
    installed = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--quiet",
                                "--target", str(target), str(wheel)], capture_output=True, text=True, timeout=120)
    assert installed.returncode == 0, installed.stderr
    assert (target / "agent" / "cli.py").exists() and not (target / "pageledger").exists()
    pdf = docs.pdf(tmp_path / "d.pdf", 3)
    counted = subprocess.run([sys.executable, "-IS", "-c", f"import sys; sys.path.insert(0, {str(target)!r}); "
                              f"from agent.cli import main; sys.exit(main(['count', {str(pdf)!r}]))"],
                             capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert counted.returncode == 0, counted.stderr
    assert '"pages": 3' in counted.stdout

"""The agent is installed on print servers without the server: it must not import it."""
import ast
import subprocess
import sys
from pathlib import Path

AGENT = Path(__file__).resolve().parents[2] / "agent"
SERVER_PACKAGES = {"domain", "commands", "projections", "api", "pageledger", "workers", "migrations", "tools"}


def test_no_agent_module_imports_a_server_package():
    offenders = []
    for path in AGENT.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            offenders += [f"{path.relative_to(AGENT.parent)}: {name}" for name in names
                          if name.split(".")[0] in SERVER_PACKAGES]
    assert offenders == []


def test_every_agent_module_imports_with_the_server_packages_absent():
    modules = sorted(".".join(p.relative_to(AGENT.parent).with_suffix("").parts) for p in AGENT.rglob("*.py"))
    modules = [m.removesuffix(".__init__") for m in modules]
    script = ("import sys\n"
              f"for name in {sorted(SERVER_PACKAGES)!r}:\n    sys.modules[name] = None\n"
              f"sys.path.insert(0, {str(AGENT.parent)!r})\n"
              f"import importlib\nfor m in {modules!r}:\n    importlib.import_module(m)\n"
              "print('ok')\n")
    result = subprocess.run([sys.executable, "-I", "-c", script], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr

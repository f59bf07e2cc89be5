"""What a job's process imports: only what the job needs (issue 19). Each import here cost a
backend process milliseconds on every job (python -X importtime)."""
import subprocess
import sys
from pathlib import Path

from tests import sample_documents as docs

ROOT = Path(__file__).resolve().parents[2]
NEVER_ON_THE_HOT_PATH = ("agent.install", "urllib.request", "pypdf", "dataclasses", "tempfile", "logging",
                         "subprocess", "hashlib", "configparser")


def imported_after(code: str) -> set[str]:
    script = f"import sys; sys.path.insert(0, {str(ROOT)!r}); {code}; print(' '.join(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-IS", "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return set(result.stdout.split())


def test_the_backend_imports_nothing_a_pdf_job_does_not_need():
    modules = imported_after("import agent.backend")
    assert not modules & set(NEVER_ON_THE_HOT_PATH) - {"configparser"}, modules & set(NEVER_ON_THE_HOT_PATH)


def test_counting_a_pdf_with_colour_imports_neither_pypdf_nor_the_interpreter_runner(tmp_path):
    pdf = docs.pdf(tmp_path / "d.pdf", 3, colour_pages=(1,))
    modules = imported_after(f"from agent.cli import main; main(['count', {str(pdf)!r}])")
    assert not modules & set(NEVER_ON_THE_HOT_PATH), modules & set(NEVER_ON_THE_HOT_PATH)

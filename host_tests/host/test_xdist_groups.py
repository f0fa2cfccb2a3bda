# The suite's xdist groups (tools/stringcare/dev/dualtest_plugin.py): tests sharing an
# expensive fixture stay on one worker only if pytest-xdist's loadgroup tags their node
# ids; with pytest 9.2 it silently did not (every worker rebuilt the shared fixtures).
import subprocess
import sys
import textwrap

from stringcare.dev.dualtest_plugin import plain_nodeid


def test_plain_nodeid_takes_off_the_group_only():
    assert plain_nodeid("host/test_a.py::test_b@host/test_a.py") == "host/test_a.py::test_b"
    assert plain_nodeid("d/test_a.py::test_b[m0]@m0:shared,module_fw") == "d/test_a.py::test_b[m0]"
    assert plain_nodeid("d/test_a.py::test_b[x@y]") == "d/test_a.py::test_b[x@y]"
    assert plain_nodeid("d/test_a.py::test_b") == "d/test_a.py::test_b"


def test_a_group_keeps_its_tests_on_one_worker(tmp_path):
    # two files, each test records its worker; a file-scoped group must land whole
    for name in ("test_one.py", "test_two.py"):
        (tmp_path / name).write_text(
            textwrap.dedent(
                """
                import os, pytest

                @pytest.mark.xdist_group("g-%s")
                @pytest.mark.parametrize("k", range(6))
                def test_k(k):
                    with open(%r, "a") as f:
                        f.write("%s %%s\\n" %% os.environ["PYTEST_XDIST_WORKER"])
                """
                % (name, str(tmp_path / "log"), name)
            )
        )
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-n", "2", "--dist", "loadgroup", "-p",
         "no:cacheprovider", str(tmp_path)],
        capture_output=True, text=True, cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    seen: dict[str, set[str]] = {}
    for line in (tmp_path / "log").read_text().splitlines():
        name, worker = line.split()
        seen.setdefault(name, set()).add(worker)
    assert {k: len(v) for k, v in seen.items()} == {"test_one.py": 1, "test_two.py": 1}

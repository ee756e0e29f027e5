"""The numerics tests once more under a forced lower CPU instruction set.

GEMM kernels (and so float rounding) depend on the CPU's instruction set, so a numerics test that holds
only on the CPU family it was written on is a red CI somewhere else. This test runs every test marked
``numerics`` in a child pytest with ATen, oneDNN and MKL forced one level below the machine's own
instruction set (``tests.numerics.lower_isa_env``: AVX2 kernels on an AVX-512 machine, the generic ones
on an AVX2 machine). The child runs other kernels than the parent on either, so an exact comparison that
is not exact by construction fails on every machine, not only on the one CPU family that differs.
"""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from tests.app_process import ARTIFACTS, ROOT
from tests.numerics import lower_isa_env

#: The folders holding the numerics tests (collecting only these keeps the child quick).
NUMERICS_FOLDERS = ["tests/engine", "tests/speed"]
CHILD_FLAG = "F5_TEST_LOWER_ISA_CHILD"


@pytest.mark.skipif(bool(os.environ.get(CHILD_FLAG)), reason="already the lower-ISA run")
def test_the_numerics_tests_pass_under_a_lower_instruction_set(tmp_path):
    import torch

    forced, expected = lower_isa_env(torch.backends.cpu.get_cpu_capability())
    env = {**os.environ, **forced, CHILD_FLAG: "1"}
    probe = subprocess.run([sys.executable, "-c", "import torch; print(torch.backends.cpu.get_cpu_capability())"],
                           env=env, capture_output=True, text=True, timeout=120)
    assert probe.stdout.strip() == expected, probe  # the child really runs the lower kernels

    report = tmp_path / "numerics.xml"
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-m", "numerics", "-p", "no:cacheprovider",
                           "-n", "0", "--durations=5", f"--junitxml={report}", *NUMERICS_FOLDERS],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200)
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "lower_isa.log").write_text(done.stdout + done.stderr, encoding="utf-8")
    assert done.returncode == 0, f"numerics tests failed under {forced}:\n{done.stdout[-6000:]}"
    suite = ET.parse(report).getroot().find("testsuite")
    ran = int(suite.get("tests")) - int(suite.get("skipped"))
    assert ran >= 10 and int(suite.get("failures")) == int(suite.get("errors")) == 0, suite.attrib

"""The C allocator's thresholds (proxy/runtime/allocator.py): once fixed, relaying one
large answer after another (pieces of ~256 KB, kept until sent, freed together) faults
no pages in again; with glibc's moving thresholds it did, answer after answer. Each
case in a fresh interpreter, whose allocator nothing else has touched."""

from __future__ import annotations

import subprocess
import sys

RELAY_ANSWERS = r"""
import resource, sys
if sys.argv[1] == "tuned":
    from proxy.runtime import allocator
    assert allocator.tune()
def answer():
    pieces = [bytes(256 * 1024) for _ in range(9)]  # a 2 MB answer as it was read
    return sum(map(len, pieces))
for _ in range(3):  # the heap grows to what an answer needs
    answer()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    answer()
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 20)
"""


def faults_per_answer(mode: str) -> float:
    done = subprocess.run([sys.executable, "-c", RELAY_ANSWERS, mode], capture_output=True, text=True, check=True)
    return float(done.stdout)


def test_fixed_thresholds_keep_a_large_answers_pages_for_the_next():
    assert faults_per_answer("moving") > 100  # glibc's default: each answer's 2 MB faulted in again
    assert faults_per_answer("tuned") < 10

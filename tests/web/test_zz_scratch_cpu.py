from __future__ import annotations
import os, subprocess, threading, time
import pytest, requests
from grader.models import Submission
from tests.factories import SubmissionFactory

def cpu(pgid):
    pids = [int(p) for p in subprocess.run(["pgrep", "-g", str(pgid)], capture_output=True, text=True).stdout.split()]
    tick = os.sysconf("SC_CLK_TCK"); total = 0
    for pid in pids:
        try:
            f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
            total += (int(f[11]) + int(f[12])) / tick
        except OSError: pass
    return total

@pytest.mark.django_db(transaction=True)
def test_cpu(gunicorn, code_item, learner, token):
    server = gunicorn()
    pending = SubmissionFactory(user=learner, item=code_item, status="queued")
    def poll():
        requests.get(f"{server.url}/api/v1/submissions/{pending.pk}/?wait=10", headers={"Authorization": f"Token {token}"}, timeout=60)
    before = cpu(server.process.pid)
    ts = [threading.Thread(target=poll) for _ in range(50)]
    [t.start() for t in ts]; time.sleep(2); mid = cpu(server.process.pid); time.sleep(6); end = cpu(server.process.pid)
    [t.join() for t in ts]
    print(f"\nCPU: first 2 s (connect+auth) {mid-before:.2f} s; steady 6 s of waiting {end-mid:.2f} s")

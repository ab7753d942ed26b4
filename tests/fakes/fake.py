#!/usr/bin/env python3
"""One fake for every node binary the scripts call (kubeadm, kubectl, etcdctl, cloud-init,
systemctl, journalctl, ...), so scripts run for real in tests with no cluster.

Invoked as `fake.py NAME ARGS...` (the wrappers `FakeBin` writes) or through a link named after
the binary. Every call appends one JSON line to $FAKE_LOG:
    {"cmd": "kubeadm", "args": ["join", "--config", "/run/x.yaml"]}
What a call does comes from the JSON rules file $FAKE_RULES (absent: succeed silently):
    [{"cmd": "kubeadm", "match": "join *",            # fnmatch over the args joined by spaces
      "results": [{"rc": 1, "stderr": "boom"}, {"rc": 0}]}]
The first rule whose cmd and match fit is used; its Nth matching call gets results[N] and the
last result repeats once they run out. A result may hold: rc, stdout, stderr, sleep (seconds,
before anything else), write ({path: text}, files created), remove ([paths]),
capture (path: the call's stdin is copied there), copy_arg ([N, path]: the file named by the
call's Nth argument is copied to path). Per-rule call counts live next to the log.
"""

import fnmatch
import json
import os
import sys
import time


def main(argv: list[str]) -> int:
    name = os.path.basename(argv[0])
    args = argv[1:]
    if name in ("fake.py", "fake"):
        name, args = args[0], args[1:]
    log = os.environ["FAKE_LOG"]
    with open(log, "a") as f:
        f.write(json.dumps({"cmd": name, "args": args}) + "\n")

    rules_path = os.environ.get("FAKE_RULES", "")
    rules = json.load(open(rules_path)) if rules_path and os.path.exists(rules_path) else []
    for index, rule in enumerate(rules):
        if rule["cmd"] == name and fnmatch.fnmatchcase(" ".join(args), rule.get("match", "*")):
            return act(rule["results"], f"{log}.rule{index}", args)
    return 0


def act(results: list[dict], counter: str, args: list[str]) -> int:
    calls = int(open(counter).read()) if os.path.exists(counter) else 0
    with open(counter, "w") as f:
        f.write(str(calls + 1))
    result = results[min(calls, len(results) - 1)]
    time.sleep(result.get("sleep", 0))
    if "capture" in result:
        with open(result["capture"], "w") as f:
            f.write(sys.stdin.read())
    if "copy_arg" in result:
        index, dest = result["copy_arg"]
        with open(args[index]) as src, open(dest, "w") as out:
            out.write(src.read())
    for path, text in result.get("write", {}).items():
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
    for path in result.get("remove", []):
        if os.path.exists(path):
            os.remove(path)
    sys.stdout.write(result.get("stdout", ""))
    sys.stderr.write(result.get("stderr", ""))
    return result.get("rc", 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv))

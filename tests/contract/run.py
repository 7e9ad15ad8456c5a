"""The HTTP contract, property-tested: schemathesis generates requests from openapi.yaml (examples,
coverage, fuzzing) against the seeded local gateway and checks every answer against it.

Usage: python run.py <demo.json>   (the gateway's --demo-json; PLATFORM_ADMIN_KEY in the environment)
Seed: SCHEMATHESIS_SEED, else 1 under CI (CI=true), else a random one (printed, to reproduce).
Time: SCHEMATHESIS_MAX_TIME (one-request phases, 150 s) and SCHEMATHESIS_STATEFUL_TIME (90 s);
SCHEMATHESIS_PHASES picks one of the two runs.
"""

import json
import os
import random
import subprocess
import sys
import tempfile
import urllib.request

CHECKS = ",".join([
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
    "negative_data_rejection",
])


def main():
    demo = json.load(open(sys.argv[1]))
    admin = os.environ["PLATFORM_ADMIN_KEY"]
    seed = os.environ.get("SCHEMATHESIS_SEED") or ("1" if os.environ.get("CI") else str(random.randrange(2**31)))
    token = lambda link: link.rstrip("/").rsplit("/", 1)[1]
    # A key of its own for DELETE /staff/keys/{key_id}, so revoking one never locks the run out.
    req = urllib.request.Request(
        demo["base"] + "/staff/keys",
        data=json.dumps({"name": "schemathesis (revocable)"}).encode(),
        headers={"authorization": "Bearer " + demo["staff_api_key"], "content-type": "application/json"},
        method="POST",
    )
    disposable = json.load(urllib.request.urlopen(req))["id"]
    share = demo["share_link"].rstrip("/").rsplit("/", 1)[1]
    config = f"""
[auth.openapi.staffKey]
bearer = "{demo['staff_api_key']}"

[auth.openapi.adminKey]
bearer = "{admin}"

[checks.negative_data_rejection]
# A body over the limit is refused with 413 before it is read: a rejection too.
expected-statuses = [400, 401, 403, 404, 405, 406, 409, 413, 415, 422, 428, 429]

[parameters]
key_id = "{disposable}"
inspection_id = "{demo['inspection_id']}"
document_id = "{demo['report_id']}"
company_id = "{demo['company_id']}"

[[operations]]
include-path-regex = "^/p/"
parameters = {{ token = "{token(demo['client_link'])}", id = "{demo['report_id']}" }}

[[operations]]
include-path-regex = "^/c/"
parameters = {{ token = "{token(demo['contact_link'])}" }}

[[operations]]
include-path-regex = "^/share/"
parameters = {{ inspection_id = "{share}" }}
"""
    with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as f:
        f.write(config)
        path = f.name
    here = os.path.dirname(os.path.abspath(__file__))
    st = os.path.join(os.path.dirname(sys.executable), "schemathesis")
    # One worker: with two, hypothesis (6.170) on Python 3.11 sometimes fails inside its own
    # lambda-source cache ("AST constructor recursion depth mismatch", a race between threads
    # parsing source), an error of the tool that would fail the run.
    # Two runs, each bounded in time: one request at a time (examples, coverage, fuzzing), then
    # chains of requests through openapi.yaml's links (stateful), so neither starves the other.
    runs = [
        ("examples,coverage,fuzzing", os.environ.get("SCHEMATHESIS_MAX_TIME", "150")),
        ("stateful", os.environ.get("SCHEMATHESIS_STATEFUL_TIME", "90")),
    ]
    only = os.environ.get("SCHEMATHESIS_PHASES")
    print(f"schemathesis seed {seed} (SCHEMATHESIS_SEED={seed} to reproduce)", flush=True)
    rc = 0
    for phases, max_time in runs:
        if only and only != phases:
            continue
        cmd = [
            st, "--no-color", "--config-file", path, "run", os.path.join(here, "..", "..", "openapi.yaml"),
            "--url", demo["base"], "--checks", CHECKS, "--phases", phases,
            "--seed", seed, "--max-examples", os.environ.get("SCHEMATHESIS_EXAMPLES", "20"),
            "--workers", "1", "--max-time", max_time, "--generation-database", "none",
        ]
        rc = subprocess.run(cmd).returncode or rc  # both runs, whatever the first found
    os.unlink(path)
    return rc


if __name__ == "__main__":
    sys.exit(main())

"""The HTTP contract, property-tested: schemathesis generates requests from openapi.yaml (examples,
coverage, fuzzing) against the seeded local gateway and checks every answer against it.

Usage: python run.py <demo.json>   (the gateway's --demo-json; PLATFORM_ADMIN_KEY in the environment)
Seed: SCHEMATHESIS_SEED, else 1 under CI (CI=true), else a random one (printed, to reproduce).
"""

import json
import os
import random
import subprocess
import sys
import tempfile

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
    share = demo["share_link"].rstrip("/").rsplit("/", 1)[1]
    config = f"""
[auth.openapi.staffKey]
bearer = "{demo['staff_api_key']}"

[auth.openapi.adminKey]
bearer = "{admin}"

[parameters]
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
    cmd = [
        st, "--no-color", "--config-file", path, "run", os.path.join(here, "..", "..", "openapi.yaml"),
        "--url", demo["base"], "--checks", CHECKS, "--phases", "examples,coverage,fuzzing",
        "--seed", seed, "--max-examples", os.environ.get("SCHEMATHESIS_EXAMPLES", "20"),
        "--workers", "2", "--max-time", os.environ.get("SCHEMATHESIS_MAX_TIME", "300"),
        "--generation-database", "none",
    ]
    print(f"schemathesis seed {seed}", flush=True)
    rc = subprocess.run(cmd).returncode
    os.unlink(path)
    return rc


if __name__ == "__main__":
    sys.exit(main())

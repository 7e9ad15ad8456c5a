"""Lint template.yaml: as written with cfn-lint, then after expanding the SAM transform with
aws-sam-translator, the plain CloudFormation it produces, with cfn-lint's own rules and AWS's
serverless rules (cfn-lint-serverless: on-failure destinations, tracing, log retention, access
logs, redrive policies...). cfn-lint alone no longer expands SAM, so broken references inside
SAM-generated resources, and the serverless rules, would slip through. Zero findings pass; a
waived rule is waived on its resource (Metadata cfn-lint ignore_checks) with the reason beside it.

Runs offline. Usage: python infra/lint_template.py template.yaml
"""

import copy
import json
import os
import subprocess
import sys
import tempfile

from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse


class NoManagedPolicies:
    """The template uses inline statements only; nothing needs IAM look-ups."""

    def load(self):
        return {}


def expand(template_path, code_uri="s3://placeholder-bucket/code.zip"):
    with open(template_path) as f:
        template = yaml_parse(f.read())
    template = copy.deepcopy(template)
    # Local CodeUri paths are uploaded by `sam build/deploy`; the translator wants S3 locations.
    for resource in template.get("Resources", {}).values():
        if resource.get("Type") == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = code_uri
    return transform(template, {}, NoManagedPolicies())


def cfn_lint(path, *extra):
    return subprocess.run([os.path.join(os.path.dirname(sys.executable), "cfn-lint"), *extra, "--", path]).returncode


def main():
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    path = sys.argv[1] if len(sys.argv) > 1 else "template.yaml"
    print(f"cfn-lint {path} (as written)")
    rc = cfn_lint(path)
    expanded = expand(path)
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as out:
        json.dump(expanded, out, indent=1)
    print(f"cfn-lint {path} (SAM transform expanded: {len(expanded['Resources'])} resources)")
    rc = cfn_lint(out.name) or rc
    print(f"cfn-lint-serverless rules on the expanded template")
    rc = cfn_lint(out.name, "--append-rules", "cfn_lint_serverless.rules") or rc
    os.unlink(out.name)
    if rc:
        print("template lint failed", file=sys.stderr)
    else:
        print("template lint passed")
    return rc


if __name__ == "__main__":
    sys.exit(main())

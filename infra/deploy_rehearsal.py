"""A deploy rehearsal without an AWS account (scripts/deploy-rehearsal).

1. Expands template.yaml with aws-sam-translator (pinned in infra/requirements.txt), uploads a code
   zip to moto's S3 and creates the stack in moto's CloudFormation for two stages side by side:
   `prod` (with the SES identity) and `staging` (`CreateSenderIdentity=false`). Fails on any
   resource not CREATE_COMPLETE, any physical name two stages share, any output missing.
2. Runs the product against what CloudFormation created: each function's environment is read back
   from the deployed function (moto's Lambda `GetFunctionConfiguration`, every Ref/GetAtt
   resolved), the local gateway serves the functions with exactly that environment
   (`gateway --deployed`), and a smoke run goes through the public contract: the admin key read
   from the deployed secret creates a company, staff create an inspection, upload and publish a
   report, the client opens the portal, a signed payment webhook applies, the job sends the email.
   A variable a function reads but its deployed environment lacks fails by name.
3. Updates the prod stack (`LogLevel`) and checks UPDATE_COMPLETE with the data intact.

The data plane stays the lab's: DynamoDB Local gets a table of the deployed name and shape (moto's
table is CloudFormation's record of it), S3, SES and Secrets Manager are moto's own resources,
created by the stack.
"""

import argparse
import copy
import hashlib
import hmac
import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import warnings
import zipfile

import boto3
from samtranslator.yaml_helper import yaml_parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lint_template  # noqa: E402

ARTIFACTS = "rehearsal-artifacts"
STAGES = [("prod", "true"), ("staging", "false")]
SENDER = "reports@rehearsal.example.com"
PUBLIC_BASE_URL = "https://portal.rehearsal.example.com"


class Failed(Exception):
    pass


def step(msg):
    print(f"  - {msg}", flush=True)


def aws(service, endpoint):
    return boto3.client(service, endpoint_url=endpoint, region_name=os.environ.get("AWS_REGION", "us-east-1"))


def expand(template_path):
    """(the template as written, the template the SAM transform makes of it)."""
    with open(template_path) as f:
        source = yaml_parse(f.read())
    try:
        return source, lint_template.expand(template_path, f"s3://{ARTIFACTS}/code.zip")
    except Exception as e:  # the translator's own errors name the resource and the reference
        raise Failed(f"the SAM transform failed: {e}")


PSEUDO = {"AWS::AccountId", "AWS::Region", "AWS::StackName", "AWS::StackId", "AWS::Partition", "AWS::URLSuffix",
          "AWS::NoValue", "AWS::NotificationARNs"}


def unresolved(template):
    """References to nothing (CloudFormation's own check before it creates anything: "Unresolved
    resource dependencies"; moto answers a 500 instead): (where, name) for each `Ref`, `GetAtt`
    and `${…}` in a `Sub` naming no parameter, pseudo parameter or resource."""
    known = set(template.get("Parameters", {})) | set(template["Resources"]) | PSEUDO
    found = []

    def walk(x, where, local=()):
        if isinstance(x, dict):
            for k, v in x.items():
                if k == "Ref" and isinstance(v, str) and v not in known and v not in local:
                    found.append((where, v))
                elif k == "Fn::GetAtt":
                    target = v.split(".", 1)[0] if isinstance(v, str) else v[0]
                    if isinstance(target, str) and target not in known:
                        found.append((where, target))
                elif k == "Fn::Sub":
                    text, names = (v, {}) if isinstance(v, str) else (v[0], v[1])
                    for ref in re.findall(r"\$\{([^}!]+)\}", text):
                        name = ref.split(".", 1)[0]
                        if name not in known and name not in names:
                            found.append((where, name))
                    walk(names, where)
                else:
                    walk(v, where)
        elif isinstance(x, list):
            for v in x:
                walk(v, where)

    for logical, r in template["Resources"].items():
        walk(r, logical)
    for name, o in template.get("Outputs", {}).items():
        walk(o, f"output {name}")
    return found


def parameters(stage, identity, log_level="INFO"):
    values = {
        "Stage": stage,
        "PublicBaseUrl": PUBLIC_BASE_URL,
        "SenderEmail": SENDER,
        "CreateSenderIdentity": identity,
        "LogLevel": log_level,
    }
    return [{"ParameterKey": k, "ParameterValue": v} for k, v in values.items()]


def resources(cfn, stack):
    out, token = [], None
    while True:
        page = cfn.list_stack_resources(StackName=stack, **({"NextToken": token} if token else {}))
        out.extend(page["StackResourceSummaries"])
        token = page.get("NextToken")
        if not token:
            return out


def settle(cfn, stack):
    while True:
        s = cfn.describe_stacks(StackName=stack)["Stacks"][0]
        if not s["StackStatus"].endswith("_IN_PROGRESS"):
            return s
        time.sleep(0.2)


def expected_outputs(source, stage_params):
    """The outputs the template promises for these parameters (conditional ones only when their
    condition holds: `DkimRecords` needs a sender domain, which the rehearsal does not set)."""
    conditions_false = set()
    if not stage_params.get("SenderDomain"):
        conditions_false |= {"HasSenderDomain", "CreatesDomainIdentity"}
    return [k for k, v in source.get("Outputs", {}).items() if v.get("Condition") not in conditions_false]


def deploy(cfn, stack, body, params, source, verb="create"):
    try:
        if verb == "create":
            cfn.create_stack(
                StackName=stack,
                TemplateBody=body,
                Parameters=params,
                Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
            )
        else:
            cfn.update_stack(
                StackName=stack,
                TemplateBody=body,
                Parameters=params,
                Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
            )
    except Exception as e:
        raise Failed(f"{stack}: CloudFormation refused the template: {e}")
    s = settle(cfn, stack)
    want = "CREATE_COMPLETE" if verb == "create" else "UPDATE_COMPLETE"
    listed = resources(cfn, stack)
    bad = [r for r in listed if r["ResourceStatus"] not in ("CREATE_COMPLETE", "UPDATE_COMPLETE")]
    if s["StackStatus"] != want or bad:
        why = "; ".join(
            f"{r['LogicalResourceId']} ({r['ResourceType']}) {r['ResourceStatus']}: {r.get('ResourceStatusReason', '')}"
            for r in bad
        )
        raise Failed(f"{stack}: {s['StackStatus']}, not {want}. {why or s.get('StackStatusReason', '')}")
    stage_params = {p["ParameterKey"]: p["ParameterValue"] for p in params}
    have = {o["OutputKey"] for o in s.get("Outputs", [])}
    missing = [k for k in expected_outputs(source, stage_params) if k not in have]
    if missing:
        raise Failed(f"{stack}: outputs missing: {', '.join(missing)}")
    return listed, s


def collisions(stacks):
    """Physical names two stacks share (both would be the same resource on AWS)."""
    seen = {}
    clashes = []
    for stack, listed in stacks.items():
        for r in listed:
            pid = r.get("PhysicalResourceId")
            if not pid:
                continue
            if pid in seen and seen[pid][0] != stack:
                clashes.append(f"{r['LogicalResourceId']} ({r['ResourceType']}) = {pid} in {seen[pid][0]} and {stack}")
            seen.setdefault(pid, (stack, r["LogicalResourceId"]))
    return clashes


def environments(lam, listed):
    envs = {}
    for r in listed:
        if r["ResourceType"] == "AWS::Lambda::Function":
            c = lam.get_function_configuration(FunctionName=r["PhysicalResourceId"])
            envs[r["LogicalResourceId"]] = c.get("Environment", {}).get("Variables", {})
    return envs


def declared_environment(source, logical):
    """The variables template.yaml gives a function (Globals and its own)."""
    glob = source.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
    own = source["Resources"][logical].get("Properties", {}).get("Environment", {}).get("Variables", {})
    return set(glob) | set(own)


def check_environments(source, envs):
    """Every variable the template gives a function is in its deployed environment, not empty (a
    reference CloudFormation could not resolve leaves it out)."""
    problems = []
    for logical, env in sorted(envs.items()):
        for var in sorted(declared_environment(source, logical)):
            if not env.get(var):
                problems.append(f"{logical}: {var} is declared in template.yaml but missing from its deployed environment")
    if problems:
        raise Failed("\n    ".join(problems))


def mirror_table(moto_ddb, local_ddb, name):
    """The deployed table's shape, created in DynamoDB Local under the deployed name."""
    t = moto_ddb.describe_table(TableName=name)["Table"]
    spec = {
        "TableName": name,
        "AttributeDefinitions": t["AttributeDefinitions"],
        "KeySchema": t["KeySchema"],
        "BillingMode": "PAY_PER_REQUEST",
    }
    gsis = [
        {"IndexName": g["IndexName"], "KeySchema": g["KeySchema"], "Projection": g["Projection"]}
        for g in t.get("GlobalSecondaryIndexes", [])
    ]
    if gsis:
        spec["GlobalSecondaryIndexes"] = gsis
    local_ddb.create_table(**spec)
    ttl = moto_ddb.describe_time_to_live(TableName=name).get("TimeToLiveDescription", {})
    if ttl.get("TimeToLiveStatus") in ("ENABLED", "ENABLING"):
        local_ddb.update_time_to_live(
            TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]}
        )
    return len(gsis)


def conditions_of(template, values):
    """The template's conditions for these parameter values (Equals, Not, And, Or, Condition)."""
    params = {k: str(v.get("Default", "")) for k, v in template.get("Parameters", {}).items()}
    params.update(values)

    def value(x):
        if isinstance(x, dict) and "Ref" in x:
            return params.get(x["Ref"], x["Ref"])
        return x

    memo = {}

    def cond(name):
        if name not in memo:
            memo[name] = truth(template["Conditions"][name])
        return memo[name]

    def truth(c):
        (op, args), = c.items()
        if op == "Fn::Equals":
            return str(value(args[0])) == str(value(args[1]))
        if op == "Fn::Not":
            return not truth(args[0])
        if op == "Fn::And":
            return all(truth(a) for a in args)
        if op == "Fn::Or":
            return any(truth(a) for a in args)
        if op == "Condition":
            return cond(args)
        raise Failed(f"a condition the rehearsal cannot evaluate: {c}")

    return {name: cond(name) for name in template.get("Conditions", {})}, value


def stand_ins(expanded, stack, values, moto):
    """moto's CloudFormation skips the resource types it does not model without a word (a `Ref` to
    one resolves to nothing: a function's variable naming it silently disappears). Those the
    functions name are created here through moto's own service APIs, as CloudFormation would, and
    their physical ids written into the template in place of the references; the others are
    listed as not rehearsed. Returns (template, stand-ins created, types not rehearsed)."""
    from moto.cloudformation.parsing import get_model_map

    modeled = set(get_model_map())
    template = copy.deepcopy(expanded)
    conditions, value = conditions_of(template, {p["ParameterKey"]: p["ParameterValue"] for p in values})
    physical, created, skipped = {}, [], {}
    sm, ses = aws("secretsmanager", moto), aws("ses", moto)
    for logical, r in list(template["Resources"].items()):
        kind = r["Type"]
        if kind in modeled:
            continue
        del template["Resources"][logical]
        if r.get("Condition") and not conditions[r["Condition"]]:
            continue
        props = r.get("Properties", {})
        suffix = hashlib.sha256(f"{stack}/{logical}".encode()).hexdigest()[:6]
        if kind == "AWS::SecretsManager::Secret":
            secret = value(props.get("SecretString")) or hashlib.sha256(os.urandom(32)).hexdigest()[:48]
            physical[logical] = sm.create_secret(Name=f"{stack}-{logical}-{suffix}", SecretString=secret)["ARN"]
        elif kind == "AWS::SES::ConfigurationSet":
            name = value(props.get("Name")) or f"{stack}-{logical}-{suffix}"
            ses.create_configuration_set(ConfigurationSet={"Name": name})
            physical[logical] = name
        elif kind == "AWS::SES::EmailIdentity":
            identity = value(props["EmailIdentity"])
            ses.verify_email_identity(EmailAddress=identity)
            physical[logical] = identity
        else:
            skipped[kind] = skipped.get(kind, 0) + 1
            physical[logical] = f"{stack}-{logical}-not-rehearsed"
            continue
        created.append(f"{logical} ({kind})")

    def rewrite(x):
        if isinstance(x, dict):
            if set(x) == {"Ref"} and x["Ref"] in physical:
                return physical[x["Ref"]]
            if set(x) == {"Fn::GetAtt"}:
                target = x["Fn::GetAtt"]
                target = target.split(".", 1) if isinstance(target, str) else target
                if target[0] in physical:
                    return f"{physical[target[0]]}.{target[1]}"
            if set(x) == {"Fn::Sub"} and isinstance(x["Fn::Sub"], str):
                text = x["Fn::Sub"]
                for name, pid in physical.items():
                    text = text.replace("${" + name + "}", pid)
                return {"Fn::Sub": text}
            return {k: rewrite(v) for k, v in x.items()}
        if isinstance(x, list):
            return [rewrite(v) for v in x]
        return x

    template = rewrite(template)
    for r in template["Resources"].values():
        deps = r.get("DependsOn")
        if isinstance(deps, str):
            deps = [deps]
        if deps is not None:
            r["DependsOn"] = [d for d in deps if d not in physical]
            if not r["DependsOn"]:
                del r["DependsOn"]
    return template, created, skipped


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


OPENER = urllib.request.build_opener(NoRedirect)


def http(method, url, body=None, headers=None):
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if body is not None and "content-type" not in {k.lower() for k in (headers or {})}:
        req.add_header("content-type", "application/json")
    try:
        with OPENER.open(req, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def smoke(gateway_bin, envs, moto, work):
    sm = aws("secretsmanager", moto)
    admin_secret = envs.get("StaffApiFunction", {}).get("PLATFORM_ADMIN_KEY_SECRET")
    hook_secret = envs.get("PaymentWebhookFunction", {}).get("PAYMENT_WEBHOOK_SECRETS_SECRET")
    if not admin_secret or not hook_secret:
        raise Failed("the staff API or the payment webhook was deployed without its secret's name")
    admin_key = sm.get_secret_value(SecretId=admin_secret)["SecretString"]
    signing = "whsec_rehearsal_" + hashlib.sha256(os.urandom(16)).hexdigest()[:24]
    # README, "Deploy": the webhook's signing secret is put in the deployed secret.
    sm.put_secret_value(SecretId=hook_secret, SecretString=signing)
    step("admin key read from the deployed secret; webhook signing secret put in its deployed secret")

    deployed = os.path.join(work, "deployed.json")
    with open(deployed, "w") as f:
        json.dump(envs, f)
    demo_json = os.path.join(work, "demo.json")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k.startswith("AWS_") or k in ("PATH", "HOME", "MOTO_URL", "RUST_MIN_STACK")}
    env.update({"S3_FORCE_PATH_STYLE": "true", "SEED_ADMIN_KEY": admin_key, "RUST_LOG": "warn"})
    log_path = os.path.join(work, "gateway.log")
    log = open(log_path, "w")
    proc = subprocess.Popen(
        [gateway_bin, "--port", str(port), "--deployed", deployed, "--seed", "--demo-json", demo_json],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.time() + 120
        while not os.path.exists(demo_json):
            if proc.poll() is not None:
                log.flush()
                tail = open(log_path).read()[-2000:]
                raise Failed(f"the gateway with the deployed environments stopped:\n{tail}")
            if time.time() > deadline:
                raise Failed("the gateway did not finish seeding in 120 s")
            time.sleep(0.2)
        time.sleep(0.2)
        demo = json.load(open(demo_json))
        base = f"http://127.0.0.1:{port}"
        step(f"the gateway serves the deployed environments; the public contract seeded a company, an inspection and a published report")

        def local(url):
            return base + url[len(PUBLIC_BASE_URL):] if url.startswith(PUBLIC_BASE_URL) else url

        status, body = http("GET", local(demo["client_link"]), headers={"accept": "application/json"})
        if status != 200:
            raise Failed(f"the client's portal answered {status}: {body[:300]!r}")
        view = json.loads(body)
        step("the client opens the portal (200)")

        event = {
            "id": "evt_rehearsal_" + hashlib.sha256(os.urandom(8)).hexdigest()[:16],
            "object": "event",
            "type": "payment_intent.succeeded",
            "livemode": False,
            "created": int(time.time()),
            "data": {"object": {"id": "pi_rehearsal", "object": "payment_intent", "amount": 45000, "amount_received": 45000,
                                "currency": "usd", "status": "succeeded",
                                "metadata": {"company_id": demo["company_id"], "inspection_id": demo["inspection_id"]}}},
        }
        payload = json.dumps(event).encode()
        t = int(time.time())
        sig = hmac.new(signing.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
        status, body = http("POST", f"{base}/webhooks/payments", payload, {"stripe-signature": f"t={t},v1={sig}", "content-type": "application/json"})
        if status != 200:
            raise Failed(f"the signed payment webhook answered {status}: {body[:300]!r}")
        staff = {"authorization": f"Bearer {demo['staff_api_key']}"}
        status, body = http("GET", f"{base}/staff/inspections/{demo['inspection_id']}", headers=staff)
        balance = json.loads(body).get("balance_cents") if status == 200 else None
        if balance != 0:
            raise Failed(f"after the payment the inspection's balance is {balance} (staff API answered {status})")
        step("a signed payment webhook applies (balance 0)")
        client = local(demo["client_link"])
        status, body = http("POST", f"{client}/agreement", {"typed_name": "Jane Homebuyer"}, {"accept": "application/json"})
        if status not in (200, 409):
            raise Failed(f"signing the agreement answered {status}: {body[:300]!r}")
        req = urllib.request.Request(f"{client}/documents/{demo['report_id']}", headers={"accept": "application/json"})
        try:
            OPENER.open(req, timeout=30)
            raise Failed("the paid and signed report, through the gate, answered without a redirect to its PDF")
        except urllib.error.HTTPError as e:
            if e.code != 303:
                raise Failed(f"the paid and signed report, through the gate, answered {e.code}")
            location = e.headers["location"]
        status, pdf = http("GET", location)
        if status != 200 or not pdf.startswith(b"%PDF-"):
            raise Failed(f"the report's presigned URL answered {status}")
        step("signed and paid, the client's report opens through the gate (a 303 to the PDF in the deployed bucket)")

        status, body = http("POST", f"{base}/_dev/run-jobs", b"")
        if status >= 300:
            raise Failed(f"the job answered {status}: {body[:300]!r}")
        report = json.loads(body)
        # (moto's state dump, which the dev mailbox reads, fails once CloudFormation's Lambda
        # resources exist: the emails are read from their records, and SES's own count.)
        status, body = http("GET", f"{base}/staff/inspections/{demo['inspection_id']}/emails", headers=staff)
        records = json.loads(body).get("items", []) if status == 200 else []
        to_jane = [e for e in records if e.get("to") == "jane@example.com" and e.get("state") == "sent"]
        attempts = sum(p["DeliveryAttempts"] for p in aws("ses", moto).get_send_statistics()["SendDataPoints"])
        if not to_jane or attempts == 0:
            raise Failed(
                f"the job sent no email to the client (the job's emails: {report.get('emails')}, "
                f"the inspection's email records: {[(e.get('to'), e.get('state')) for e in records]})"
            )
        step(f"the job sends the emails ({report['emails']['sent']} sent through SES from {SENDER}; "
             f"{len(to_jane)} to the client: {', '.join(e['template_key'] for e in to_jane)})")
        return demo, view
    except Failed as e:
        # Its warnings and errors only: the rest of the log has the seeded links and keys.
        log.flush()
        kept = os.path.join(os.environ.get("REHEARSAL_LOGS", work), "rehearsal-gateway.log")
        if kept != log_path:
            shutil.copyfile(log_path, kept)
        lines = [l for l in open(log_path) if any(w in l for w in ("WARN", "ERROR", "panicked", "error"))]
        raise Failed(f"{e}\n  the gateway's warnings and errors ({kept}):\n{''.join(lines[-20:])}")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def main():
    warnings.filterwarnings("ignore")
    ap = argparse.ArgumentParser()
    ap.add_argument("--template", default="template.yaml")
    ap.add_argument("--gateway", required=True)
    args = ap.parse_args()
    moto = os.environ["MOTO_URL"]
    ddb_local = os.environ["AWS_ENDPOINT_URL_DYNAMODB"]
    started = time.time()
    try:
        source, expanded = expand(args.template)
        print(f"deploy rehearsal: {len(expanded['Resources'])} resources after the SAM transform")
        dangling = unresolved(expanded)
        if dangling:
            raise Failed("references to nothing: " + ", ".join(f"{name} (in {where})" for where, name in dangling))
        step("every Ref, GetAtt and Sub names a parameter or a resource")
        s3 = aws("s3", moto)
        s3.create_bucket(Bucket=ARTIFACTS)
        code = io.BytesIO()
        with zipfile.ZipFile(code, "w") as z:
            z.writestr("bootstrap", "#!/bin/sh\n# the rehearsal's stand-in: the functions run in the local gateway\n")
        s3.put_object(Bucket=ARTIFACTS, Key="code.zip", Body=code.getvalue())
        cfn = aws("cloudformation", moto)
        listed, bodies = {}, {}
        for stage, identity in STAGES:
            stack = f"portal-{stage}"
            template, created, skipped = stand_ins(expanded, stack, parameters(stage, identity), moto)
            bodies[stack] = json.dumps(template)
            listed[stack], _ = deploy(cfn, stack, bodies[stack], parameters(stage, identity), source)
            step(f"{stack}: CREATE_COMPLETE, {len(listed[stack])} resources created by CloudFormation, every output present")
            step(f"{stack}: created beside it as CloudFormation would (moto does not model them): {', '.join(created)}")
            step(f"{stack}: not rehearsed (moto models no such type): "
                 + ", ".join(f"{n} {k}" for k, n in sorted(skipped.items())))
        clashes = collisions(listed)
        if clashes:
            raise Failed("two stages share physical names:\n    " + "\n    ".join(clashes))
        step("no physical name shared by the two stages")

        envs = environments(aws("lambda", moto), listed["portal-prod"])
        check_environments(source, envs)
        table = envs.get("LinkFunction", {}).get("TABLE_NAME")
        if not table:
            raise Failed("LinkFunction: its deployed environment has no TABLE_NAME")
        gsis = mirror_table(aws("dynamodb", moto), aws("dynamodb", ddb_local), table)
        step(f"{len(envs)} functions' environments read back; table {table} ({gsis} indexes) mirrored into DynamoDB Local")
        with tempfile.TemporaryDirectory() as work:
            demo, _ = smoke(args.gateway, envs, moto, work)

        # An update: a parameter changes; the retained table and bucket keep their data.
        moto_ddb = aws("dynamodb", moto)
        marker = {"PK": {"S": "REHEARSAL"}, "SK": {"S": "MARKER"}}
        moto_ddb.put_item(TableName=table, Item=marker)
        bucket = envs["PublishFunction"]["BUCKET_NAME"]
        before = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))
        deploy(cfn, "portal-prod", bodies["portal-prod"], parameters("prod", "true", log_level="DEBUG"), source, verb="update")
        after = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))
        if "Item" not in moto_ddb.get_item(TableName=table, Key=marker) or not before or before != after:
            raise Failed("after the update the table or the bucket lost its data")
        step(f"portal-prod updated (LogLevel DEBUG): UPDATE_COMPLETE, table and bucket intact ({len(after)} objects)")
    except Failed as e:
        print(f"deploy rehearsal FAILED: {e}", file=sys.stderr)
        return 1
    print(f"deploy rehearsal passed in {time.time() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

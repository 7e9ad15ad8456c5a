"""The portal-view read as a Python team would write it: parse the token, hash it, read token,
company and inspection in one strongly consistent BatchGetItem, check, answer JSON. The peer of
the Rust link function's GET /p/{token} in scripts/bench."""

import hashlib
import hmac
import json
import os

import boto3

TABLE = os.environ["TABLE_NAME"]
DDB = boto3.client("dynamodb")  # once per cold start, like the Rust functions
CROCKFORD = set("0123456789abcdefghjkmnpqrstvwxyz")


def not_found():
    return {"statusCode": 404, "headers": {"content-type": "application/problem+json"},
            "body": json.dumps({"type": "/problems/not-found", "title": "Not found", "status": 404,
                                "detail": "No such resource."})}


def handler(event, context):
    raw = event.get("rawPath", "").split("/")[-1]
    if len(raw) != 78 or not set(raw) <= CROCKFORD:
        return not_found()
    company, inspection = raw[0:26].upper(), raw[26:52].upper()
    digest = hashlib.sha256(raw.encode()).hexdigest()
    keys = [
        {"PK": {"S": f"TOKEN#{digest}"}, "SK": {"S": "TOKEN"}},
        {"PK": {"S": f"COMPANY#{company}"}, "SK": {"S": "COMPANY"}},
        {"PK": {"S": f"COMPANY#{company}#INSPECTION#{inspection}"}, "SK": {"S": "INSPECTION"}},
    ]
    out = DDB.batch_get_item(RequestItems={TABLE: {"Keys": keys, "ConsistentRead": True}})
    items = {i["PK"]["S"]: i for i in out["Responses"].get(TABLE, [])}
    token = items.get(keys[0]["PK"]["S"])
    comp = items.get(keys[1]["PK"]["S"])
    insp = items.get(keys[2]["PK"]["S"])
    if not (token and comp and insp) or not hmac.compare_digest(token["token_hash"]["S"], digest):
        return not_found()
    person = token["person_id"]["S"]
    people = insp["people"]["L"]
    me = next((p["M"] for p in people if p["M"]["id"]["S"] == person), None)
    if me is None:
        return not_found()
    services = [s["M"] for s in insp["services"]["L"]]
    body = {
        "inspection_id": insp["id"]["S"],
        "company": {"name": comp["name"]["S"]},
        "address": insp["address"]["S"],
        "scheduled_at": insp["scheduled_at"]["S"],
        "viewer": {"person_id": person, "name": me["name"]["S"], "role": me["role"]["S"]},
        "services": [{"name": s["name"]["S"], "price_cents": int(s["price_cents"]["N"])} for s in services],
        "people": [{"name": p["M"]["name"]["S"], "role": p["M"]["role"]["S"]} for p in people],
    }
    return {"statusCode": 200, "headers": {"content-type": "application/json"}, "body": json.dumps(body)}

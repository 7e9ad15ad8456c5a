// The portal-view read as a Node.js team would write it (AWS SDK v3): parse the token, hash it,
// read token, company and inspection in one strongly consistent BatchGetItem, check, answer JSON.
// The peer of the Rust link function's GET /p/{token} in scripts/bench.

import { createHash, timingSafeEqual } from "node:crypto";
import { DynamoDBClient, BatchGetItemCommand } from "@aws-sdk/client-dynamodb";

const TABLE = process.env.TABLE_NAME;
const ddb = new DynamoDBClient({}); // once per cold start, like the Rust functions
const CROCKFORD = /^[0-9abcdefghjkmnpqrstvwxyz]{78}$/;

const notFound = () => ({
  statusCode: 404,
  headers: { "content-type": "application/problem+json" },
  body: JSON.stringify({ type: "/problems/not-found", title: "Not found", status: 404, detail: "No such resource." }),
});

export const handler = async (event) => {
  const raw = (event.rawPath ?? "").split("/").pop();
  if (!CROCKFORD.test(raw)) return notFound();
  const company = raw.slice(0, 26).toUpperCase();
  const inspection = raw.slice(26, 52).toUpperCase();
  const digest = createHash("sha256").update(raw).digest("hex");
  const keys = [
    { PK: { S: `TOKEN#${digest}` }, SK: { S: "TOKEN" } },
    { PK: { S: `COMPANY#${company}` }, SK: { S: "COMPANY" } },
    { PK: { S: `COMPANY#${company}#INSPECTION#${inspection}` }, SK: { S: "INSPECTION" } },
  ];
  const out = await ddb.send(new BatchGetItemCommand({ RequestItems: { [TABLE]: { Keys: keys, ConsistentRead: true } } }));
  const items = Object.fromEntries((out.Responses?.[TABLE] ?? []).map((i) => [i.PK.S, i]));
  const [token, comp, insp] = keys.map((k) => items[k.PK.S]);
  if (!token || !comp || !insp) return notFound();
  const stored = Buffer.from(token.token_hash.S);
  if (stored.length !== digest.length || !timingSafeEqual(stored, Buffer.from(digest))) return notFound();
  const person = token.person_id.S;
  const people = insp.people.L.map((p) => p.M);
  const me = people.find((p) => p.id.S === person);
  if (!me) return notFound();
  const body = {
    inspection_id: insp.id.S,
    company: { name: comp.name.S },
    address: insp.address.S,
    scheduled_at: insp.scheduled_at.S,
    viewer: { person_id: person, name: me.name.S, role: me.role.S },
    services: insp.services.L.map((s) => ({ name: s.M.name.S, price_cents: Number(s.M.price_cents.N) })),
    people: people.map((p) => ({ name: p.name.S, role: p.role.S })),
  };
  return { statusCode: 200, headers: { "content-type": "application/json" }, body: JSON.stringify(body) };
};

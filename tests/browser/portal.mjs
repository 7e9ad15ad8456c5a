// The client portal in a real browser (headless Chromium), against the local gateway seeded with
// the demo data: the pages render with their stylesheet under the CSP, and the forms work with no
// script at all. Run by scripts/test with DEMO_JSON (what `gateway --demo-json` wrote) and
// SCREENSHOT_DIR.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { chromium } from "playwright-core";

// axe-core (pinned in package.json) judges each page against WCAG 2.1 A and AA.
const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

const demo = JSON.parse(readFileSync(process.env.DEMO_JSON, "utf8"));
const shots = process.env.SCREENSHOT_DIR ?? ".";
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync"],
});
const problems = [];
const page = await browser.newPage();
page.on("console", (m) => {
  if (m.type() === "error" && !m.text().includes("Failed to load resource")) problems.push(m.text());
});
page.on("pageerror", (e) => problems.push(String(e)));

// The page as it is now, checked by axe-core at a desktop and a phone width; every violation is
// kept and the last check fails on any (so one run lists them all). (Evaluated through the
// DevTools protocol, which the pages' CSP does not govern: the pages themselves run no script.)
const audited = [];
const violations = [];
async function axe(name) {
  const before = page.viewportSize();
  for (const [width, height] of [[1200, 900], [390, 844]]) {
    await page.setViewportSize({ width, height });
    if (!(await page.evaluate(() => typeof window.axe === "object"))) await page.evaluate(axeSource);
    const result = await page.evaluate(() =>
      window.axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] } }));
    for (const v of result.violations) {
      const nodes = v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join("; ");
      violations.push(`${name} at ${width} px: ${v.id} (${v.impact}): ${v.help} — ${nodes}`);
    }
    for (const problem of await page.evaluate(beyondAxe, width)) violations.push(`${name} at ${width} px: ${problem}`);
  }
  await page.setViewportSize(before);
  audited.push(name);
}

// What axe-core cannot judge, measured in the page: header cells, visible labels, 3:1 borders on
// inputs, 44 px tap targets on a phone, addresses as mailto: links, no self-reloading.
function beyondAxe(width) {
  const out = [];
  const describe = (el) => `${el.tagName.toLowerCase()}${el.id ? "#" + el.id : ""} "${(el.textContent || el.name || "").trim().slice(0, 40)}"`;
  for (const t of document.querySelectorAll("table")) if (!t.querySelector("th")) out.push(`table without header cells: ${describe(t)}`);
  const inputs = [...document.querySelectorAll("input, textarea, select")].filter((i) => i.type !== "hidden");
  for (const i of inputs) {
    const label = i.closest("label") || (i.id && document.querySelector(`label[for="${i.id}"]`));
    if (!label || !label.textContent.trim()) out.push(`input without a visible label: ${describe(i)}`);
  }
  const luminance = (rgb) => {
    const [r, g, b] = rgb.match(/\d+(\.\d+)?/g).slice(0, 3).map(Number).map((c) => {
      c /= 255;
      return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const contrast = (a, b) => {
    const [x, y] = [luminance(a), luminance(b)].sort((p, q) => q - p);
    return (x + 0.05) / (y + 0.05);
  };
  const background = (el) => {
    for (let e = el.parentElement; e; e = e.parentElement) {
      const c = getComputedStyle(e).backgroundColor;
      if (c && !c.startsWith("rgba(0, 0, 0, 0)") && c !== "transparent") return c;
    }
    return "rgb(255, 255, 255)";
  };
  for (const i of document.querySelectorAll("input[type=text], input[type=email], textarea")) {
    const ratio = contrast(getComputedStyle(i).borderTopColor, background(i));
    if (ratio < 3) out.push(`input border contrast ${ratio.toFixed(2)}:1 (< 3:1): ${describe(i)}`);
  }
  if (width <= 400) {
    const targets = [...document.querySelectorAll("button, a.button, nav a, input[type=text], input[type=email]")];
    targets.push(...[...document.querySelectorAll("input[type=checkbox]")].map((c) => c.closest("label") || c));
    for (const t of targets) {
      const box = t.getBoundingClientRect();
      if (box.height > 0 && box.height < 44) out.push(`tap target ${Math.round(box.height)} px tall (< 44): ${describe(t)}`);
    }
  }
  const walker = document.createTreeWalker(document.querySelector("main") || document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    if (/[^\s@]+@[^\s@]+\.[a-z]{2,}/i.test(n.textContent) && !n.parentElement.closest('a[href^="mailto:"], input, textarea, label, h1, h2, header, .notice, pre, p.muted')) {
      out.push(`an email address that is not a mailto: link: "${n.textContent.trim().slice(0, 60)}"`);
    }
  }
  if (document.querySelector('meta[http-equiv="refresh" i]')) out.push("the page reloads itself (meta refresh)");
  if (document.documentElement.scrollWidth > width + 1) {
    out.push(`the page is ${document.documentElement.scrollWidth} px wide at ${width} px: it scrolls sideways`);
  }
  return out;
}

let step = 0;
async function check(name, fn) {
  step += 1;
  try {
    await fn();
    console.log(`ok ${step} - ${name}`);
  } catch (e) {
    console.log(`not ok ${step} - ${name}`);
    await page.screenshot({ path: `${shots}/browser-failure.png`, fullPage: true }).catch(() => {});
    await browser.close();
    throw e;
  }
}

async function runJobs() {
  const r = await fetch(`${demo.base}/_dev/run-jobs`, { method: "POST" });
  assert.equal(r.status, 200);
  return r.json();
}

// This run's emails: their links carry this inspection (tokens embed its id).
const inspectionId = new URL(demo.share_link).pathname.split("/")[2].toLowerCase();
async function mailbox() {
  const all = (await (await fetch(`${demo.base}/_dev/mailbox.json`)).json()).messages;
  return all.filter((m) => m.links.length === 0 || m.links.some((l) => l.toLowerCase().includes(inspectionId)));
}

await check("the confirmation email's Sign & Pay link opens the client's portal", async () => {
  await runJobs();
  const mails = (await mailbox()).filter((m) => m.to.includes("jane@example.com") && m.subject.startsWith("Sign & Pay:")
    && m.links.some((l) => l.startsWith(demo.base)));
  assert.equal(mails.length, 1, "one confirmation");
  assert.match(mails[0].body, /Sign &amp; Pay/);
  assert.match(mails[0].body, /AM C[DS]T|PM C[DS]T/, "the company's local time");
  const link = mails[0].links.find((l) => l.includes("/p/"));
  const resp = await page.goto(link);
  assert.equal(resp.status(), 200);
  await page.getByText("Jane Homebuyer").first().waitFor();
});

await check("the client portal renders with its stylesheet allowed by the CSP", async () => {
  const resp = await page.goto(demo.client_link);
  assert.equal(resp.status(), 200);
  assert.equal(resp.headers()["referrer-policy"], "no-referrer");
  await page.getByText("Payment due: $450.00").waitFor();
  // Both inline stylesheets apply (their CSP hashes match): the page's own (a white main area)
  // and the company's brand (the demo company's accent colour, #1f5f8b, on the header).
  const main = await page.locator("main section").first().evaluate((s) => getComputedStyle(s).backgroundColor);
  assert.equal(main, "rgb(255, 255, 255)", "the page's stylesheet applies");
  const bg = await page.locator("header").evaluate((h) => getComputedStyle(h).backgroundColor);
  assert.equal(bg, "rgb(31, 95, 139)", "the brand stylesheet applies");
  for (const tab of ["Dashboard", "Order Details", "Documents", "Contractors", "Special Offers", "Contact Us"]) {
    await page.getByRole("link", { name: tab, exact: true }).waitFor();
  }
  await axe("client portal: payment and agreement due");
  await page.screenshot({ path: `${shots}/portal-client.png`, fullPage: true });
  await page.setViewportSize({ width: 1200, height: 800 });
  await page.screenshot({ path: `${shots}/portal-dashboard-1200.png`, fullPage: true });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.screenshot({ path: `${shots}/portal-dashboard-390.png`, fullPage: true });
  await page.setViewportSize({ width: 1280, height: 720 });
});

await check("a client asks for a quote with explicit consent, under the CSP", async () => {
  await page.goto(`${demo.client_link}#offers`);
  const offers = page.locator("#offers");
  await offers.getByText("1-year home warranty", { exact: true }).waitFor();
  await page.setViewportSize({ width: 1200, height: 800 });
  await offers.screenshot({ path: `${shots}/offers-1200.png` });
  await page.setViewportSize({ width: 390, height: 844 });
  await offers.screenshot({ path: `${shots}/offers-390.png` });
  await page.setViewportSize({ width: 1280, height: 720 });
  // The consent box is required: the browser will not send the form without it.
  await offers.getByRole("button", { name: "Ask HomeShield for a quote" }).click();
  assert.equal(await offers.getByText("Quote requested").count(), 0, "nothing sent without consent");
  const partnerMails = async () => (await mailbox()).filter((m) => m.to.includes("quotes@homeshield.test"));
  const before = (await partnerMails()).length;
  await offers.getByLabel(/I agree that Lakeside Home Inspections shares my name/).check();
  await offers.getByLabel("Message (optional)").fill("Mornings are best");
  await offers.getByRole("button", { name: "Ask HomeShield for a quote" }).click();
  await page.waitForURL(demo.client_link);
  await page.locator("#offers").getByText("Quote requested").waitFor();
  await runJobs();
  const sent = await partnerMails();
  assert.equal(sent.length, before + 1, "one email to the partner");
  assert.ok(sent.some((m) => /Mornings are best/.test(m.body)));
});

await check("a client requests an add-on with the form", async () => {
  // None chosen (the browser sends the form as it is): it comes back with the error beside the
  // choices, announced.
  await page.getByRole("button", { name: "Add selected services" }).click();
  await page.locator("#addon_ids-error[role=alert]").waitFor();
  await axe("portal, add-on form sent back");
  await page.getByLabel("Radon test").check();
  await page.getByRole("button", { name: "Add selected services" }).click();
  await page.waitForURL(demo.client_link);
  await page.locator("#order").getByText("Radon test").waitFor();
  await page.getByText("Payment due: $600.00").waitFor();
});

await check("a client signs the agreement by typing their name", async () => {
  // Blank (only spaces): the form comes back with the error beside the field, announced.
  await page.getByLabel("Type your full name to sign").fill("   ");
  await page.getByRole("button", { name: "Sign", exact: true }).click();
  await page.getByRole("alert").waitFor();
  const described = await page.getByLabel("Type your full name to sign").getAttribute("aria-describedby");
  assert.equal(described, "typed_name-error");
  await axe("client portal: the agreement form with its error");
  await page.getByLabel("Type your full name to sign").fill("Jane Homebuyer");
  await page.getByRole("button", { name: "Sign", exact: true }).click();
  await page.waitForURL(demo.client_link);
  await page.getByText("Signed by every client").waitFor();
  assert.equal(await page.getByRole("button", { name: "Sign", exact: true }).count(), 0);
  await axe("client portal: signed, payment due");
});

await check("the report stays locked and says what is still missing", async () => {
  await page.locator("#documents").getByText("Residential Inspection Report").waitFor();
  const resp = await page.goto(`${demo.client_link}/documents/${demo.report_id}`);
  assert.equal(resp.status(), 403);
  await page.getByText("Payment required: pay the balance of $600.00").waitFor();
  await axe("locked document page");
  assert.equal(await page.getByText("Agreement unsigned").count(), 0, "the agreement is signed now");
  await page.getByRole("link", { name: "Go to your portal to pay and sign" }).click();
  await page.waitForURL(demo.client_link);
});

await check("Pay Now goes to the provider on another origin and back, and the report opens", async () => {
  const provider = new URL(demo.payment_provider).origin;
  assert.notEqual(provider, new URL(demo.base).origin, "the dev provider is another origin, like Stripe");
  await page.getByRole("button", { name: "Pay Now" }).click();
  await page.waitForURL((u) => u.origin === provider);
  await page.getByRole("button", { name: "Pay $600.00" }).waitFor();
  await page.screenshot({ path: `${shots}/provider-checkout.png`, fullPage: true });
  await page.getByRole("button", { name: "Pay $600.00" }).click();
  // Back through /checkout/return to the portal; the events arrive on their own. The page never
  // reloads itself: the client presses "Check again" until the payment shows.
  await page.waitForURL((u) => u.href.startsWith(`${demo.client_link}?checkout=`));
  assert.equal(await page.locator('meta[http-equiv="refresh"]').count(), 0, "no automatic reload");
  for (let i = 0; i < 40 && (await page.getByText("Paid", { exact: true }).count()) === 0; i++) {
    await page.waitForTimeout(500);
    const again = page.getByRole("link", { name: "Check again" });
    if ((await again.count()) > 0) await again.click();
  }
  await page.getByText("Paid", { exact: true }).waitFor({ timeout: 5000 });
  await page.getByText("your payment was received").waitFor();
  assert.equal(await page.getByRole("button", { name: "Pay Now" }).count(), 0);
  const open = await fetch(`${demo.client_link}/documents/${demo.report_id}`, { redirect: "manual" });
  assert.equal(open.status, 303, "the report is released");
  assert.match(open.headers.get("location"), /X-Amz-Expires=300/);
  await page.locator("#documents").getByRole("link", { name: "View" }).first().waitFor();
  await axe("client portal after checkout: paid, report unlocked");
  await page.screenshot({ path: `${shots}/portal-paid.png`, fullPage: true });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.screenshot({ path: `${shots}/portal-paid-phone.png`, fullPage: true });
  await page.setViewportSize({ width: 1280, height: 720 });
  // The payment's receipt, printable.
  await page.getByRole("link", { name: "Receipt" }).first().click();
  await page.getByRole("heading", { name: "Payment receipt" }).waitFor();
  await page.getByText("$600.00").first().waitFor();
  await axe("payment receipt");
  await page.screenshot({ path: `${shots}/receipt-1200.png`, fullPage: true });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.screenshot({ path: `${shots}/receipt-390.png`, fullPage: true });
  await page.setViewportSize({ width: 1280, height: 720 });
  await page.emulateMedia({ media: "print" });
  await page.screenshot({ path: `${shots}/receipt-print.png`, fullPage: true });
  await page.emulateMedia({ media: "screen" });
  await page.goto(demo.client_link);
  // What the provider was sent never carries the portal token.
  const token = new URL(demo.client_link).pathname.split("/")[2];
  const log = await (await fetch(`${demo.payment_provider}/_dev/requests`)).json();
  assert.ok(log.requests.length >= 1, "Pay Now called the provider");
  assert.ok(!JSON.stringify(log.requests).includes(token), "the portal token never reaches the provider");
  assert.ok(log.deliveries.some((d) => d.status === 200), "the provider's events were delivered");
});

await check("the buyer's agent sees the inspection but no client actions", async () => {
  await page.goto(demo.agent_link);
  await page.getByText("Buyer's agent").first().waitFor();
  for (const action of ["Pay Now", "Add selected services", "Sign"]) {
    assert.equal(await page.getByRole("button", { name: action, exact: true }).count(), 0, action);
  }
  await axe("buyer's agent portal");
});

await check("the listing agent sees the order details only", async () => {
  await page.goto(demo.listing_agent_link);
  await page.getByText("Listing agent").first().waitFor();
  await page.locator("#order").getByText("1428 Elm Street").first().waitFor();
  for (const action of ["Pay Now", "Add selected services", "Sign"]) {
    assert.equal(await page.getByRole("button", { name: action, exact: true }).count(), 0, action);
  }
  assert.equal(await page.getByText("Inspection report").count(), 0, "no report for the seller's side");
  assert.equal(await page.locator("ol.progress").count(), 0, "no progress tracker: nothing of theirs to track");
  await page.screenshot({ path: `${shots}/portal-listing-agent.png`, fullPage: true });
  await axe("listing agent portal");
});

await check("the unknown user asks for full access and gets a working link by email", async () => {
  await page.goto(demo.share_link);
  await page.getByText("Unknown user.").waitFor();
  await page.screenshot({ path: `${shots}/portal-share.png`, fullPage: true });
  await axe("share page (unknown user)");
  await page.getByLabel("Your email address").fill("jane@example.com");
  await page.getByRole("button", { name: "Get Full Access" }).click();
  await page.getByRole("heading", { level: 2, name: "Check your email" }).waitFor();
  await axe("share page: check your email");
  await runJobs();
  const sent = (await mailbox()).filter((m) => m.to.includes("jane@example.com") && m.subject.includes("Your link")
    && m.links.some((l) => l.startsWith(demo.base)));
  assert.equal(sent.length, 1, "one email");
  const link = sent[0].links.find((l) => l.includes("/p/"));
  await page.goto(link);
  await page.getByText("Signed by every client").waitFor();
  const old = await fetch(demo.client_link);
  assert.equal(old.status, 200, "the earlier link keeps working");
});

await check("a building contact sees their buildings, the report and its open deficiencies", async () => {
  await page.goto(demo.contact_link);
  await page.getByRole("heading", { name: "Harbor Tower" }).waitFor();
  await page.getByText("Pull station obstructed by storage").waitFor();
  await page.getByText("Annual Fire Alarm Inspection Report").waitFor();
  await axe("customer portal: home");
  await page.screenshot({ path: `${shots}/customer-portal.png`, fullPage: true });
  const open = await fetch(`${demo.base}${new URL(await page.getByRole("link", { name: "View" }).first().getAttribute("href"), demo.contact_link).pathname}`, { redirect: "manual" });
  assert.equal(open.status, 303);
});

await check("a client signs in by email to all their inspections and opens one", async () => {
  await page.setViewportSize({ width: 1200, height: 900 });
  await page.goto(demo.me_link);
  await page.getByText("Enter your email to see all your inspections with").waitFor();
  await axe("all my inspections: ask for a sign-in link");
  await page.screenshot({ path: `${shots}/me-sign-in-1200.png`, fullPage: true });
  await page.locator("input[name=email]").fill("jane@example.com");
  await page.getByRole("button", { name: "Email me a sign-in link" }).click();
  await page.getByText("a sign-in link is on its way").waitFor();
  await runJobs();
  const all = (await (await fetch(`${demo.base}/_dev/mailbox.json`)).json()).messages;
  const sent = all.filter((m) => m.to.includes("jane@example.com") && m.links.some((l) => l.startsWith(`${demo.me_link}/signin/`)));
  assert.equal(sent.length, 1, "one sign-in email");
  await page.goto(sent[0].links.find((l) => l.includes("/signin/")));
  await axe("all my inspections: sign-in page");
  await page.getByRole("button", { name: "Continue" }).click();
  await page.getByText("Signed in as jane@example.com.").waitFor();
  const cookie = (await page.context().cookies()).find((c) => c.name === "portal_me");
  assert.ok(cookie && cookie.httpOnly && cookie.sameSite === "Lax", `cookie flags: ${JSON.stringify({ ...cookie, value: "…" })}`);
  await axe("all my inspections: the list");
  await page.screenshot({ path: `${shots}/me-list-1200.png`, fullPage: true });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.screenshot({ path: `${shots}/me-list-390.png`, fullPage: true });
  await page.setViewportSize({ width: 1200, height: 900 });
  await page.getByRole("button", { name: "Open" }).first().click();
  await page.waitForURL(/\/p\//);
  await page.getByText("Signed by every client").waitFor();
  await page.goto(demo.me_link);
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.getByText("Enter your email to see all your inspections with").waitFor();
  await page.setViewportSize({ width: 390, height: 844 });
  await page.screenshot({ path: `${shots}/me-sign-in-390.png`, fullPage: true });
  await page.setViewportSize({ width: 1200, height: 900 });
});

await check("a dead portal link is a page that offers a new link by email", async () => {
  const token = new URL(demo.client_link).pathname.split("/")[2];
  const never = `${demo.base}/p/${token.slice(0, 52)}${"0".repeat(26)}`;
  const resp = await page.goto(never);
  assert.equal(resp.status(), 404);
  assert.match(resp.headers()["content-type"], /^text\/html/);
  await page.getByRole("heading", { name: "This link does not work any more" }).waitFor();
  await axe("dead portal link");
  await page.screenshot({ path: `${shots}/dead-link-1200.png`, fullPage: true });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.screenshot({ path: `${shots}/dead-link-390.png`, fullPage: true });
  await page.setViewportSize({ width: 1280, height: 720 });
  await page.getByLabel("Your email address").fill("jane@example.com");
  await page.getByRole("button", { name: "Email me a new link" }).click();
  // (It is Get Full Access: Jane got a link minutes ago from the share page, so the outbox sends
  // none now; the integration test `a_dead_portal_link_in_a_browser_…` follows the email.)
  await page.getByRole("heading", { level: 2, name: "Check your email" }).waitFor();
  await axe("dead portal link: check your email");
  // Any other error a browser meets is a page too.
  await page.goto(demo.client_link);
  const busy = await page.goto(`${demo.base}/p/${token}/nothing-here`);
  assert.equal(busy.status(), 404);
  await axe("error page");
});

await check("the buyer's agent unsubscribes from optional emails in one click", async () => {
  // Copies to agents are optional: they carry RFC 8058's one-click unsubscribe.
  const copy = (await mailbox()).find((m) => m.to.includes("bob@realty.test") && m.headers.some(([k]) => k === "List-Unsubscribe"));
  assert.ok(copy, "an optional email to the agent");
  const url = copy.headers.find(([k]) => k === "List-Unsubscribe")[1].replace(/^<|>$/g, "");
  assert.ok(!url.includes("/p/"), "no portal token in it");
  await page.goto(url);
  await page.getByRole("heading", { name: /Stop reminders and copies/ }).waitFor();
  await axe("unsubscribe page");
  await page.screenshot({ path: `${shots}/unsubscribe-1200.png`, fullPage: true });
  await page.getByRole("button", { name: "Unsubscribe" }).click();
  await page.getByRole("heading", { name: "You are unsubscribed" }).waitFor();
  await axe("unsubscribe page: done");
  await page.setViewportSize({ width: 390, height: 844 });
  await page.screenshot({ path: `${shots}/unsubscribe-done-390.png`, fullPage: true });
  await page.setViewportSize({ width: 1280, height: 720 });
  const r = await fetch(`${demo.base}/staff/suppressions`, { headers: { authorization: `Bearer ${demo.staff_api_key}` } });
  const items = (await r.json()).items;
  assert.ok(items.some((i) => i.address === "bob@realty.test" && i.kind === "unsubscribe"), JSON.stringify(items));
});

await check("a cancelled inspection's portal says so and takes no action", async () => {
  const r = await fetch(`${demo.base}/staff/inspections/${demo.inspection_id}/cancel`, {
    method: "POST",
    headers: { authorization: `Bearer ${demo.staff_api_key}`, "content-type": "application/json" },
    body: JSON.stringify({ reason: "The sale fell through", notify: false }),
  });
  assert.equal(r.status, 200);
  await page.goto(demo.client_link);
  await page.getByText("This inspection was cancelled.").waitFor();
  for (const action of ["Pay Now", "Add selected services", "Sign"]) {
    assert.equal(await page.getByRole("button", { name: action, exact: true }).count(), 0, action);
  }
  await axe("client portal: cancelled");
  await page.screenshot({ path: `${shots}/portal-cancelled.png`, fullPage: true });
});

await check(`axe-core (WCAG 2.1 A/AA) finds nothing on ${audited.length} pages and states at 1200 and 390 px`, async () => {
  assert.deepEqual(violations, [], `checked: ${audited.join("; ")}`);
});
assert.deepEqual(problems, [], "no console errors or CSP violations");
await browser.close();
console.log(`${step} browser checks passed`);

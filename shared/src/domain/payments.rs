//! Payment events (Stripe event objects) and how each changes an inspection's ledger.
//!
//! Exactly-once has two layers: the provider's event id is recorded in the same transaction as the
//! ledger change (a redelivery finds it and changes nothing), and the ledger is keyed by the
//! provider's money objects (payment intent, charge refunds, dispute), with transitions that only
//! move forward, so events about the same money that arrive twice under different ids, or out of
//! order, still count once and end in the right state.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use super::inspection::{Inspection, LedgerEntry};
use crate::foundation::ids::{CompanyId, InspectionId, PersonId};
use crate::foundation::money::Currency;

/// What a payment event does to money.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Movement {
    /// A payment settled (`payment_intent.succeeded`, `checkout.session.completed` paid,
    /// `checkout.session.async_payment_succeeded`).
    Succeeded { intent: String, amount: i64 },
    /// A bank (ACH) payment is on its way, not settled (`payment_intent.processing`,
    /// `checkout.session.completed` unpaid).
    Processing { intent: String, amount: i64 },
    /// An attempt failed; nothing was received (`payment_intent.payment_failed`,
    /// `checkout.session.async_payment_failed`).
    Failed { intent: String },
    /// Refunds of a charge, cumulative (`charge.refunded`: `amount_refunded`).
    Refunded { charge: String, total_refunded: i64 },
    /// Funds withdrawn for a dispute (`charge.dispute.created`).
    DisputeOpened { dispute: String, amount: i64 },
    /// A dispute closed: won (funds reinstated) or lost (`charge.dispute.closed`).
    DisputeClosed { dispute: String, amount: i64, won: bool },
}

impl Movement {
    /// Payments bring money in and bind a payment intent to an inspection; refunds and disputes
    /// take it back and are found through that binding.
    pub fn is_payment(&self) -> bool {
        matches!(self, Movement::Succeeded { .. } | Movement::Processing { .. } | Movement::Failed { .. })
    }
}

/// A verified delivery, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParsedEvent {
    /// A type this product does not act on: acknowledged, nothing written.
    Ignored {
        id: String,
        kind: String,
    },
    Money(Box<MoneyEvent>),
}

/// The metadata key naming the checkout this server created (on the session and its payment
/// intent), so every later event about that money leads back to what was asked for.
pub const CHECKOUT_METADATA_KEY: &str = "portal_checkout_id";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MoneyEvent {
    pub id: String,
    pub kind: String,
    /// When the provider created the event (Unix seconds): orders events about the same money.
    pub created: i64,
    pub movement: Movement,
    pub currency: Option<Currency>,
    /// Live or test money (`livemode`), when the event says.
    pub livemode: Option<bool>,
    /// From the object's `metadata` (`company_id`, `inspection_id`), when both are valid ids.
    pub target: Option<(CompanyId, InspectionId)>,
    /// The checkout this server created, from the metadata.
    pub checkout_id: Option<String>,
    /// The Checkout Session, for `checkout.session.*` events.
    pub session_id: Option<String>,
    /// The payment intent the money belongs to (the identity of a payment: a session event and
    /// a payment-intent event about the same money name the same intent).
    pub payment_intent: Option<String>,
    /// The charge the object names (refunds, disputes) or the payment's latest charge.
    pub charge: Option<String>,
    /// What the metadata said, kept verbatim for staff review when nothing matches.
    pub metadata: Value,
    /// The card that paid, when the event's object carries its details (a charge's
    /// `payment_method_details`, a payment intent's expanded `latest_charge` or, in older API
    /// versions, its `charges`).
    pub card: Option<Card>,
}

/// A card as a receipt names it: its brand and last four digits, never more.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Card {
    pub brand: String,
    pub last4: String,
}

impl Card {
    /// The card in `object`'s payment details, when they are there and look like Stripe's.
    fn of(object: &Value) -> Option<Card> {
        let details = |charge: &Value| charge.get("payment_method_details")?.get("card").cloned();
        let card = details(object)
            .or_else(|| object.get("latest_charge").filter(|c| c.is_object()).and_then(details))
            .or_else(|| object.get("charges")?.get("data")?.as_array()?.first().and_then(details))?;
        let brand = card.get("brand")?.as_str()?;
        let last4 = card.get("last4")?.as_str()?;
        let brand_ok =
            !brand.is_empty() && brand.len() <= 20 && brand.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        let last4_ok = last4.len() == 4 && last4.chars().all(|c| c.is_ascii_digit());
        (brand_ok && last4_ok).then(|| Card { brand: brand.to_owned(), last4: last4.to_owned() })
    }

    /// "Visa ending in 4242".
    pub fn describe(&self) -> String {
        let brand = match self.brand.as_str() {
            "amex" => "American Express".to_owned(),
            "diners" => "Diners Club".to_owned(),
            "jcb" => "JCB".to_owned(),
            "unionpay" => "UnionPay".to_owned(),
            "mastercard" => "Mastercard".to_owned(),
            other => {
                let mut c = other.chars();
                c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
            }
        };
        format!("{brand} ending in {}", self.last4)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed event: {0}")]
pub struct MalformedEvent(pub String);

fn text<'a>(v: &'a Value, field: &str) -> Result<&'a str, MalformedEvent> {
    v.get(field)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| MalformedEvent(format!("{field} is missing")))
}

fn optional_text(v: &Value, field: &str) -> Option<String> {
    v.get(field).and_then(Value::as_str).filter(|s| !s.is_empty() && s.len() <= 255).map(str::to_owned)
}

fn amount(v: &Value, field: &str) -> Result<i64, MalformedEvent> {
    v.get(field)
        .and_then(Value::as_i64)
        .filter(|a| (0..=crate::foundation::money::Cents::MAX_PRICE).contains(a))
        .ok_or_else(|| MalformedEvent(format!("{field} must be a non-negative whole amount")))
}

/// What a `checkout.session.*` event means, if anything (only payment-mode sessions move money).
fn session_movement(kind: &str, s: &Value) -> Result<Option<Movement>, MalformedEvent> {
    if s.get("mode").and_then(Value::as_str) != Some("payment") {
        return Ok(None);
    }
    let status = s.get("payment_status").and_then(Value::as_str).unwrap_or_default();
    if status == "no_payment_required" {
        return Ok(None);
    }
    let intent = || text(s, "payment_intent").map(str::to_owned);
    Ok(Some(match (kind, status) {
        ("checkout.session.completed", "paid") | ("checkout.session.async_payment_succeeded", _) => {
            Movement::Succeeded { intent: intent()?, amount: amount(s, "amount_total")? }
        }
        // A delayed method (ACH): the session completed, the money is on its way.
        ("checkout.session.completed", _) => {
            Movement::Processing { intent: intent()?, amount: amount(s, "amount_total")? }
        }
        ("checkout.session.async_payment_failed", _) => Movement::Failed { intent: intent()? },
        _ => return Ok(None),
    }))
}

/// Parses a Stripe event object.
pub fn parse(body: &[u8]) -> Result<ParsedEvent, MalformedEvent> {
    let event: Value = serde_json::from_slice(body).map_err(|e| MalformedEvent(e.to_string()))?;
    let id = text(&event, "id")?.to_owned();
    let kind = text(&event, "type")?.to_owned();
    if id.len() > 255 || kind.len() > 255 {
        return Err(MalformedEvent("id or type is too long".into()));
    }
    let object = event
        .get("data")
        .and_then(|d| d.get("object"))
        .ok_or_else(|| MalformedEvent("data.object is missing".into()))?;
    if !object.is_object() {
        return Err(MalformedEvent("data.object is not an object".into()));
    }
    let movement = match kind.as_str() {
        "payment_intent.succeeded" => Movement::Succeeded {
            intent: text(object, "id")?.to_owned(),
            amount: object
                .get("amount_received")
                .map_or_else(|| amount(object, "amount"), |_| amount(object, "amount_received"))?,
        },
        "payment_intent.processing" => {
            Movement::Processing { intent: text(object, "id")?.to_owned(), amount: amount(object, "amount")? }
        }
        "payment_intent.payment_failed" => Movement::Failed { intent: text(object, "id")?.to_owned() },
        k if k.starts_with("checkout.session.") => match session_movement(k, object)? {
            Some(m) => m,
            None => return Ok(ParsedEvent::Ignored { id, kind }),
        },
        "charge.refunded" => Movement::Refunded {
            charge: text(object, "id")?.to_owned(),
            total_refunded: amount(object, "amount_refunded")?,
        },
        "charge.dispute.created" => {
            Movement::DisputeOpened { dispute: text(object, "id")?.to_owned(), amount: amount(object, "amount")? }
        }
        "charge.dispute.closed" => {
            let status = text(object, "status")?;
            Movement::DisputeClosed {
                dispute: text(object, "id")?.to_owned(),
                amount: amount(object, "amount")?,
                won: matches!(status, "won" | "warning_closed"),
            }
        }
        _ => return Ok(ParsedEvent::Ignored { id, kind }),
    };
    let currency = object
        .get("currency")
        .and_then(Value::as_str)
        .map(Currency::parse)
        .transpose()
        .map_err(|e| MalformedEvent(e.to_string()))?;
    let metadata = object.get("metadata").cloned().filter(Value::is_object).unwrap_or(Value::Null);
    let target = (|| {
        let c = metadata.get("company_id")?.as_str()?.parse().ok()?;
        let i = metadata.get("inspection_id")?.as_str()?.parse().ok()?;
        Some((c, i))
    })();
    let session = kind.starts_with("checkout.session.");
    let (payment_intent, charge) = match &movement {
        Movement::Succeeded { intent, .. } | Movement::Processing { intent, .. } | Movement::Failed { intent } => {
            (Some(intent.clone()), if session { None } else { optional_text(object, "latest_charge") })
        }
        Movement::Refunded { charge, .. } => (optional_text(object, "payment_intent"), Some(charge.clone())),
        _ => (optional_text(object, "payment_intent"), optional_text(object, "charge")),
    };
    Ok(ParsedEvent::Money(Box::new(MoneyEvent {
        created: event.get("created").and_then(Value::as_i64).unwrap_or(0),
        livemode: event.get("livemode").or_else(|| object.get("livemode")).and_then(Value::as_bool),
        checkout_id: optional_text(&metadata, CHECKOUT_METADATA_KEY),
        session_id: if session { optional_text(object, "id") } else { None },
        id,
        kind,
        movement,
        currency,
        target,
        payment_intent,
        charge,
        card: Card::of(object),
        metadata,
    })))
}

/// What this server recorded when Pay Now created a checkout session: the money it asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkout {
    pub checkout_id: String,
    pub session_id: String,
    pub company_id: CompanyId,
    pub inspection_id: InspectionId,
    pub person_id: PersonId,
    pub amount_cents: i64,
    pub currency: Currency,
    pub livemode: bool,
    /// Set by the first event that names it; never changed after.
    #[serde(default)]
    pub payment_intent: Option<String>,
    #[serde(with = "crate::foundation::clock::serde_rfc3339")]
    pub created_at: OffsetDateTime,
}

/// Which inspection a payment event pays, or why it is parked for staff instead.
///
/// A payment is applied when it matches a checkout this server created (same company and
/// inspection, session, payment intent once known, currency and mode), or, for payments made
/// elsewhere, when its metadata names the inspection and it states a currency and the mode this
/// deployment expects. Anything else is money kept for review, never applied.
pub fn bind_payment(
    e: &MoneyEvent,
    checkout: Option<&Checkout>,
    expected_livemode: bool,
) -> Result<(CompanyId, InspectionId), String> {
    let moves_money = !matches!(e.movement, Movement::Failed { .. });
    if let Some(c) = checkout {
        let own = (c.company_id, c.inspection_id);
        if e.target.is_some_and(|t| t != own) {
            return Err("its metadata names another inspection than its checkout".into());
        }
        if e.livemode != Some(c.livemode) {
            return Err(format!("livemode {:?} does not match its checkout's {}", e.livemode, c.livemode));
        }
        if moves_money && e.currency != Some(c.currency) {
            return Err(format!(
                "currency {:?} does not match its checkout's {}",
                e.currency.map(|c| c.to_string()),
                c.currency
            ));
        }
        if e.session_id.as_ref().is_some_and(|s| *s != c.session_id) {
            return Err("its checkout session is not the one this server created".into());
        }
        if let (Some(known), Some(pi)) = (&c.payment_intent, &e.payment_intent) {
            if known != pi {
                return Err("its payment intent is not the one its checkout was paid with".into());
            }
        }
        return Ok(own);
    }
    let Some(target) = e.target else { return Err("no known inspection is named".into()) };
    if e.livemode != Some(expected_livemode) {
        let want = if expected_livemode { "live" } else { "test" };
        return Err(format!("livemode {:?} does not match this deployment's {want} mode", e.livemode));
    }
    if moves_money && e.currency.is_none() {
        return Err("it states no currency".into());
    }
    Ok(target)
}

/// Why a money event could not be applied to the inspection it named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mismatch {
    Currency { event: Currency, inspection: Currency },
}

/// What applying an event did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    Changed,
    /// The ledger already says this or something later about the same money.
    AlreadyKnown,
}

fn entry(amount: i64, pending: i64, kind: &str, at: OffsetDateTime, created: i64) -> LedgerEntry {
    LedgerEntry {
        amount_cents: amount,
        pending_cents: pending,
        kind: kind.to_owned(),
        recorded_at: at,
        event_created: created,
        card: None,
    }
}

impl Inspection {
    /// Applies a money event to the ledger (forward-only transitions per money object).
    pub fn apply_money(&mut self, e: &MoneyEvent, at: OffsetDateTime) -> Result<Applied, Mismatch> {
        if let Some(c) = e.currency {
            if c != self.currency {
                return Err(Mismatch::Currency { event: c, inspection: self.currency });
            }
        }
        let t = e.created;
        // (key, new entry, kinds it may replace, whether it replaces them whatever their age)
        let (key, new, may_replace, terminal): (String, LedgerEntry, &[&str], bool) = match &e.movement {
            Movement::Succeeded { intent, amount } => {
                let paid = LedgerEntry { card: e.card.clone(), ..entry(*amount, 0, "payment", at, t) };
                (intent.clone(), paid, &["payment_processing", "payment_failed"], true)
            }
            // A retry after a failure is newer than the failure; an old "processing" is not.
            Movement::Processing { intent, amount } => (
                intent.clone(),
                entry(0, *amount, "payment_processing", at, t),
                &["payment_failed", "payment_processing"],
                false,
            ),
            Movement::Failed { intent } => {
                (intent.clone(), entry(0, 0, "payment_failed", at, t), &["payment_processing", "payment_failed"], false)
            }
            Movement::Refunded { charge, total_refunded } => {
                let key = format!("refund:{charge}");
                // Cumulative: only a larger total moves it forward.
                let known = self.ledger.get(&key).map_or(0, |e| -e.amount_cents);
                if *total_refunded <= known {
                    return Ok(Applied::AlreadyKnown);
                }
                (key, entry(-total_refunded, 0, "refund", at, t), &["refund"], true)
            }
            Movement::DisputeOpened { dispute, amount } => {
                (format!("dispute:{dispute}"), entry(-amount, 0, "dispute_open", at, t), &[], true)
            }
            Movement::DisputeClosed { dispute, amount, won } => {
                let new =
                    if *won { entry(0, 0, "dispute_won", at, t) } else { entry(-amount, 0, "dispute_lost", at, t) };
                (format!("dispute:{dispute}"), new, &["dispute_open"], true)
            }
        };
        let failure = matches!(e.movement, Movement::Failed { .. });
        match self.ledger.get(&key) {
            Some(old) if !may_replace.contains(&old.kind.as_str()) => Ok(Applied::AlreadyKnown),
            // Between non-final states the newer event wins; at the same second a failure wins
            // (a processing payment can fail; a failed attempt is retried as a new one, later).
            Some(old) if !terminal && (t < old.event_created || (t == old.event_created && !failure)) => {
                Ok(Applied::AlreadyKnown)
            }
            _ => {
                self.ledger.insert(key, new);
                self.updated_at = at;
                Ok(Applied::Changed)
            }
        }
    }
}

/// A receipt or refund notice a ledger change owes the clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MoneyNotice {
    /// `payment_receipt` or `refund_notice`.
    pub template_key: &'static str,
    /// The ledger entry (the receipt page's id).
    pub entry: String,
    /// The payment's amount, or a refund's total so far (a larger total is a new notice).
    pub amount_cents: i64,
}

pub const PAYMENT_RECEIPT: &str = "payment_receipt";
pub const REFUND_NOTICE: &str = "refund_notice";

/// What changed in the ledger from `before` to the inspection's: each payment that settled (a new
/// entry, or one that was processing) is a receipt; each refund whose total grew is a notice.
pub fn money_notices(
    before: &std::collections::BTreeMap<String, LedgerEntry>,
    inspection: &Inspection,
) -> Vec<MoneyNotice> {
    let is_payment = |e: &LedgerEntry| e.kind == "payment" || e.kind.starts_with("offline_payment_");
    let is_refund = |e: &LedgerEntry| e.kind == "refund" || e.kind.starts_with("offline_refund_");
    inspection
        .ledger
        .iter()
        .filter_map(|(id, e)| {
            let old = before.get(id);
            let template_key = if is_payment(e) && e.amount_cents > 0 && !old.is_some_and(is_payment) {
                PAYMENT_RECEIPT
            } else if is_refund(e) && old.is_none_or(|o| o.amount_cents > e.amount_cents) {
                REFUND_NOTICE
            } else {
                return None;
            };
            Some(MoneyNotice { template_key, entry: id.clone(), amount_cents: e.amount_cents.abs() })
        })
        .collect()
}

/// Money kept for staff review: a payment naming no known inspection (or another company's, or
/// in another currency). Never dropped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnmatchedPayment {
    pub event_id: String,
    pub event_type: String,
    pub amount_cents: i64,
    pub currency: Option<Currency>,
    pub company_id: Option<CompanyId>,
    pub inspection_id: Option<InspectionId>,
    pub payment_intent: Option<String>,
    pub metadata: Value,
    pub reason: String,
    #[serde(with = "crate::foundation::clock::serde_rfc3339")]
    pub received_at: OffsetDateTime,
}

impl MoneyEvent {
    /// The amount the event is about (for staff review).
    pub fn amount(&self) -> i64 {
        match &self.movement {
            Movement::Succeeded { amount, .. }
            | Movement::Processing { amount, .. }
            | Movement::DisputeOpened { amount, .. }
            | Movement::DisputeClosed { amount, .. } => *amount,
            Movement::Refunded { total_refunded, .. } => *total_refunded,
            Movement::Failed { .. } => 0,
        }
    }

    pub fn unmatched(&self, reason: impl Into<String>, at: OffsetDateTime) -> UnmatchedPayment {
        UnmatchedPayment {
            event_id: self.id.clone(),
            event_type: self.kind.clone(),
            amount_cents: self.amount(),
            currency: self.currency,
            company_id: self.target.map(|t| t.0),
            inspection_id: self.target.map(|t| t.1),
            payment_intent: self.payment_intent.clone(),
            metadata: self.metadata.clone(),
            reason: reason.into(),
            received_at: at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::company::{Company, NewCompany};
    use crate::domain::inspection::NewInspection;

    /// An inspection on a deliberately historic date: money does not depend on when it is.
    fn inspection() -> Inspection {
        let c =
            Company::create(NewCompany { name: "Acme".into(), staff_emails: vec![] }, crate::foundation::clock::now())
                .unwrap();
        let input: NewInspection = serde_json::from_value(serde_json::json!({
            "address": "1 A St", "scheduled_at": "2026-05-01T09:00:00Z",
            "services": [{"name": "Inspection", "price_cents": 40000}],
            "people": [{"role": "client", "name": "Jane", "email": "jane@example.com"}]
        }))
        .unwrap();
        Inspection::create(input, &c, crate::foundation::clock::now()).unwrap()
    }

    static CREATED: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(1_700_000_000);

    fn ev(kind: &str, object: serde_json::Value) -> MoneyEvent {
        let created = CREATED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let body = serde_json::json!({"id": format!("evt_{}", ulid::Ulid::new()), "type": kind, "created": created,
            "data": {"object": object}});
        match parse(body.to_string().as_bytes()).unwrap() {
            ParsedEvent::Money(m) => *m,
            other => panic!("{other:?}"),
        }
    }

    fn apply_all(events: &[MoneyEvent]) -> Inspection {
        let mut i = inspection();
        for e in events {
            i.apply_money(e, crate::foundation::clock::now()).unwrap();
        }
        i
    }

    /// Every order of a set of events ends in the same ledger.
    fn all_orders_agree(events: &[MoneyEvent], balance: i64, pending: i64) {
        fn permutations(n: usize) -> Vec<Vec<usize>> {
            if n == 0 {
                return vec![vec![]];
            }
            let mut out = Vec::new();
            for p in permutations(n - 1) {
                for pos in 0..=p.len() {
                    let mut q = p.clone();
                    q.insert(pos, n - 1);
                    out.push(q);
                }
            }
            out
        }
        for order in permutations(events.len()) {
            let ordered: Vec<MoneyEvent> = order.iter().map(|&k| events[k].clone()).collect();
            let mut twice = ordered.clone();
            twice.extend(ordered.iter().cloned());
            for run in [ordered, twice] {
                let i = apply_all(&run);
                assert_eq!((i.balance().get(), i.pending().get()), (balance, pending), "order {order:?}");
            }
        }
    }

    #[test]
    fn payment_refund_and_dispute_end_right_in_any_order_and_any_repetition() {
        let pi = serde_json::json!({"id": "pi_1", "amount": 40000, "amount_received": 40000, "currency": "usd"});
        let processing = ev("payment_intent.processing", pi.clone());
        let paid = ev("payment_intent.succeeded", pi);
        let refund_part = ev(
            "charge.refunded",
            serde_json::json!({"id": "ch_1", "amount_refunded": 10000, "payment_intent": "pi_1"}),
        );
        let refund_more = ev(
            "charge.refunded",
            serde_json::json!({"id": "ch_1", "amount_refunded": 15000, "payment_intent": "pi_1"}),
        );
        all_orders_agree(&[processing.clone(), paid.clone()], 0, 0);
        let failed = ev("payment_intent.payment_failed", serde_json::json!({"id": "pi_1"}));
        let retry = ev("payment_intent.processing", serde_json::json!({"id": "pi_1", "amount": 40000}));
        all_orders_agree(&[processing.clone(), failed.clone()], 40000, 0);
        all_orders_agree(&[processing.clone(), failed.clone(), retry.clone()], 40000, 40000);
        all_orders_agree(&[processing.clone(), failed, retry, paid.clone()], 0, 0);
        all_orders_agree(&[paid.clone(), refund_part.clone(), refund_more.clone()], 15000, 0);
        let opened = ev(
            "charge.dispute.created",
            serde_json::json!({"id": "dp_1", "amount": 40000, "status": "needs_response"}),
        );
        let lost = ev("charge.dispute.closed", serde_json::json!({"id": "dp_1", "amount": 40000, "status": "lost"}));
        let won = ev("charge.dispute.closed", serde_json::json!({"id": "dp_1", "amount": 40000, "status": "won"}));
        all_orders_agree(&[paid.clone(), opened.clone(), lost], 40000, 0);
        all_orders_agree(&[paid.clone(), opened.clone(), won], 0, 0);
        assert_eq!(apply_all(&[paid.clone(), opened]).balance().get(), 40000, "an open dispute re-locks");
        assert_eq!(apply_all(&[processing]).pending().get(), 40000, "ACH: processing, not paid");
    }

    #[test]
    fn a_failed_bank_payment_clears_processing_and_a_retry_can_still_succeed() {
        let pi = serde_json::json!({"id": "pi_2", "amount": 40000, "currency": "usd"});
        let i =
            apply_all(&[ev("payment_intent.processing", pi.clone()), ev("payment_intent.payment_failed", pi.clone())]);
        assert_eq!((i.pending().get(), i.balance().get()), (0, 40000));
        let i = apply_all(&[
            ev("payment_intent.processing", pi.clone()),
            ev("payment_intent.payment_failed", pi.clone()),
            ev("payment_intent.succeeded", pi),
        ]);
        assert_eq!(i.balance().get(), 0);
    }

    #[test]
    fn metadata_names_the_inspection_and_currency_must_match() {
        let c = crate::foundation::ids::CompanyId::new();
        let id = crate::foundation::ids::InspectionId::new();
        let e = ev(
            "payment_intent.succeeded",
            serde_json::json!({"id": "pi_3", "amount": 100, "currency": "cad",
                "metadata": {"company_id": c.to_string(), "inspection_id": id.to_string()}}),
        );
        assert_eq!(e.target, Some((c, id)));
        assert!(matches!(
            inspection().apply_money(&e, crate::foundation::clock::now()),
            Err(Mismatch::Currency { .. })
        ));
    }

    #[test]
    fn unknown_types_are_ignored_and_malformed_events_refused() {
        let body = br#"{"id": "evt_1", "type": "customer.created", "data": {"object": {}}}"#;
        assert_eq!(parse(body).unwrap(), ParsedEvent::Ignored { id: "evt_1".into(), kind: "customer.created".into() });
        for bad in [
            &b"not json"[..],
            br#"{"type": "payment_intent.succeeded", "data": {"object": {}}}"#,
            br#"{"id": "evt_1", "type": "payment_intent.succeeded", "data": {"object": {"id": "pi", "amount": -5}}}"#,
            br#"{"id": "evt_1", "type": "payment_intent.succeeded"}"#,
        ] {
            assert!(parse(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    fn session_event(kind: &str, payment_status: &str, metadata: serde_json::Value) -> ParsedEvent {
        let body = serde_json::json!({"id": "evt_s", "type": kind, "created": 5, "livemode": false, "data": {"object": {
            "id": "cs_test_1", "object": "checkout.session", "mode": "payment", "payment_status": payment_status,
            "payment_intent": "pi_s", "amount_total": 45000, "currency": "usd", "metadata": metadata}}});
        parse(body.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn checkout_session_events_name_their_payment_intent_as_the_identity_of_the_money() {
        let meta = serde_json::json!({"portal_checkout_id": "ck_1"});
        let ParsedEvent::Money(paid) = session_event("checkout.session.completed", "paid", meta.clone()) else {
            panic!()
        };
        assert_eq!(paid.movement, Movement::Succeeded { intent: "pi_s".into(), amount: 45000 });
        assert_eq!((paid.session_id.as_deref(), paid.checkout_id.as_deref()), (Some("cs_test_1"), Some("ck_1")));
        assert_eq!((paid.payment_intent.as_deref(), paid.livemode), (Some("pi_s"), Some(false)));
        let ParsedEvent::Money(ach) = session_event("checkout.session.completed", "unpaid", meta.clone()) else {
            panic!()
        };
        assert_eq!(ach.movement, Movement::Processing { intent: "pi_s".into(), amount: 45000 }, "ACH: processing");
        let ParsedEvent::Money(ok) = session_event("checkout.session.async_payment_succeeded", "paid", meta.clone())
        else {
            panic!()
        };
        assert_eq!(ok.movement, Movement::Succeeded { intent: "pi_s".into(), amount: 45000 });
        let ParsedEvent::Money(failed) = session_event("checkout.session.async_payment_failed", "unpaid", meta.clone())
        else {
            panic!()
        };
        assert_eq!(failed.movement, Movement::Failed { intent: "pi_s".into() });
        for ignored in [
            session_event("checkout.session.completed", "no_payment_required", meta.clone()),
            session_event("checkout.session.expired", "unpaid", meta),
        ] {
            assert!(matches!(ignored, ParsedEvent::Ignored { .. }), "{ignored:?}");
        }
        let setup = serde_json::json!({"id": "evt", "type": "checkout.session.completed", "data": {"object": {
            "id": "cs", "mode": "setup", "payment_status": "no_payment_required"}}});
        assert!(matches!(parse(setup.to_string().as_bytes()).unwrap(), ParsedEvent::Ignored { .. }));
        let no_intent = serde_json::json!({"id": "evt", "type": "checkout.session.completed", "data": {"object": {
            "id": "cs", "mode": "payment", "payment_status": "paid", "amount_total": 1}}});
        assert!(parse(no_intent.to_string().as_bytes()).is_err(), "a paid session names its payment intent");
    }

    fn checkout(c: crate::foundation::ids::CompanyId, i: crate::foundation::ids::InspectionId) -> Checkout {
        Checkout {
            checkout_id: "ck_1".into(),
            session_id: "cs_test_1".into(),
            company_id: c,
            inspection_id: i,
            person_id: crate::foundation::ids::PersonId::new(),
            amount_cents: 45000,
            currency: Currency::USD,
            livemode: false,
            payment_intent: None,
            created_at: crate::foundation::clock::now(),
        }
    }

    #[test]
    fn money_is_bound_to_the_checkout_this_server_created_or_to_metadata_in_the_expected_mode() {
        let (c, i) = (crate::foundation::ids::CompanyId::new(), crate::foundation::ids::InspectionId::new());
        let meta = serde_json::json!({"company_id": c.to_string(), "inspection_id": i.to_string(), "portal_checkout_id": "ck_1"});
        let ParsedEvent::Money(e) = session_event("checkout.session.completed", "paid", meta) else { panic!() };
        let e = *e;
        let ck = checkout(c, i);
        assert_eq!(bind_payment(&e, Some(&ck), false), Ok((c, i)));
        assert_eq!(bind_payment(&e, Some(&ck), true), Ok((c, i)), "the checkout's own mode counts");
        let refuse = |e: &MoneyEvent, ck: &Checkout, why: &str| {
            let reason = bind_payment(e, Some(ck), false).unwrap_err();
            assert!(reason.contains(why), "{why}: {reason}");
        };
        refuse(&MoneyEvent { livemode: Some(true), ..e.clone() }, &ck, "livemode");
        refuse(&MoneyEvent { livemode: None, ..e.clone() }, &ck, "livemode");
        refuse(&MoneyEvent { currency: Some(Currency::parse("cad").unwrap()), ..e.clone() }, &ck, "currency");
        refuse(&MoneyEvent { currency: None, ..e.clone() }, &ck, "currency");
        refuse(&MoneyEvent { session_id: Some("cs_other".into()), ..e.clone() }, &ck, "session");
        let other = (crate::foundation::ids::CompanyId::new(), crate::foundation::ids::InspectionId::new());
        refuse(&MoneyEvent { target: Some(other), ..e.clone() }, &ck, "another inspection");
        let paid_with = Checkout { payment_intent: Some("pi_first".into()), ..ck.clone() };
        refuse(&e, &paid_with, "payment intent");

        // Made elsewhere: the metadata names the inspection; currency and mode must be stated.
        let elsewhere = MoneyEvent { checkout_id: None, session_id: None, ..e.clone() };
        assert_eq!(bind_payment(&elsewhere, None, false), Ok((c, i)));
        assert!(bind_payment(&elsewhere, None, true).unwrap_err().contains("live mode"));
        assert!(bind_payment(&MoneyEvent { currency: None, ..elsewhere.clone() }, None, false)
            .unwrap_err()
            .contains("currency"));
        let failed =
            MoneyEvent { currency: None, movement: Movement::Failed { intent: "pi_s".into() }, ..elsewhere.clone() };
        assert_eq!(bind_payment(&failed, None, false), Ok((c, i)), "a failure moves no money: no currency needed");
        let anonymous = MoneyEvent { target: None, ..elsewhere };
        assert!(bind_payment(&anonymous, None, false).unwrap_err().contains("no known inspection"));
    }

    #[test]
    fn parked_events_survive_serialization() {
        let ParsedEvent::Money(e) = session_event("checkout.session.completed", "paid", serde_json::json!({})) else {
            panic!()
        };
        let back: MoneyEvent = serde_json::from_str(&serde_json::to_string(&e).unwrap()).unwrap();
        assert_eq!(back, *e);
    }

    #[test]
    fn a_failure_at_the_same_second_as_processing_wins_in_either_order() {
        let pi = serde_json::json!({"id": "pi_t", "amount": 40000, "currency": "usd"});
        let at = |kind: &str| {
            let body =
                serde_json::json!({"id": format!("evt_{kind}"), "type": kind, "created": 7, "data": {"object": pi}});
            match parse(body.to_string().as_bytes()).unwrap() {
                ParsedEvent::Money(m) => *m,
                other => panic!("{other:?}"),
            }
        };
        let (processing, failed) = (at("payment_intent.processing"), at("payment_intent.payment_failed"));
        for order in [[&processing, &failed], [&failed, &processing]] {
            let mut i = inspection();
            for e in order {
                i.apply_money(e, crate::foundation::clock::now()).unwrap();
            }
            assert_eq!(i.pending().get(), 0, "{:?}", order.map(|e| &e.kind));
        }
    }
}

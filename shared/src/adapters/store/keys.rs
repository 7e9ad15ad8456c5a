//! Every key of the single table is built here and nowhere else (see docs/data-model.md).
//!
//! Tenant data lives under `COMPANY#<id>` prefixes, so a key built from one company's id can
//! never reach another company's items. Secrets are looked up by their SHA-256 only.

use crate::foundation::credentials::SecretHash;
use crate::foundation::ids::{
    AuditId, BuildingId, CompanyId, ContactId, DeficiencyId, DocumentId, InspectionId, KeyId,
};

/// Table primary key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    pub pk: String,
    pub sk: String,
}

impl Key {
    fn new(pk: String, sk: &str) -> Key {
        Key { pk, sk: sk.to_owned() }
    }
}

pub const PK: &str = "PK";
pub const SK: &str = "SK";
pub const GSI1: &str = "GSI1";
pub const GSI1PK: &str = "GSI1PK";
pub const GSI1SK: &str = "GSI1SK";
pub const DUE_INDEX: &str = "DUE";
pub const DUE_PK: &str = "DuePK";
pub const DUE_SK: &str = "DueSK";
/// The `DUE` index's partitions of scheduled documents (by document id: 10,000 documents due at
/// once leave it at ~900/s, which one key would barely hold).
pub const DUE: Queue = Queue { base: "DUE", shards: 8 };
/// The `DUE` index's partitions of sent emails whose stored body is to be dropped (by their
/// inspection): first at the time sent, then — once the job has read the company's retention
/// setting — at the time to drop it.
pub const RETAIN: Queue = Queue { base: "RETAIN", shards: 4 };
/// The `DUE` index's partitions of inspections with a reminder to send (see [`reminder`]; by
/// inspection id: one write per inspection saved whose next reminder moves).
pub const REMIND: Queue = Queue { base: "REMIND", shards: 8 };

/// A verified payment event waiting to be applied (`usecases::payment_events::queue`).
pub fn queued_payment(event_id: &str) -> Key {
    Key::new(format!("PAYQUEUE#{event_id}"), "QUEUED")
}

/// The ids of an inspection's payment events received and not applied yet (a string set):
/// read with the portal view, which shows the payment as processing meanwhile.
pub fn payments_queued(c: CompanyId, i: InspectionId) -> Key {
    Key::new(format!("COMPANY#{c}#INSPECTION#{i}"), "PAYQUEUED")
}

/// A key no item ever has: read during init to open the connection (`Store::warm_up`).
pub fn warm_up() -> Key {
    Key::new("WARMUP".into(), "WARMUP")
}

pub fn company(c: CompanyId) -> Key {
    Key::new(format!("COMPANY#{c}"), "COMPANY")
}

pub fn staff_key(hash: &SecretHash) -> Key {
    staff_key_by_stored_hash(hash.as_str())
}

/// The same key item, from the hash hex a listing item keeps.
pub fn staff_key_by_stored_hash(hex: &str) -> Key {
    Key::new(format!("STAFFKEY#{hex}"), "STAFFKEY")
}

/// A company's listing item for one of its staff keys (by id, never the key).
pub fn staff_key_listing(c: CompanyId, k: KeyId) -> Key {
    Key::new(format!("COMPANY#{c}#STAFFKEY#{k}"), "STAFFKEY")
}

/// How many staff keys a company has (a counter beside the company, read strongly: the last key
/// cannot be revoked).
pub fn staff_key_count(c: CompanyId) -> Key {
    Key::new(format!("COMPANY#{c}"), "STAFFKEYS")
}

/// GSI1 partition listing a company's staff keys.
pub fn staff_keys_of(c: CompanyId) -> String {
    format!("COMPANY#{c}#STAFFKEYS")
}

pub fn inspection(c: CompanyId, i: InspectionId) -> Key {
    Key::new(format!("COMPANY#{c}#INSPECTION#{i}"), "INSPECTION")
}

/// Which company an inspection belongs to (share links carry only the inspection id).
pub fn inspection_pointer(i: InspectionId) -> Key {
    Key::new(format!("INSPECTION#{i}"), "INSPECTION")
}

pub fn token(hash: &SecretHash) -> Key {
    token_by_stored_hash(hash.as_str())
}

pub fn token_by_stored_hash(hex: &str) -> Key {
    Key::new(format!("TOKEN#{hex}"), "TOKEN")
}

/// `/staff/documents/<d>` routes carry only the document id: this says which inspection.
pub fn document_pointer(c: CompanyId, d: DocumentId) -> Key {
    Key::new(format!("COMPANY#{c}#DOCUMENT#{d}"), "DOCUMENT")
}

pub fn audit(c: CompanyId, i: InspectionId, a: AuditId) -> Key {
    Key::new(format!("COMPANY#{c}#INSPECTION#{i}"), &format!("{AUDIT_PREFIX}{a}"))
}

pub const AUDIT_PREFIX: &str = "AUDIT#";

/// A payment webhook event already applied (the provider's event id is the idempotency key).
pub fn payment_event(event_id: &str) -> Key {
    Key::new(format!("EVENT#{event_id}"), "EVENT")
}

/// Which inspection a provider payment intent (`pi_…`) or charge (`ch_…`) paid, for refunds and
/// disputes whose object has no metadata; before the payment arrives, what waits for it.
pub fn money_pointer(provider_id: &str) -> Key {
    Key::new(format!("MONEY#{provider_id}"), "MONEY")
}

/// A checkout session this server created (Pay Now), by the id it put in the session's metadata.
pub fn checkout(checkout_id: &str) -> Key {
    Key::new(format!("CHECKOUT#{checkout_id}"), "CHECKOUT")
}

/// Money kept for staff review, under its company (or `UNKNOWN` when it names none).
pub fn unmatched_payment(c: Option<CompanyId>, event_id: &str) -> Key {
    Key::new(unmatched_partition(c), &format!("{UNMATCHED_PREFIX}{event_id}"))
}

pub fn unmatched_partition(c: Option<CompanyId>) -> String {
    match c {
        Some(c) => format!("COMPANY#{c}#UNMATCHED"),
        None => "COMPANY#UNKNOWN#UNMATCHED".to_owned(),
    }
}

pub const UNMATCHED_PREFIX: &str = "PAYMENT#";

/// One email to one person, keyed by what it is about (its dedupe key).
pub fn email(c: CompanyId, i: InspectionId, dedupe: &str) -> Key {
    Key::new(format!("COMPANY#{c}#INSPECTION#{i}"), &format!("{EMAIL_PREFIX}{dedupe}"))
}

pub const EMAIL_PREFIX: &str = "EMAIL#";

/// A marker that a request email was asked for again within its window (expires in an hour).
/// The open window of repeats of one email (`topic`: its dedupe key without its time).
pub fn email_gate(c: CompanyId, i: InspectionId, topic: &str) -> Key {
    Key::new(format!("COMPANY#{c}#INSPECTION#{i}"), &format!("GATE#{topic}"))
}

pub fn email_repeat(c: CompanyId, i: InspectionId, dedupe: &str) -> Key {
    Key::new(format!("COMPANY#{c}#INSPECTION#{i}"), &format!("REPEAT#{dedupe}"))
}

/// An address the company's email must not go to any more (a hard bounce or a complaint).
/// An erased person's suppression: a salted hash of the address, so nothing is sent to it again
/// and the address itself is gone.
pub fn suppression_erased(c: CompanyId, address: &str) -> Key {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("erased-suppression:{c}:{}", address.to_ascii_lowercase()).as_bytes());
    Key::new(format!("COMPANY#{c}#SUPPRESSED"), &format!("#erased#{}", hex::encode(digest)))
}

pub fn suppression(c: CompanyId, address: &str) -> Key {
    Key::new(format!("COMPANY#{c}#SUPPRESSED"), &address.to_ascii_lowercase())
}

/// A staff alert waiting to be emailed (`sort`: its time and id).
pub fn alert(c: CompanyId, sort: &str) -> Key {
    Key::new(format!("COMPANY#{c}#ALERT"), sort)
}

/// A one-click unsubscribe link, by the hash of its secret.
pub fn unsubscribe(hash: &str) -> Key {
    Key::new(format!("UNSUBSCRIBE#{hash}"), "UNSUBSCRIBE")
}

/// A sparse queue (an index partition the job reads by due time) spread over `shards` partition
/// keys, `<base>#0` … `<base>#<shards-1>`. AWS takes at most 1,000 writes/s on one partition key,
/// its GSIs included (and a GSI's hot key throttles the table writes that feed it): the bench
/// measured one `OUTBOX` key at 2,000 writes/s when 10,000 documents fall due at once, so every
/// queue is spread over shards, an item's shard chosen from its stable id (FNV-1a), so it stays
/// in its shard through every state it takes while waiting. The job reads the shards concurrently
/// (one round trip's latency), and `base` itself, where items written before the queue was
/// sharded wait until they leave (nothing is written there any more). Changing `shards` moves
/// where new items go; the job must read every shard that may still hold some.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Queue {
    pub base: &'static str,
    pub shards: u32,
}

impl Queue {
    /// The partition of the item identified by `id`.
    pub fn shard(&self, id: &str) -> String {
        let hash = id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
        format!("{}#{}", self.base, hash % u64::from(self.shards.max(1)))
    }

    /// Every partition the queue may hold items in: the shards, and the unsharded one.
    pub fn partitions(&self) -> Vec<String> {
        (0..self.shards).map(|n| format!("{}#{n}", self.base)).chain(std::iter::once(self.base.to_owned())).collect()
    }
}

/// Emails waiting to be sent (GSI1). 8 shards: 2,000 writes/s measured → ~250/s each, room for 4×.
pub const OUTBOX: Queue = Queue { base: "OUTBOX", shards: 8 };

/// A document waiting for its `publish_at` (carries the DUE index keys).
pub fn schedule(c: CompanyId, i: InspectionId, d: DocumentId) -> Key {
    Key::new(format!("COMPANY#{c}#INSPECTION#{i}"), &format!("SCHEDULE#{d}"))
}

/// `DueSK`: when, then which document (so a due key names everything the job needs).
pub fn due_sort(publish_at: &str, c: CompanyId, i: InspectionId, d: DocumentId) -> String {
    format!("{publish_at}#{c}#{i}#{d}")
}

pub const GSI2: &str = "GSI2";
pub const GSI2PK: &str = "GSI2PK";
pub const GSI2SK: &str = "GSI2SK";

pub fn building(c: CompanyId, b: BuildingId) -> Key {
    Key::new(format!("COMPANY#{c}#BUILDING#{b}"), "BUILDING")
}

pub fn buildings_of(c: CompanyId) -> String {
    format!("COMPANY#{c}#BUILDINGS")
}

/// A published document of a building (what its contacts may see), written on publish.
pub fn building_document(c: CompanyId, b: BuildingId, d: DocumentId) -> Key {
    Key::new(format!("COMPANY#{c}#BUILDING#{b}"), &format!("{BUILDING_DOC_PREFIX}{d}"))
}

pub const BUILDING_DOC_PREFIX: &str = "DOC#";

pub fn contact(c: CompanyId, k: ContactId) -> Key {
    Key::new(format!("COMPANY#{c}#CONTACT#{k}"), "CONTACT")
}

pub fn contacts_of(c: CompanyId) -> String {
    format!("COMPANY#{c}#CONTACTS")
}

pub fn contact_audit(c: CompanyId, k: ContactId, a: AuditId) -> Key {
    Key::new(format!("COMPANY#{c}#CONTACT#{k}"), &format!("{AUDIT_PREFIX}{a}"))
}

pub fn deficiency(c: CompanyId, b: BuildingId, f: DeficiencyId) -> Key {
    Key::new(format!("COMPANY#{c}#BUILDING#{b}"), &format!("DEFICIENCY#{f}"))
}

/// GSI1 partition of a report's deficiencies (to show or hide them when it is (un)published).
pub fn report_deficiencies(c: CompanyId, d: DocumentId) -> String {
    format!("COMPANY#{c}#REPORT#{d}#DEFICIENCIES")
}

/// GSI2 partition: a building's visible deficiencies; sort `U#<id>` (unresolved) or `R#<id>`.
pub fn deficiency_feed(c: CompanyId, b: BuildingId) -> String {
    format!("COMPANY#{c}#BUILDING#{b}#FEED")
}

/// A fixed rate-limit window of anything else, by what it limits (an opaque name: hashes, not
/// addresses) and the window's start.
pub fn rate_window(what: &str, window_start: i64) -> Key {
    Key::new(format!("RATE#{what}"), &format!("W#{window_start}"))
}

/// GSI1 partition listing a company's inspections, sorted by scheduled time.
pub fn inspections_of(c: CompanyId) -> String {
    format!("COMPANY#{c}#INSPECTIONS")
}

pub fn inspection_sort(scheduled_at: &str, i: InspectionId) -> String {
    format!("{scheduled_at}#{i}")
}

// ---- "all my inspections" (/me) ----

/// An address as a key part: its SHA-256 (the address itself is not in any key).
pub fn email_part(email: &crate::foundation::email::Email) -> String {
    use sha2::Digest;
    hex::encode(&sha2::Sha256::digest(email.as_str().as_bytes())[..16])
}

/// The inspections where an address holds a link, one item each (`INSPECTION#<id>`).
pub fn person_inspections(c: CompanyId, email_part: &str) -> String {
    format!("COMPANY#{c}#PERSON#{email_part}")
}

pub fn person_inspection(c: CompanyId, email_part: &str, i: InspectionId) -> Key {
    Key::new(person_inspections(c, email_part), &format!("INSPECTION#{i}"))
}

/// Every (inspection, person) an address appeared as in a company (the privacy index).
pub fn privacy_entries(c: CompanyId, email_part: &str) -> String {
    format!("COMPANY#{c}#PRIVACY#{email_part}")
}

pub fn privacy_entry(c: CompanyId, email_part: &str, i: InspectionId, p: crate::foundation::ids::PersonId) -> Key {
    Key::new(privacy_entries(c, email_part), &format!("INSPECTION#{i}#{p}"))
}

/// A staff request to erase a person's data (`/staff/privacy/erasures/{id}`).
pub fn privacy_erasure(c: CompanyId, id: &str) -> Key {
    Key::new(format!("COMPANY#{c}#PRIVACYERASURE#{id}"), "ERASURE")
}

/// Any stored item's key, as read back from it.
pub fn of_item(pk: &str, sk: &str) -> Key {
    Key::new(pk.to_owned(), sk)
}

/// The company's privacy log: staff exports and erasures, by time.
pub fn privacy_audit(c: CompanyId, sort: &str) -> Key {
    Key::new(format!("COMPANY#{c}#PRIVACYLOG"), sort)
}

/// A staff request for a person's data (`/staff/privacy/exports/{id}`).
/// A whole-company export (offboarding).
pub fn company_export(c: CompanyId, id: &str) -> Key {
    Key::new(format!("COMPANY#{c}#COMPANYEXPORT#{id}"), "EXPORT")
}

/// What stays of a deleted company: its id, when it was asked and when it was done.
pub fn tombstone(c: CompanyId) -> Key {
    Key::new(format!("COMPANY#{c}"), "TOMBSTONE")
}

pub fn privacy_export(c: CompanyId, id: &str) -> Key {
    Key::new(format!("COMPANY#{c}#PRIVACYEXPORT#{id}"), "EXPORT")
}

/// A staff preview link, by the SHA-256 of its secret.
pub fn staff_preview(hash: &SecretHash) -> Key {
    Key::new(format!("PREVIEW#{}", hash.as_str()), "PREVIEW")
}

pub fn me_sign_in(hash: &SecretHash) -> Key {
    me_sign_in_by_stored_hash(hash.as_str())
}

pub fn me_sign_in_by_stored_hash(hex: &str) -> Key {
    Key::new(format!("MESIGNIN#{hex}"), "MESIGNIN")
}

/// GSI1 partition of an address's unused sign-in links with a company (staff end them with its
/// sessions).
pub fn me_sign_ins_of(c: CompanyId, email_part: &str) -> String {
    format!("COMPANY#{c}#MESIGNINS#{email_part}")
}

pub fn me_session(hash: &SecretHash) -> Key {
    me_session_by_stored_hash(hash.as_str())
}

pub fn me_session_by_stored_hash(hex: &str) -> Key {
    Key::new(format!("MESESSION#{hex}"), "MESESSION")
}

/// GSI1 partition of an address's sessions with a company (staff end them all at once).
/// The one-click unsubscribe links made for an address (GSI1).
pub fn unsubscribes_of(c: CompanyId, email_part: &str) -> String {
    format!("COMPANY#{c}#UNSUBSCRIBES#{email_part}")
}

pub fn me_sessions_of(c: CompanyId, email_part: &str) -> String {
    format!("COMPANY#{c}#MESESSIONS#{email_part}")
}

/// An inspection's reminder schedule item (in the `DUE` index's [`REMIND`] partition while a
/// reminder is to come).
pub fn reminder(c: CompanyId, i: InspectionId) -> Key {
    Key::new(format!("COMPANY#{c}#INSPECTION#{i}"), "REMINDER")
}

/// `<instant>#<c>#<i>`: the reminder item's sort key in the `DUE` index.
pub fn reminder_sort(at: &str, c: CompanyId, i: InspectionId) -> String {
    format!("{at}#{c}#{i}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_keys_embed_the_company() {
        let (a, b) = (CompanyId::new(), CompanyId::new());
        let i = InspectionId::new();
        assert_ne!(inspection(a, i), inspection(b, i));
        assert!(inspection(a, i).pk.starts_with(&company(a).pk));
    }

    #[test]
    fn a_queue_spreads_items_evenly_over_its_shards_and_keeps_each_in_one() {
        let ids: Vec<String> = (0..8000).map(|_| ulid::Ulid::new().to_string()).collect();
        let mut per_shard = std::collections::BTreeMap::<String, usize>::new();
        for id in &ids {
            assert_eq!(OUTBOX.shard(id), OUTBOX.shard(id));
            *per_shard.entry(OUTBOX.shard(id)).or_default() += 1;
        }
        assert_eq!(per_shard.len(), 8);
        assert!(per_shard.values().all(|n| (800..=1200).contains(n)), "{per_shard:?}");
        // The job reads every shard and the key from before sharding.
        let all = OUTBOX.partitions();
        assert_eq!(all.len(), 9);
        assert!(per_shard.keys().all(|k| all.contains(k)) && all.contains(&"OUTBOX".to_owned()));
    }
}

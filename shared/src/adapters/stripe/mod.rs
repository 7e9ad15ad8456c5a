//! Stripe: creating Checkout Sessions for Pay Now ([`checkout`]) and the webhook signature scheme
//! ([`signature`]): verifying what Stripe sends us, and signing our own outbound webhooks the same
//! way.

#[cfg(feature = "checkout")]
pub mod checkout;
pub mod signature;

//! "All my inspections" (`/me/{company}`) through the local gateway: a sign-in link by email,
//! one session, the list of exactly the inspections where the address holds a link (across
//! inspections and roles), revocation taking one off at once, no enumeration, single-use and
//! expiring links, cookie flags, logout, staff ending sessions, and nothing secret stored raw.

use portal_tests::{days_from_now, fixture, inspection_body, unique, Fixture, Reply};
use serde_json::{json, Value};
use time::Duration;

async fn staff(f: &Fixture, method: &str, path: &str, body: Option<Value>) -> Reply {
    f.app.request(method, path, Some(&f.key), body).await
}

/// A second inspection of the same company with `people`; its id.
async fn another_inspection(f: &Fixture, scheduled_at: &str, people: Value) -> String {
    let mut body = inspection_body();
    body["scheduled_at"] = json!(scheduled_at);
    body["address"] = json!(format!("{} Oak Avenue", &scheduled_at[8..10]));
    body["people"] = people;
    body["notify"] = json!(false);
    let r = staff(f, "POST", "/staff/inspections", Some(body)).await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.json["inspection_id"].as_str().unwrap().to_owned()
}

async fn ask(f: &Fixture, email: &str) -> Reply {
    f.post(&format!("/me/{}", f.company_id), json!({ "email": email })).await
}

/// The sign-in links emailed to `email` so far.
async fn sign_in_links(f: &Fixture, email: &str) -> Vec<String> {
    f.app.run_jobs().await;
    let mails = f.app.emails_to(email).await;
    mails.iter().flat_map(|m| m.links.iter().filter(|l| l.contains("/signin/")).cloned()).collect()
}

fn path(f: &Fixture, url: &str) -> String {
    url.strip_prefix(&f.app.base).expect("links use the public base URL").to_owned()
}

/// Uses a sign-in link as a browser would (open it, press Continue); the reply to the press.
async fn sign_in(f: &Fixture, link: &str) -> Reply {
    let page = f.app.send(f.app.http.get(f.app.url(link))).await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(page.text.contains("Continue"), "{}", page.text);
    f.app.send(f.app.http.post(f.app.url(link)).header("origin", &f.app.base)).await
}

fn session_cookie(r: &Reply) -> String {
    let set = r.header("set-cookie").expect("a session cookie");
    set.split(';').next().unwrap().to_owned()
}

async fn list(f: &Fixture, cookie: &str) -> Reply {
    let req = f.app.http.get(f.app.url(&format!("/me/{}", f.company_id))).header("accept", "application/json");
    f.app.send(req.header("cookie", cookie)).await
}

fn listed(r: &Reply) -> Vec<(String, String)> {
    r.json["inspections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["inspection_id"].as_str().unwrap().to_owned(), i["role"].as_str().unwrap().to_owned()))
        .collect()
}

#[tokio::test]
async fn one_sign_in_link_shows_every_inspection_where_the_address_holds_a_link() {
    let f = fixture(json!({})).await;
    let bob = f.agent_email.clone();
    // Bob is the buyer's agent on the fixture's inspection (a week from now), the client on a
    // later one, and was on a third until staff revoked him.
    let later = another_inspection(
        &f,
        &days_from_now(90),
        json!([{ "role": "client", "name": "Bob Buyer", "email": bob }, { "role": "client", "name": "Other", "email": unique("o") }]),
    )
    .await;
    let revoked =
        another_inspection(&f, &days_from_now(120), json!([{ "role": "listing_agent", "name": "Bob", "email": bob }]))
            .await;
    let person = staff(&f, "GET", &format!("/staff/inspections/{revoked}"), None).await.json["people"][0]["person_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = staff(&f, "DELETE", &format!("/staff/inspections/{revoked}/people/{person}/token"), None).await;
    assert!(r.status < 300, "{}", r.text);

    // No enumeration: the same answer for Bob, a stranger and a staff member's address.
    let stranger = unique("nobody");
    let answers = [ask(&f, &bob).await, ask(&f, &stranger).await, ask(&f, "ivan@lakeside.test").await];
    for a in &answers {
        assert_eq!((a.status, &a.json), (202, &answers[0].json), "{}", a.text);
        assert_eq!(a.round_trips(), answers[0].round_trips(), "the same work whatever the address");
    }
    let links = sign_in_links(&f, &bob).await;
    assert_eq!(links.len(), 1, "one sign-in link to Bob");
    assert!(sign_in_links(&f, &stranger).await.is_empty() && sign_in_links(&f, "ivan@lakeside.test").await.is_empty());
    let link = path(&f, &links[0]);

    let signed_in = sign_in(&f, &link).await;
    assert_eq!(signed_in.status, 303, "{}", signed_in.text);
    assert_eq!(signed_in.header("location"), Some(format!("/me/{}", f.company_id).as_str()));
    let set = signed_in.header("set-cookie").unwrap().to_owned();
    for flag in ["HttpOnly", "SameSite=Lax", &format!("Path=/me/{}", f.company_id), "Max-Age=2592000"] {
        assert!(set.contains(flag), "cookie lacks {flag}: {set}");
    }
    assert!(!set.contains("Secure"), "Secure is dropped only because the base URL is local http");
    let cookie = session_cookie(&signed_in);
    assert_eq!(sign_in(&f, &link).await.status, 410, "a sign-in link works once");

    // The list: exactly the two inspections where Bob holds a link, upcoming soonest first.
    let r = list(&f, &cookie).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        listed(&r),
        vec![(f.inspection_id.to_string(), "buyer_agent".to_owned()), (later.clone(), "client".to_owned())]
    );
    assert!(r.round_trips() <= 2, "session and company in one read, the list in one query: {}", r.round_trips());
    let first = &r.json["inspections"][0];
    assert_eq!(first["address"], "12 Elm Street, Springfield");
    assert_eq!(first["payment"]["state"], "due");
    assert_eq!(first["payment"]["balance_cents"], 45000);
    assert_eq!(first["agreement"], json!({ "required": true, "signed": false }));
    let html = f.app.send(f.app.http.get(f.app.url(&format!("/me/{}", f.company_id))).header("cookie", &cookie)).await;
    assert!(html.text.contains("12 Elm Street") && html.text.contains("Oak Avenue") && html.text.contains("Sign out"));

    // Each entry opens that inspection's own portal, as Bob in his role there: a POST from the
    // list (a GET, as a prefetch or a scanner makes, issues nothing).
    let open_url = first["portal_url"].as_str().unwrap().to_owned();
    let got = f.app.send(f.app.http.get(&open_url).header("cookie", &cookie)).await;
    assert_eq!(got.status, 405, "{}", got.text);
    let open = f.app.send(f.app.http.post(&open_url).header("cookie", &cookie).header("origin", &f.app.base)).await;
    assert_eq!(open.status, 303, "{}", open.text);
    let portal = open.header("location").unwrap().to_owned();
    assert!(portal.starts_with("/p/"), "{portal}");
    let view = f.view(&portal).await;
    assert_eq!(view.status, 200, "{}", view.text);
    assert_eq!(view.json["viewer"]["role"], "buyer_agent");
    // Opening again replaces that link only; the emailed one still works.
    let again = f.app.send(f.app.http.post(&open_url).header("cookie", &cookie).header("origin", &f.app.base)).await;
    assert_eq!(f.view(&portal).await.status, 404, "the previous /me link is replaced");
    assert_eq!(f.view(again.header("location").unwrap()).await.status, 200);
    assert_eq!(f.view(&f.agent).await.status, 200, "the emailed link is untouched");

    // Staff revoke Bob on the later inspection: it leaves his list at once.
    let people = staff(&f, "GET", &format!("/staff/inspections/{later}"), None).await.json["people"].clone();
    let bob_there = people.as_array().unwrap().iter().find(|p| p["email"] == bob.as_str()).unwrap()["person_id"]
        .as_str()
        .unwrap()
        .to_owned();
    staff(&f, "DELETE", &format!("/staff/inspections/{later}/people/{bob_there}/token"), None).await;
    assert_eq!(listed(&list(&f, &cookie).await), vec![(f.inspection_id.to_string(), "buyer_agent".to_owned())]);
    let gone = format!("/me/{}/inspections/{later}", f.company_id);
    let gone = f.app.http.post(f.app.url(&gone)).header("cookie", &cookie).header("origin", &f.app.base);
    assert_eq!(f.app.send(gone).await.status, 404);

    // The cookie is for this company only: another company's list does not know it.
    let (other, _) = f.app.create_company("Other Inspections", &[]).await;
    let foreign = f
        .app
        .send(
            f.app
                .http
                .get(f.app.url(&format!("/me/{other}")))
                .header("accept", "application/json")
                .header("cookie", &cookie),
        )
        .await;
    foreign.assert_problem(401);

    // Nothing secret is stored raw.
    let raw_code = link.rsplit('/').next().unwrap().to_owned();
    let raw_cookie = cookie.split_once('=').unwrap().1.to_owned();
    let everything = format!("{:?}", f.app.all_items().await);
    assert!(!everything.contains(&raw_code) && !everything.contains(&raw_cookie));

    // Logout ends the session and clears the cookie.
    let out = f
        .app
        .send(
            f.app
                .http
                .post(f.app.url(&format!("/me/{}/logout", f.company_id)))
                .header("origin", &f.app.base)
                .header("cookie", &cookie),
        )
        .await;
    assert_eq!(out.status, 303);
    assert!(out.header("set-cookie").unwrap().contains("Max-Age=0"));
    list(&f, &cookie).await.assert_problem(401);
}

#[tokio::test]
async fn sign_in_links_expire_are_single_use_and_refuse_other_origins_and_staff_end_sessions() {
    let f = fixture(json!({})).await;
    let jane = f.client_email.clone();
    ask(&f, &jane).await;
    let link = path(&f, &sign_in_links(&f, &jane).await[0]);

    // A post from another site is refused, and uses nothing up.
    let forged = f.app.send(f.app.http.post(f.app.url(&link)).header("origin", "https://evil.example")).await;
    forged.assert_problem(403);
    let cookie = session_cookie(&sign_in(&f, &link).await);
    assert_eq!(list(&f, &cookie).await.status, 200);

    // Staff end every session of an address: the sessions, the sign-in links not used yet, and
    // the portal links /me opened (the emailed ones stay).
    let open_url = list(&f, &cookie).await.json["inspections"][0]["portal_url"].as_str().unwrap().to_owned();
    let opened = f.app.send(f.app.http.post(&open_url).header("cookie", &cookie).header("origin", &f.app.base)).await;
    let me_link = opened.header("location").unwrap().to_owned();
    assert_eq!(f.view(&me_link).await.status, 200);
    f.app.clock.advance(Duration::minutes(5));
    ask(&f, &jane).await;
    let unused = sign_in_links(&f, &jane).await.into_iter().find(|l| !l.ends_with(&link)).unwrap();
    let r = staff(&f, "POST", "/staff/sessions/end", Some(json!({ "email": jane }))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        (&r.json["ended"], &r.json["sign_in_links_ended"], &r.json["links_revoked"]),
        (&json!(1), &json!(1), &json!(1)),
        "{}",
        r.text
    );
    list(&f, &cookie).await.assert_problem(401);
    assert_eq!(f.view(&me_link).await.status, 404, "the link /me opened is revoked");
    assert_eq!(f.view(&f.client).await.status, 200, "the emailed link is not");
    let r = f.app.send(f.app.http.post(&unused).header("origin", &f.app.base)).await;
    assert_eq!(r.status, 410, "the unused sign-in link is ended too: {}", r.text);

    // A link used 15 minutes after it was sent starts nothing; malformed ones neither. (A new
    // ask five minutes on: repeats within five minutes collapse into the first.)
    f.app.clock.advance(Duration::minutes(5));
    ask(&f, &jane).await;
    let links = sign_in_links(&f, &jane).await;
    assert_eq!(links.len(), 3, "a third sign-in link");
    let expired = path(&f, links.last().unwrap());
    f.app.clock.advance(Duration::minutes(15) + Duration::seconds(1));
    let r = f.app.send(f.app.http.post(f.app.url(&expired)).header("origin", &f.app.base)).await;
    assert_eq!(r.status, 410, "{}", r.text);
    assert!(r.header("set-cookie").is_none());
    let r = f.app.send(f.app.http.post(f.app.url(&format!("/me/{}/signin/msi_nope", f.company_id)))).await;
    r.assert_problem(404);
    let unknown = portal_shared::foundation::credentials::MeSecret::generate(
        portal_shared::foundation::credentials::MeSecret::SIGN_IN,
    );
    let r = f.app.send(f.app.http.post(f.app.url(&format!("/me/{}/signin/{}", f.company_id, unknown.reveal())))).await;
    assert_eq!(r.status, 410, "unknown and used look the same");

    // Without a session: the sign-in form for people, 401 for programs.
    let page = f.app.send(f.app.http.get(f.app.url(&format!("/me/{}", f.company_id)))).await;
    assert!(page.text.contains("Enter your email to see all your inspections with Lakeside Home Inspections"));
    let form = f.form(&format!("/me/{}", f.company_id), &[("email", &jane)]).await;
    assert_eq!(form.status, 202);
    assert!(form.text.contains("a sign-in link is on its way"));
}

#[tokio::test]
async fn notification_emails_can_offer_all_your_inspections() {
    let f = fixture(json!({ "email_templates": { "invoice_published": {
        "subject": "Invoice for {{address}}", "body": "See {{inspection_details_link}} or all: {{my_inspections_link}}" } } }))
    .await;
    let doc = json!({ "kind": "invoice", "title": "Invoice" });
    f.app.published_document(&f.key, &f.inspection_id.to_string(), doc).await;
    f.app.run_jobs().await;
    let mail = &f.app.emails_to(&f.client_email).await[0];
    let me = format!("{}/me/{}", f.app.base, f.company_id);
    assert!(mail.links.contains(&me), "{:?}", mail.links);
    // The sign-in page, never a session.
    let r = f.app.send(f.app.http.get(&me)).await;
    assert!(r.header("set-cookie").is_none() && r.text.contains("Email me a sign-in link"));
}

#[tokio::test]
async fn a_session_ends_after_a_week_idle_and_after_thirty_days_whatever_its_use() {
    let f = fixture(json!({})).await;
    let jane = f.client_email.clone();
    ask(&f, &jane).await;
    let link = path(&f, &sign_in_links(&f, &jane).await[0]);
    // Fourteen minutes later the link still works (it lives 15).
    f.app.clock.advance(Duration::minutes(14));
    let cookie = session_cookie(&sign_in(&f, &link).await);

    // Used every six days: a week never passes idle, until 30 days from sign-in.
    for day in [6, 12, 18, 24] {
        f.app.clock.advance(Duration::days(6));
        assert_eq!(list(&f, &cookie).await.status, 200, "day {day}: used within the week");
    }
    f.app.clock.advance(Duration::days(6) + Duration::minutes(1));
    list(&f, &cookie).await.assert_problem(401);

    // A second session, left alone for a week and a minute.
    ask(&f, &jane).await;
    let newest = sign_in_links(&f, &jane).await.into_iter().find(|l| !l.ends_with(&link)).unwrap();
    let cookie = session_cookie(&sign_in(&f, &path(&f, &newest)).await);
    f.app.clock.advance(Duration::days(6) + Duration::hours(23));
    let r = list(&f, &cookie).await;
    assert_eq!(r.status, 200, "idle for less than a week: {}", r.text);
    f.app.clock.advance(Duration::days(7) + Duration::minutes(1));
    list(&f, &cookie).await.assert_problem(401);
}

#[tokio::test]
async fn requests_a_second_apart_are_one_email_even_across_a_five_minute_boundary() {
    let f = fixture(json!({})).await;
    let jane = f.client_email.clone();
    let window = portal_shared::adapters::store::outbox::REPEAT_WINDOW_SECONDS;
    f.app.clock.set(f.app.next_window_start(window) - time::Duration::seconds(1));
    assert_eq!(ask(&f, &jane).await.status, 202);
    f.app.clock.advance(time::Duration::seconds(2));
    assert_eq!(ask(&f, &jane).await.status, 202);
    assert_eq!(sign_in_links(&f, &jane).await.len(), 1, "two requests a second apart send one email");
    // The window runs from the first request: 4 1/2 minutes on it still holds (the clock ticks on
    // while the test runs: the margin is for a slow machine), 5 minutes on it does not.
    f.app.clock.advance(time::Duration::seconds(window - 32));
    assert_eq!(ask(&f, &jane).await.status, 202);
    assert_eq!(sign_in_links(&f, &jane).await.len(), 1, "within five minutes of the first request");
    f.app.clock.advance(time::Duration::seconds(31));
    assert_eq!(ask(&f, &jane).await.status, 202);
    assert_eq!(sign_in_links(&f, &jane).await.len(), 2, "five minutes after the first request, a new link");
}

#[tokio::test]
async fn a_stranger_asking_for_someone_s_address_never_locks_them_out() {
    let f = fixture(json!({})).await;
    f.app.clock.set(f.app.next_window_start(portal_link::FULL_ACCESS_WINDOW_SECONDS));
    let jane = f.client_email.clone();
    // A stranger (127.0.0.1) asks for Jane's link again and again.
    for _ in 0..8 {
        assert_eq!(ask(&f, &jane).await.status, 202);
    }
    // Jane, from her own address, still gets an answer, and one email for all of it.
    let own =
        reqwest::Client::builder().local_address("127.0.0.2".parse::<std::net::IpAddr>().unwrap()).build().unwrap();
    let url = f.app.url(&format!("/me/{}", f.company_id));
    assert_eq!(f.app.send(own.post(&url).json(&json!({ "email": jane }))).await.status, 202);
    assert_eq!(sign_in_links(&f, &jane).await.len(), 1, "repeats within five minutes collapse into one email");
    f.app.clock.advance(time::Duration::minutes(6));
    assert_eq!(f.app.send(own.post(&url).json(&json!({ "email": jane }))).await.status, 202);
    assert_eq!(sign_in_links(&f, &jane).await.len(), 2, "a new link five minutes on");
    // Only a flood from one source is refused.
    let mut refused = 0;
    for n in 0..portal_link::ME_PER_IP + 5 {
        let r = ask(&f, &unique(&format!("x{n}"))).await;
        refused += usize::from(r.status == 429);
    }
    assert!(refused >= 5, "the flooding source is refused: {refused}");
}

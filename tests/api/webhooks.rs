//! Webhooks (issue 15): endpoints managed by superusers, deliveries signed
//! as the Standard Webhooks specification says, retried on a schedule,
//! settled and queryable, and the remote-id round trip, against a real
//! receiver on loopback.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use entity::{webhook, webhook_delivery};
use roster::config::Config;
use sea_orm::{ActiveModelTrait, EntityTrait, PaginatorTrait, Set};
use serde_json::{Value, json};

use crate::{
    helpers::{Reply, TestApp, spawn_app_with},
    processes,
    receiver::{Answer, Receiver, signed_by},
};

const CREATE: &str = "mutation($input: CreateWebhookInput!) { createWebhook(input: $input) { secret webhook { id url eventTypes isActive description } } }";
const DELIVERIES: &str = "query($id: ID!, $f: WebhookDeliveryFilter) { webhook(id: $id) { isActive disabledReason deliveries(filter: $f, first: 50) { totalCount nodes { id status nextAttemptAt event { id type } attempts { statusCode durationMs error } } } } }";
const CREATE_DIVISION: &str =
    "mutation($n: String!) { createDivision(input: {name: $n, divisionType: MAIN}) { id } }";

/// An app that may call loopback, changed by `configure`, with a
/// superuser's token.
async fn app_with(configure: impl FnOnce(&mut Config)) -> (TestApp, String) {
    let app = spawn_app_with(|config| {
        config.webhooks.allow_private_targets = true;
        configure(config);
    })
    .await;
    let root = app.create_user("root", true, true).await;
    let token = app.token_for(&root);
    (app, token)
}

fn ok(reply: &Reply) {
    assert_eq!(reply.codes(), Vec::<String>::new(), "{}", reply.body);
}

/// Registers `receiver` for `types` (all when empty); its id and secret.
async fn register(
    app: &TestApp,
    token: &str,
    receiver: &Receiver,
    types: Value,
) -> (String, String) {
    let input = json!({ "url": receiver.url, "eventTypes": types, "description": "CRM" });
    let reply = app
        .gql_as(Some(token), CREATE, json!({ "input": input }))
        .await;
    ok(&reply);
    let created = &reply.body["data"]["createWebhook"];
    (
        created["webhook"]["id"].as_str().unwrap().to_owned(),
        created["secret"].as_str().unwrap().to_owned(),
    )
}

/// The endpoint's deliveries, newest first, once `done` holds of them
/// (waiting up to ten seconds).
async fn deliveries_when(
    app: &TestApp,
    token: &str,
    id: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    let read = || async {
        let reply = app
            .gql_as(Some(token), DELIVERIES, json!({ "id": id }))
            .await;
        ok(&reply);
        reply.body["data"]["webhook"].clone()
    };
    loop {
        let webhook = read().await;
        if done(&webhook["deliveries"]["nodes"]) || Instant::now() > deadline {
            // Read again: one read takes the endpoint's row before its
            // deliveries, and on PostgreSQL a commit between the two shows
            // the deliveries of a change without the rest of it.
            return read().await;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn all_settled(nodes: &Value) -> bool {
    let nodes = nodes.as_array().unwrap();
    !nodes.is_empty() && nodes.iter().all(|n| n["status"] != "PENDING")
}

#[tokio::test]
async fn each_event_reaches_the_endpoint_signed_as_the_specification_says() {
    let (app, token) = app_with(|_| {}).await;
    let receiver = Receiver::start().await;
    let (id, secret) = register(&app, &token, &receiver, json!(["USER_CREATED"])).await;
    assert!(
        secret.starts_with("whsec_") && secret.len() > 40,
        "{secret}"
    );
    let create = "mutation { createUser(input: {username: \"ann\", email: \"ann@example.com\", phoneNumber: \"+1 555 0100\"}) { id } }";
    let reply = app.gql_as(Some(&token), create, json!({})).await;
    ok(&reply);
    let ann = reply.body["data"]["createUser"]["id"].as_str().unwrap();
    // A division is not a type the endpoint takes.
    ok(&app
        .gql_as(Some(&token), CREATE_DIVISION, json!({ "n": "North" }))
        .await);
    let received = receiver.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(received.len(), 1);
    let got = &received[0];
    assert!(signed_by(got, &secret), "{got:?}");
    let event_id: i64 = got.id.strip_prefix("evt_").unwrap().parse().unwrap();
    let now = chrono::Utc::now().timestamp();
    let timestamp: i64 = got.timestamp.parse().unwrap();
    assert!((now - 10..=now + 1).contains(&timestamp), "{timestamp}");
    let body = got.json();
    assert_eq!(body["type"], "user.created");
    assert!(body["timestamp"].as_str().unwrap().ends_with('Z'));
    // The user as staff see them: guarded fields included.
    assert_eq!(body["data"]["user"]["id"], ann);
    assert_eq!(body["data"]["user"]["email"], "ann@example.com");
    assert_eq!(body["data"]["user"]["phoneNumber"], "+1 555 0100");
    assert_eq!(body["data"]["groupIds"], json!([]));
    // Another secret does not verify it.
    assert!(!signed_by(got, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"));
    let webhook = deliveries_when(&app, &token, &id, all_settled).await;
    let nodes = &webhook["deliveries"]["nodes"];
    assert_eq!(webhook["deliveries"]["totalCount"], 1);
    assert_eq!(nodes[0]["status"], "SUCCEEDED");
    assert_eq!(nodes[0]["nextAttemptAt"], Value::Null);
    assert_eq!(nodes[0]["event"]["id"], event_id.to_string());
    assert_eq!(nodes[0]["event"]["type"], "USER_CREATED");
    assert_eq!(nodes[0]["attempts"].as_array().unwrap().len(), 1);
    assert_eq!(nodes[0]["attempts"][0]["statusCode"], 200);
    assert_eq!(nodes[0]["attempts"][0]["error"], Value::Null);
}

#[tokio::test]
async fn the_secret_is_shown_once_rotates_and_is_never_readable_again() {
    let (app, token) = app_with(|_| {}).await;
    let receiver = Receiver::start().await;
    let (id, secret) = register(&app, &token, &receiver, json!(["DIVISION_CREATED"])).await;
    let reply = app
        .gql_as(Some(&token), "{ webhooks { id secret } }", json!({}))
        .await;
    assert_eq!(reply.codes(), ["GRAPHQL_VALIDATION_FAILED"]);
    let read = "{ webhooks { id url eventTypes isActive description disabledReason } }";
    let reply = app.gql_as(Some(&token), read, json!({})).await;
    ok(&reply);
    assert_eq!(
        reply.body["data"]["webhooks"],
        json!([{ "id": id, "url": receiver.url, "eventTypes": ["DIVISION_CREATED"], "isActive": true, "description": "CRM", "disabledReason": null }])
    );
    let rotate = "mutation($id: ID!) { rotateWebhookSecret(id: $id) { secret webhook { id } } }";
    let reply = app.gql_as(Some(&token), rotate, json!({ "id": id })).await;
    ok(&reply);
    let rotated = reply.body["data"]["rotateWebhookSecret"]["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(rotated, secret);
    // Deliveries are signed with the new secret only.
    ok(&app
        .gql_as(Some(&token), CREATE_DIVISION, json!({ "n": "North" }))
        .await);
    let received = receiver.wait_for(1, Duration::from_secs(10)).await;
    assert!(signed_by(&received[0], &rotated));
    assert!(!signed_by(&received[0], &secret));
    // The audit log records the changes, never a secret.
    let log = "{ auditEvents(filter: {type: [WEBHOOK_CREATED, WEBHOOK_SECRET_ROTATED]}) { nodes { type payload } } }";
    let reply = app.gql_as(Some(&token), log, json!({})).await;
    ok(&reply);
    let text = reply.body.to_string();
    assert!(!text.contains(&secret) && !text.contains(&rotated) && !text.contains("whsec_"));
    // Of the URL, the origin only: a path can be a credential.
    let origin = receiver.url.trim_end_matches("/hook");
    let mut logged = reply.body["data"]["auditEvents"]["nodes"][1]["payload"]["webhook"].clone();
    // A change of path shows as a change of fingerprint.
    let fingerprint = logged["urlFingerprint"].take();
    assert_eq!(
        fingerprint.as_str().map(str::len),
        Some(16),
        "{fingerprint}"
    );
    assert_eq!(
        logged,
        json!({ "id": id, "origin": origin, "urlFingerprint": null, "description": "CRM", "eventTypes": ["division.created"], "isActive": true })
    );
    let delete = "mutation($id: ID!) { deleteWebhook(id: $id) }";
    let reply = app.gql_as(Some(&token), delete, json!({ "id": id })).await;
    assert_eq!(reply.body["data"]["deleteWebhook"], id);
    let reply = app
        .gql_as(
            Some(&token),
            "query($id: ID!) { webhook(id: $id) { id } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(reply.codes(), ["NOT_FOUND"]);
    assert_eq!(
        webhook_delivery::Entity::find()
            .count(app.db())
            .await
            .unwrap(),
        0
    );
}

#[tokio::test]
async fn only_superusers_manage_webhooks() {
    let (app, _) = app_with(|_| {}).await;
    // Staff hold every permission, yet are not superusers.
    let staff = app.create_user("staff", true, false).await;
    let staff = app.token_for(&staff);
    let input = json!({ "url": "http://127.0.0.1:9/hook" });
    for (token, code) in [
        (Some(staff.as_str()), "FORBIDDEN"),
        (None, "UNAUTHENTICATED"),
    ] {
        let reply = app.gql_as(token, CREATE, json!({ "input": input })).await;
        assert_eq!(reply.codes(), [code], "{}", reply.body);
        let reply = app.gql_as(token, "{ webhooks { id } }", json!({})).await;
        assert_eq!(reply.codes(), [code]);
        let reply = app
            .gql_as(token, "mutation { replayWebhookEvents(webhookId: \"1\", since: \"2026-01-01T00:00:00Z\") }", json!({}))
            .await;
        assert_eq!(reply.codes(), [code]);
        let reply = app
            .gql_as(
                token,
                "mutation { redeliverWebhookDelivery(id: \"1\") { id } }",
                json!({}),
            )
            .await;
        assert_eq!(reply.codes(), [code]);
    }
    assert_eq!(webhook::Entity::find().count(app.db()).await.unwrap(), 0);
}

#[tokio::test]
async fn private_targets_are_refused_unless_allowed() {
    let app = spawn_app_with(|config| config.webhooks.concurrency = 1).await;
    let root = app.create_user("root", true, true).await;
    let token = app.token_for(&root);
    for url in [
        "http://127.0.0.1:9/hook",
        "http://localhost/hook",
        "http://[::1]/",
        "http://169.254.169.254/latest/meta-data",
        "http://10.0.0.1/",
        "http://[::ffff:192.168.0.1]/",
    ] {
        let reply = app
            .gql_as(Some(&token), CREATE, json!({ "input": { "url": url } }))
            .await;
        assert_eq!(reply.codes(), ["BAD_USER_INPUT"], "{url}");
        assert_eq!(
            reply.body["errors"][0]["extensions"]["fields"]["url"],
            json!([roster::domain::webhook_url::PRIVATE_TARGET]),
            "{url}"
        );
    }
    let reply = app
        .gql_as(
            Some(&token),
            CREATE,
            json!({ "input": { "url": "ftp://example.com/" } }),
        )
        .await;
    assert_eq!(
        reply.body["errors"][0]["extensions"]["fields"]["url"],
        json!(["Enter a valid http or https URL."])
    );
    // A name that resolves to loopback (or an endpoint stored while
    // private targets were allowed) is refused when called.
    let receiver = Receiver::start().await;
    let port = receiver.url.split(':').nth(2).unwrap();
    for url in [format!("http://localhost:{port}"), receiver.url.clone()] {
        let now = chrono::Utc::now();
        webhook::ActiveModel {
            url: Set(url),
            description: Set(String::new()),
            event_types: Set(",*,".into()),
            is_active: Set(true),
            secret: Set("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into()),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        }
        .insert(app.db())
        .await
        .unwrap();
    }
    ok(&app
        .gql_as(Some(&token), CREATE_DIVISION, json!({ "n": "North" }))
        .await);
    for id in ["1", "2"] {
        let webhook = deliveries_when(&app, &token, id, |nodes| {
            nodes[0]["attempts"]
                .as_array()
                .is_some_and(|a| !a.is_empty())
        })
        .await;
        let attempt = &webhook["deliveries"]["nodes"][0]["attempts"][0];
        assert_eq!(
            attempt["error"], "refused: not a public address",
            "{webhook}"
        );
        assert_eq!(attempt["statusCode"], Value::Null);
    }
    assert!(receiver.received().is_empty());
}

#[tokio::test]
async fn failures_are_retried_on_the_schedule_then_fail_and_can_be_redelivered() {
    let (app, token) =
        app_with(|config| config.webhooks.schedule = "300ms,600ms".parse_schedule()).await;
    let receiver = Receiver::start().await;
    let (id, _) = register(&app, &token, &receiver, json!(["DIVISION_CREATED"])).await;
    // The first endpoint call fails twice, then succeeds; the second fails
    // every time.
    receiver.script([Answer::status(500), Answer::status(503)]);
    ok(&app
        .gql_as(Some(&token), CREATE_DIVISION, json!({ "n": "North" }))
        .await);
    let received = receiver.wait_for(3, Duration::from_secs(10)).await;
    assert_eq!(received.len(), 3);
    assert!(
        received
            .iter()
            .all(|r| r.id == received[0].id && r.body == received[0].body)
    );
    let gaps: Vec<Duration> = received.windows(2).map(|w| w[1].at - w[0].at).collect();
    // The schedule, ±20 % jitter.
    assert!(gaps[0] >= Duration::from_millis(240), "{gaps:?}");
    assert!(gaps[1] >= Duration::from_millis(480), "{gaps:?}");
    let webhook = deliveries_when(&app, &token, &id, all_settled).await;
    let node = &webhook["deliveries"]["nodes"][0];
    assert_eq!(node["status"], "SUCCEEDED");
    let codes: Vec<&Value> = node["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["statusCode"])
        .collect();
    assert_eq!(codes, [&json!(500), &json!(503), &json!(200)]);
    assert_eq!(node["attempts"][0]["error"], "HTTP 500");
    // Every attempt fails: three attempts, then FAILED, and it stays.
    receiver.otherwise(Answer::status(500));
    ok(&app
        .gql_as(Some(&token), CREATE_DIVISION, json!({ "n": "South" }))
        .await);
    let failed = deliveries_when(&app, &token, &id, |nodes| nodes[0]["status"] == "FAILED").await;
    let node = &failed["deliveries"]["nodes"][0];
    assert_eq!(node["status"], "FAILED", "{failed}");
    assert_eq!(node["attempts"].as_array().unwrap().len(), 3);
    let reply = app
        .gql_as(
            Some(&token),
            DELIVERIES,
            json!({ "id": id, "f": { "status": "FAILED" } }),
        )
        .await;
    assert_eq!(reply.body["data"]["webhook"]["deliveries"]["totalCount"], 1);
    // Sent again on request, with the same webhook-id.
    receiver.otherwise(Answer::ok());
    let before = receiver.received().len();
    let redeliver = "mutation($id: ID!) { redeliverWebhookDelivery(id: $id) { id status } }";
    let reply = app
        .gql_as(Some(&token), redeliver, json!({ "id": node["id"] }))
        .await;
    ok(&reply);
    assert_eq!(
        reply.body["data"]["redeliverWebhookDelivery"]["status"],
        "PENDING"
    );
    let received = receiver.wait_for(before + 1, Duration::from_secs(10)).await;
    assert_eq!(received[before].id, received[before - 1].id);
    let done = deliveries_when(&app, &token, &id, |nodes| nodes[0]["status"] == "SUCCEEDED").await;
    assert_eq!(
        done["deliveries"]["nodes"][0]["attempts"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
}

/// Parses a schedule in a test's configuration.
trait ParseSchedule {
    fn parse_schedule(self) -> roster::domain::RetrySchedule;
}

impl ParseSchedule for &str {
    fn parse_schedule(self) -> roster::domain::RetrySchedule {
        roster::domain::RetrySchedule::parse(self).unwrap()
    }
}

#[tokio::test]
async fn retry_after_puts_the_next_attempt_off() {
    let (app, token) = app_with(|config| config.webhooks.schedule = "100ms".parse_schedule()).await;
    let receiver = Receiver::start().await;
    register(&app, &token, &receiver, json!(["DIVISION_CREATED"])).await;
    receiver.script([Answer::status(503).retry_after("2")]);
    ok(&app
        .gql_as(Some(&token), CREATE_DIVISION, json!({ "n": "North" }))
        .await);
    let received = receiver.wait_for(2, Duration::from_secs(10)).await;
    assert_eq!(received.len(), 2);
    let gap = received[1].at - received[0].at;
    assert!(gap >= Duration::from_millis(1_900), "{gap:?}");
}

#[tokio::test]
async fn gone_turns_the_endpoint_off_and_a_slow_one_times_out() {
    let (app, token) = app_with(|config| {
        config.webhooks.timeout = Duration::from_secs(1);
        config.webhooks.schedule = "100ms".parse_schedule();
    })
    .await;
    let slow = Receiver::start().await;
    let (slow_id, _) = register(&app, &token, &slow, json!(["DIVISION_CREATED"])).await;
    slow.otherwise(Answer::ok().after(Duration::from_secs(3)));
    let gone = Receiver::start().await;
    let (gone_id, _) = register(&app, &token, &gone, json!(["DIVISION_CREATED"])).await;
    gone.otherwise(Answer::status(410));
    ok(&app
        .gql_as(Some(&token), CREATE_DIVISION, json!({ "n": "North" }))
        .await);
    let webhook = deliveries_when(&app, &token, &gone_id, all_settled).await;
    assert_eq!(webhook["isActive"], false);
    assert!(
        webhook["disabledReason"]
            .as_str()
            .unwrap()
            .starts_with("The endpoint answered 410 Gone at "),
        "{webhook}"
    );
    // Turned off by roster itself, in the audit log.
    let log = "{ auditEvents(filter: {type: [WEBHOOK_UPDATED]}) { nodes { actorId actorName payload } } }";
    let reply = app.gql_as(Some(&token), log, json!({})).await;
    let change = &reply.body["data"]["auditEvents"]["nodes"][0];
    assert_eq!(change["actorName"], "roster");
    assert_eq!(change["actorId"], Value::Null);
    assert_eq!(change["payload"]["before"]["isActive"], true);
    assert_eq!(change["payload"]["after"]["isActive"], false);
    assert_eq!(change["payload"]["after"]["id"], gone_id.as_str());
    let node = &webhook["deliveries"]["nodes"][0];
    assert_eq!(node["status"], "FAILED");
    assert_eq!(node["attempts"][0]["statusCode"], 410);
    // A turned-off endpoint gets nothing queued.
    ok(&app
        .gql_as(Some(&token), CREATE_DIVISION, json!({ "n": "South" }))
        .await);
    let slow_done = deliveries_when(&app, &token, &slow_id, |nodes| {
        nodes.as_array().unwrap().len() == 2 && all_settled(nodes)
    })
    .await;
    for node in slow_done["deliveries"]["nodes"].as_array().unwrap() {
        assert_eq!(node["status"], "FAILED");
        for attempt in node["attempts"].as_array().unwrap() {
            assert_eq!(attempt["error"], "timeout");
            assert_eq!(attempt["statusCode"], Value::Null);
            let ms = attempt["durationMs"].as_i64().unwrap();
            assert!((900..2_900).contains(&ms), "{ms}");
        }
    }
    let webhook = deliveries_when(&app, &token, &gone_id, |_| true).await;
    assert_eq!(webhook["deliveries"]["totalCount"], 1);
    // On again: the reason is cleared.
    let update = "mutation($id: ID!) { updateWebhook(id: $id, input: {isActive: true}) { isActive disabledReason } }";
    let reply = app
        .gql_as(Some(&token), update, json!({ "id": gone_id }))
        .await;
    assert_eq!(
        reply.body["data"]["updateWebhook"],
        json!({ "isActive": true, "disabledReason": null })
    );
}

#[tokio::test]
async fn a_failed_change_queues_nothing_and_replay_resends_what_was_missed() {
    let (app, token) = app_with(|_| {}).await;
    let receiver = Receiver::start().await;
    let input = json!({ "url": receiver.url, "isActive": false });
    let reply = app
        .gql_as(Some(&token), CREATE, json!({ "input": input }))
        .await;
    let id = reply.body["data"]["createWebhook"]["webhook"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let since = "2020-01-01T00:00:00Z";
    ok(&app
        .gql_as(Some(&token), CREATE_DIVISION, json!({ "n": "North" }))
        .await);
    // A refused change: no event, so nothing to queue or replay.
    let reply = app
        .gql_as(Some(&token), CREATE_DIVISION, json!({ "n": "north" }))
        .await;
    assert_eq!(reply.codes(), ["CONFLICT"]);
    assert_eq!(
        webhook_delivery::Entity::find()
            .count(app.db())
            .await
            .unwrap(),
        0
    );
    let update =
        "mutation($id: ID!) { updateWebhook(id: $id, input: {isActive: true}) { isActive } }";
    ok(&app.gql_as(Some(&token), update, json!({ "id": id })).await);
    let replay = "mutation($id: ID!, $since: DateTime!) { replayWebhookEvents(webhookId: $id, since: $since) }";
    let reply = app
        .gql_as(Some(&token), replay, json!({ "id": id, "since": since }))
        .await;
    ok(&reply);
    // webhook.created and division.created; webhook.updated was queued
    // when it happened (the endpoint was on by then).
    assert_eq!(reply.body["data"]["replayWebhookEvents"], 2);
    let received = receiver.wait_for(4, Duration::from_secs(10)).await;
    let mut types: Vec<String> = received
        .iter()
        .map(|r| r.json()["type"].as_str().unwrap().to_owned())
        .collect();
    types.sort();
    // And the replay's own event, queued as it happened.
    assert_eq!(
        types,
        [
            "division.created",
            "webhook.created",
            "webhook.events_replayed",
            "webhook.updated"
        ]
    );
    let reply = app
        .gql_as(
            Some(&token),
            replay,
            json!({ "id": id, "since": "2999-01-01T00:00:00Z" }),
        )
        .await;
    assert_eq!(reply.body["data"]["replayWebhookEvents"], 0);
}

#[tokio::test]
async fn an_endpoint_that_answers_with_a_remote_id_sets_it_and_sync_asks_again() {
    let (app, token) = app_with(|_| {}).await;
    let receiver = Receiver::start().await;
    register(
        &app,
        &token,
        &receiver,
        json!(["USER_CREATED", "USER_SYNC_REQUESTED"]),
    )
    .await;
    receiver.script([Answer::json(json!({ "remoteId": "CX-42" }))]);
    let create = "mutation { createUser(input: {username: \"ann\", email: \"ann@example.com\"}) { id remoteId } }";
    let reply = app.gql_as(Some(&token), create, json!({})).await;
    ok(&reply);
    // The mutation does not wait for the external system.
    assert_eq!(reply.body["data"]["createUser"]["remoteId"], Value::Null);
    let ann = reply.body["data"]["createUser"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let read = "query($id: ID!) { user(id: $id) { remoteId auditEvents(first: 1) { nodes { type actorName payload } } } }";
    let remote_id = |expected: &'static str| {
        let (app, token, ann) = (&app, &token, ann.clone());
        async move {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let reply = app.gql_as(Some(token), read, json!({ "id": ann })).await;
                let user = reply.body["data"]["user"].clone();
                if user["remoteId"] == expected || Instant::now() > deadline {
                    return user;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    let user = remote_id("CX-42").await;
    assert_eq!(user["remoteId"], "CX-42");
    let webhook_id = "1";
    assert_eq!(
        user["auditEvents"]["nodes"][0],
        json!({
            "type": "USER_REMOTE_ID_SYNCED",
            "actorName": format!("webhook {webhook_id}"),
            "payload": { "remoteId": { "before": null, "after": "CX-42" }, "webhookId": webhook_id },
        })
    );
    // requestUserSync sends the user again; the answer updates the id.
    receiver.script([Answer::json(json!({ "remoteId": "CX-43" }))]);
    let sync = "mutation($id: ID!) { requestUserSync(id: $id) { id remoteId } }";
    let reply = app.gql_as(Some(&token), sync, json!({ "id": ann })).await;
    ok(&reply);
    assert_eq!(reply.body["data"]["requestUserSync"]["remoteId"], "CX-42");
    let user = remote_id("CX-43").await;
    assert_eq!(user["remoteId"], "CX-43");
    let received = receiver.received();
    assert_eq!(received[1].json()["type"], "user.sync_requested");
    assert_eq!(received[1].json()["data"]["user"]["remoteId"], "CX-42");
    // An answer that is not a valid id is ignored, and says so.
    receiver.script([Answer::json(json!({ "remoteId": "bad\u{0}id" }))]);
    ok(&app.gql_as(Some(&token), sync, json!({ "id": ann })).await);
    let webhook = deliveries_when(&app, &token, webhook_id, |nodes| {
        nodes.as_array().unwrap().len() == 3 && all_settled(nodes)
    })
    .await;
    let attempt = &webhook["deliveries"]["nodes"][0]["attempts"][0];
    assert_eq!(attempt["statusCode"], 200);
    assert_eq!(
        attempt["error"],
        "the answer's remoteId was not a valid id; ignored"
    );
    assert_eq!(remote_id("CX-43").await["remoteId"], "CX-43");
    // An answer to an old event (here user.created, sent again) never
    // undoes a newer id.
    receiver.script([Answer::json(json!({ "remoteId": "CX-99" }))]);
    let oldest = webhook["deliveries"]["nodes"][2]["id"].clone();
    let redeliver = "mutation($id: ID!) { redeliverWebhookDelivery(id: $id) { id } }";
    ok(&app
        .gql_as(Some(&token), redeliver, json!({ "id": oldest }))
        .await);
    let received = receiver.wait_for(4, Duration::from_secs(10)).await;
    assert_eq!(received[3].json()["type"], "user.created");
    deliveries_when(&app, &token, webhook_id, all_settled).await;
    assert_eq!(remote_id("CX-99").await["remoteId"], "CX-43");
}

#[tokio::test]
async fn a_hanging_endpoint_holds_up_no_other() {
    // Two slots: at most one for each endpoint.
    let (app, token) = app_with(|config| {
        config.webhooks.concurrency = 2;
        config.webhooks.timeout = Duration::from_secs(10);
    })
    .await;
    let hanging = Receiver::start().await;
    hanging.otherwise(Answer::ok().after(Duration::from_secs(8)));
    let (hanging_id, _) = register(&app, &token, &hanging, json!(["DIVISION_CREATED"])).await;
    let fast = Receiver::start().await;
    register(&app, &token, &fast, json!(["DIVISION_CREATED"])).await;
    let started = Instant::now();
    for name in ["A", "B", "C", "D"] {
        ok(&app
            .gql_as(Some(&token), CREATE_DIVISION, json!({ "n": name }))
            .await);
    }
    assert_eq!(fast.wait_for(4, Duration::from_secs(10)).await.len(), 4);
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(hanging.received().len(), 1);
    // The one in flight cannot be sent again meanwhile.
    let in_flight = webhook_delivery::Entity::find()
        .all(app.db())
        .await
        .unwrap()
        .into_iter()
        .find(|d| d.webhook_id.to_string() == hanging_id && d.locked_until > 0)
        .unwrap();
    let redeliver = "mutation($id: ID!) { redeliverWebhookDelivery(id: $id) { id } }";
    let reply = app
        .gql_as(
            Some(&token),
            redeliver,
            json!({ "id": in_flight.id.to_string() }),
        )
        .await;
    assert_eq!(reply.codes(), ["BAD_USER_INPUT"]);
    assert_eq!(
        reply.body["errors"][0]["extensions"]["fields"]["id"],
        json!(["The delivery is being sent; ask again once it has settled."])
    );
}

/// The attempts of the only delivery, as (seconds after the first attempt,
/// status code), and the delivery.
async fn attempts_so_far(app: &TestApp) -> (Vec<(i64, Option<i32>)>, webhook_delivery::Model) {
    use sea_orm::QueryOrder;
    // Attempts first: an attempt and the delivery's next time are written
    // together, so the delivery read after is as new as the attempts.
    let attempts = entity::webhook_attempt::Entity::find()
        .order_by_asc(entity::webhook_attempt::Column::Id)
        .all(app.db())
        .await
        .unwrap();
    let delivery = webhook_delivery::Entity::find()
        .one(app.db())
        .await
        .unwrap()
        .unwrap();
    let first = attempts.first().map(|a| a.attempted_at);
    let offsets = attempts
        .iter()
        .map(|a| {
            let since = a.attempted_at - first.unwrap();
            (since.num_seconds(), a.status_code)
        })
        .collect();
    (offsets, delivery)
}

/// The "receiver down for an hour", on the default schedule, with
/// the worker's clock moved on instead of waiting: six attempts fail in the
/// hour (0 s, 5 s, 35 s, 2 min 35 s, 12 min 35 s, 42 min 35 s, each wait
/// ±20 %), and the seventh, about 1 h 43 min after the first, succeeds.
#[tokio::test]
async fn a_receiver_down_for_an_hour_gets_the_delivery_on_the_default_schedule() {
    let (app, token) = app_with(|_| {}).await;
    let receiver = Receiver::start().await;
    register(&app, &token, &receiver, json!(["DIVISION_CREATED"])).await;
    receiver.otherwise(Answer::status(503));
    ok(&app
        .gql_as(Some(&token), CREATE_DIVISION, json!({ "n": "North" }))
        .await);
    let deliverer = &app.state.deliverer;
    let started = deliverer.now_ms();
    let mut seen = 0;
    let mut up = false;
    loop {
        // Wait for the attempt the clock made due.
        let deadline = Instant::now() + Duration::from_secs(10);
        let (attempts, delivery) = loop {
            let (attempts, delivery) = attempts_so_far(&app).await;
            if attempts.len() > seen || Instant::now() > deadline {
                break (attempts, delivery);
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        assert_eq!(attempts.len(), seen + 1, "{attempts:?}");
        seen = attempts.len();
        if delivery.status != "pending" {
            assert_eq!(delivery.status, "succeeded");
            break;
        }
        let now = deliverer.now_ms();
        if !up && now - started >= 3_600_000 {
            receiver.otherwise(Answer::ok());
            up = true;
        }
        // To the next attempt, or to the end of the hour if that is sooner.
        let next = match up {
            true => delivery.next_attempt_at,
            false => delivery.next_attempt_at.min(started + 3_600_000),
        };
        deliverer.advance(Duration::from_millis(
            u64::try_from(next - now).unwrap_or(0) + 1,
        ));
        if next < delivery.next_attempt_at {
            // The receiver comes back; nothing is due yet.
            let now = deliverer.now_ms();
            receiver.otherwise(Answer::ok());
            up = true;
            deliverer.advance(Duration::from_millis(
                u64::try_from(delivery.next_attempt_at - now).unwrap_or(0) + 1,
            ));
        }
    }
    let (attempts, _) = attempts_so_far(&app).await;
    eprintln!("receiver down for an hour: attempts at {attempts:?} (seconds, status)");
    let codes: Vec<Option<i32>> = attempts.iter().map(|a| a.1).collect();
    assert_eq!(
        codes,
        [
            Some(503),
            Some(503),
            Some(503),
            Some(503),
            Some(503),
            Some(503),
            Some(200)
        ]
    );
    // Each wait is the schedule's, ±20 % (and a second of rounding).
    let waits = [5, 30, 120, 600, 1_800, 3_600];
    for (pair, wait) in attempts.windows(2).zip(waits) {
        let gap = pair[1].0 - pair[0].0;
        let (low, high) = (wait * 8 / 10 - 1, wait * 12 / 10 + 1);
        assert!((low..=high).contains(&gap), "{gap} s for a {wait} s wait");
    }
    assert_eq!(receiver.received().len(), 7);
}

/// Settings for `roster serve` processes that deliver to a loopback
/// receiver.
const DELIVERING: [(&str, &str); 2] = [
    ("ROSTER_WEBHOOK_ALLOW_PRIVATE_TARGETS", "true"),
    ("ROSTER_WEBHOOK_TIMEOUT_SECS", "2"),
];

/// `root`'s access token on `server`.
async fn root_token(server: &processes::Server) -> String {
    let reply = server.login("root", crate::helpers::PASSWORD).await;
    reply.body["data"]["login"]["accessToken"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A delivering `roster serve` over a fresh database with a superuser
/// `root`, `root`'s token, an endpoint (id 1) taking `division.created`,
/// its receiver, and the database's URL (and directory, on SQLite).
async fn delivering_process() -> (
    processes::Server,
    String,
    Receiver,
    String,
    Option<tempfile::TempDir>,
) {
    let (database_url, dir) = crate::helpers::fresh_database().await;
    let url = database_url.clone();
    let server = tokio::task::spawn_blocking(move || {
        processes::create_superuser(&url, "root");
        processes::start_with(&url, &DELIVERING)
    })
    .await
    .unwrap();
    let token = root_token(&server).await;
    let receiver = Receiver::start().await;
    let input = json!({ "url": receiver.url, "eventTypes": ["DIVISION_CREATED"] });
    ok(&server
        .gql(Some(&token), CREATE, json!({ "input": input }))
        .await);
    (server, token, receiver, database_url, dir)
}

#[tokio::test]
async fn a_delivery_cut_by_sigkill_is_sent_again_after_a_restart() {
    let (first, token, receiver, database_url, _dir) = delivering_process().await;
    // The first request hangs; the process dies while it waits.
    receiver.script([Answer::ok().after(Duration::from_secs(30))]);
    ok(&first
        .gql(Some(&token), CREATE_DIVISION, json!({ "n": "North" }))
        .await);
    assert_eq!(receiver.wait_for(1, Duration::from_secs(10)).await.len(), 1);
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &first.child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    drop(first);
    let url = database_url.clone();
    let second = tokio::task::spawn_blocking(move || processes::start_with(&url, &DELIVERING))
        .await
        .unwrap();
    // The dead process's claim lapses (2 × timeout + 30 s) and the
    // delivery is sent again, with the same webhook-id: at least once.
    let received = receiver.wait_for(2, Duration::from_secs(60)).await;
    assert_eq!(received.len(), 2);
    assert_eq!(received[0].id, received[1].id);
    let token = root_token(&second).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let reply = second
            .gql(Some(&token), DELIVERIES, json!({ "id": "1" }))
            .await;
        let node = reply.body["data"]["webhook"]["deliveries"]["nodes"][0].clone();
        if node["status"] == "SUCCEEDED" || Instant::now() > deadline {
            assert_eq!(node["status"], "SUCCEEDED", "{node}");
            // The dead process never recorded its attempt.
            assert_eq!(node["attempts"].as_array().unwrap().len(), 1);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
#[ignore = "two processes and a thousand events; .ci/run runs it"]
async fn two_processes_deliver_a_thousand_events_each_exactly_once() {
    let (database_url, _dir) = crate::helpers::fresh_database().await;
    let url = database_url.clone();
    let (a, b) = tokio::task::spawn_blocking(move || {
        processes::create_superuser(&url, "root");
        (
            processes::start_with(&url, &DELIVERING),
            processes::start_with(&url, &DELIVERING),
        )
    })
    .await
    .unwrap();
    let (token_a, token_b) = (root_token(&a).await, root_token(&b).await);
    let receiver = Receiver::start().await;
    let input = json!({ "url": receiver.url, "eventTypes": ["DIVISION_CREATED"] });
    ok(&a
        .gql(Some(&token_a), CREATE, json!({ "input": input }))
        .await);
    // 20 documents of 50 divisions each, half through each process, two at
    // a time.
    for round in 0..10 {
        let document = |process: usize| {
            let fields: String = (0..50)
                .map(|i| {
                    format!("d{i}: createDivision(input: {{name: \"r{round}p{process}d{i}\", divisionType: MAIN}}) {{ id }} ")
                })
                .collect();
            format!("mutation {{ {fields} }}")
        };
        let (to_a, to_b) = (document(0), document(1));
        let (first, second) = tokio::join!(
            a.gql(Some(&token_a), &to_a, json!({})),
            b.gql(Some(&token_b), &to_b, json!({})),
        );
        ok(&first);
        ok(&second);
    }
    let received = receiver.wait_for(1_000, Duration::from_secs(60)).await;
    assert_eq!(received.len(), 1_000);
    // Anything sent twice would come within a poll or two.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let received = receiver.received();
    let ids: std::collections::HashSet<&str> = received.iter().map(|r| r.id.as_str()).collect();
    assert_eq!((received.len(), ids.len()), (1_000, 1_000));
    let reply = b
        .gql(
            Some(&token_b),
            "{ webhook(id: \"1\") { deliveries(filter: {status: SUCCEEDED}) { totalCount } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        reply.body["data"]["webhook"]["deliveries"]["totalCount"],
        1_000
    );
}

/// The cheapest way to make delivery expensive, against a real process: an
/// endpoint that answers without end. roster reads its bound and moves on,
/// in about the time of a normal answer and in little memory.
#[tokio::test]
async fn an_endless_answer_is_read_to_its_bound_only() {
    let (server, token, receiver, _, _dir) = delivering_process().await;
    receiver.otherwise(Answer::endless());
    for name in ["A", "B", "C", "D", "E", "F", "G", "H"] {
        ok(&server
            .gql(Some(&token), CREATE_DIVISION, json!({ "n": name }))
            .await);
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    let nodes = loop {
        let reply = server
            .gql(Some(&token), DELIVERIES, json!({ "id": "1" }))
            .await;
        let nodes = reply.body["data"]["webhook"]["deliveries"]["nodes"].clone();
        if nodes.as_array().unwrap().len() == 8 && all_settled(&nodes) || Instant::now() > deadline
        {
            break nodes;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    for node in nodes.as_array().unwrap() {
        assert_eq!(node["status"], "SUCCEEDED", "{node}");
        let attempt = &node["attempts"][0];
        assert_eq!(attempt["statusCode"], 200);
        // Well within the 2 s timeout: the bound ends the read, not the clock.
        assert!(attempt["durationMs"].as_i64().unwrap() < 1_500, "{attempt}");
    }
    let peak = crate::attacks::peak_kib(&server);
    assert!(peak < 96 * 1024, "peak RSS {peak} KiB");
}

#[tokio::test]
async fn a_freed_slot_goes_to_the_endpoint_with_least_in_flight() {
    // Four slots, at most two for each endpoint; two endpoints hang.
    let (app, token) = app_with(|config| {
        config.webhooks.concurrency = 4;
        config.webhooks.timeout = Duration::from_secs(10);
    })
    .await;
    let mut hanging = Vec::new();
    for _ in 0..2 {
        let receiver = Receiver::start().await;
        receiver.otherwise(Answer::ok().after(Duration::from_secs(8)));
        register(&app, &token, &receiver, json!(["DIVISION_CREATED"])).await;
        hanging.push(receiver);
    }
    let fast = Receiver::start().await;
    register(&app, &token, &fast, json!(["DIVISION_CREATED"])).await;
    let started = Instant::now();
    for name in ["A", "B", "C", "D", "E", "F"] {
        ok(&app
            .gql_as(Some(&token), CREATE_DIVISION, json!({ "n": name }))
            .await);
    }
    // Three slots hang; the fourth goes to the fast endpoint each time it
    // is free, before the older deliveries of the hanging ones.
    assert_eq!(fast.wait_for(6, Duration::from_secs(10)).await.len(), 6);
    // Before any hanging delivery ends.
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
    // A quarter of the slots stays with endpoints that have none in flight.
    let hung: usize = hanging.iter().map(|r| r.received().len()).sum();
    assert!((2..=3).contains(&hung), "{hung}");
}

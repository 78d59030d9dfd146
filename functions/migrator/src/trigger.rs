//! Event envelopes → what was asked. Parsing ends here: nothing downstream sees raw events.
//!
//! Recognised: S3 event notifications (`ObjectCreated:*`; `s3:TestEvent` is acknowledged),
//! EventBridge `Object Created` events from S3, SQS messages carrying either (or an SNS
//! envelope of them), SNS-wrapped S3 notifications, and the manual payload — the last only as
//! the invocation itself: inside an SQS message or an SNS notification only upload events
//! count, so that whoever may publish to a queue or topic cannot approve anything. Anything
//! else is an [`Item::Invalid`] that says what was received.

use migrator_engine::outcome::Action;
use serde_json::Value;

use crate::json;
pub use crate::payload::Manual;

/// Longest string we accept from a payload (names, keys, versions).
const MAX_FIELD: usize = 1024;
/// How deep envelopes may nest (SQS → SNS → S3 is 3).
const MAX_DEPTH: usize = 4;

/// An S3 object, as named by an event or a payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRef {
    pub bucket: String,
    pub key: String,
    pub version_id: Option<String>,
    pub etag: Option<String>,
}

/// One thing to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// An artifact was uploaded, and who uploaded it as the event names them (S3's
    /// `userIdentity.principalId`, EventBridge's `requester`).
    Upload(ObjectRef, Option<String>),
    /// A person's request (`aws lambda invoke`, `migrator invoke`, ECS).
    Manual(Manual),
    /// A fleet state machine's step (`{"fleet": {...}}`), honoured only through the fleet's
    /// door (`handler::fleet`).
    Fleet(Value),
    /// S3's notification test message: acknowledged, nothing to do.
    TestEvent,
    /// Not something we act on: the action it asked for (deploy unless a payload said
    /// otherwise) and what it was.
    Invalid { action: Action, reason: String },
}

fn invalid(reason: impl Into<String>) -> Item {
    Item::Invalid {
        action: Action::Deploy,
        reason: reason.into(),
    }
}

/// How the event arrived: SQS batches answer with partial batch failures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Envelope {
    Direct(Vec<Item>),
    /// `(messageId, items)` per SQS record.
    Sqs(Vec<(String, Vec<Item>)>),
}

/// The invocation's raw bytes, read strictly: UTF-8, one JSON value and nothing after it,
/// no byte-order mark, no comment, no duplicate key. Anything else is one [`Item::Invalid`]
/// (answered with a `rejected` outcome like any other refusal).
pub fn parse_text(bytes: &[u8]) -> Envelope {
    let refused = |reason: String| Envelope::Direct(vec![invalid(reason)]);
    if bytes.starts_with(b"\xEF\xBB\xBF") {
        return refused(
            "an event that starts with a byte-order mark (U+FEFF): send the JSON without it".into(),
        );
    }
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => {
            return refused(format!(
                "an event that is not UTF-8 (invalid byte at offset {})",
                e.valid_up_to()
            ));
        }
    };
    match json::parse(text) {
        Ok(event) => parse(&event),
        Err(e) => Envelope::Direct(vec![invalid(format!(
            "an event that is not strict JSON: {}",
            clip(&e)
        ))]),
    }
}

pub fn parse(event: &Value) -> Envelope {
    let records = event.get("Records").and_then(Value::as_array);
    let is_sqs = records.is_some_and(|r| {
        r.first()
            .and_then(|r| r.get("eventSource"))
            .and_then(Value::as_str)
            == Some("aws:sqs")
    });
    if let (true, Some(records)) = (is_sqs, records) {
        let batch = records
            .iter()
            .enumerate()
            .map(|(i, record)| {
                let id = record
                    .get("messageId")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("record-{i}"));
                let items = match record.get("body").and_then(Value::as_str) {
                    Some(body) => match json::parse(body) {
                        Ok(inner) => items(&inner, 1),
                        Err(e) => vec![invalid(format!(
                            "SQS message {}: the body is not JSON ({})",
                            clip(&id),
                            clip(&e)
                        ))],
                    },
                    None => vec![invalid(format!("SQS message {} has no body", clip(&id)))],
                };
                (id, items)
            })
            .collect();
        return Envelope::Sqs(batch);
    }
    Envelope::Direct(items(event, 0))
}

fn items(event: &Value, depth: usize) -> Vec<Item> {
    if depth > MAX_DEPTH {
        return vec![invalid("events nested too deeply")];
    }
    let Some(object) = event.as_object() else {
        return vec![invalid(format!(
            "expected a JSON object, received {}",
            describe(event)
        ))];
    };
    if object.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
        return vec![Item::TestEvent];
    }
    // SNS notification (SNS → SQS without raw delivery, or as the SQS body).
    if object.get("Type").and_then(Value::as_str) == Some("Notification") {
        return match object
            .get("Message")
            .and_then(Value::as_str)
            .map(json::parse)
        {
            Some(Ok(inner)) => items(&inner, depth + 1),
            _ => vec![invalid("an SNS notification whose Message is not JSON")],
        };
    }
    if let Some(records) = object.get("Records").and_then(Value::as_array) {
        if records.is_empty() {
            return vec![invalid("an event with no Records")];
        }
        return records
            .iter()
            .flat_map(|record| record_items(record, depth))
            .collect();
    }
    if object.get("source").and_then(Value::as_str) == Some("aws.s3") {
        return vec![eventbridge(object)];
    }
    if let Some(step) = object.get("fleet") {
        if depth > 0 || object.len() > 1 {
            return vec![invalid(
                "a fleet payload inside an SQS message or SNS notification, or beside other keys: only the fleet's state machine sends one, as the invocation itself",
            )];
        }
        return vec![Item::Fleet(step.clone())];
    }
    if object.contains_key("action") {
        if depth > 0 {
            // A queue or topic is not a person: only uploads count there.
            let action = object
                .get("action")
                .and_then(Value::as_str)
                .and_then(Action::parse)
                .unwrap_or(Action::Deploy);
            return vec![Item::Invalid {
                action,
                reason: "a manual payload inside an SQS message or SNS notification: manual requests are accepted only as a direct invocation of the function (lambda:InvokeFunction) or as the ECS task's own event; queues and topics carry upload events only".into(),
            }];
        }
        return vec![match crate::payload::read(event) {
            Ok(manual) => Item::Manual(manual),
            Err(refused) => Item::Invalid {
                action: refused.action,
                reason: refused.reason,
            },
        }];
    }
    vec![invalid(format!(
        "an event we do not recognise: {}",
        describe(event)
    ))]
}

fn record_items(record: &Value, depth: usize) -> Vec<Item> {
    // Lambda subscribed to SNS: {"EventSource":"aws:sns","Sns":{"Message":"…"}}.
    if record.get("EventSource").and_then(Value::as_str) == Some("aws:sns") {
        return match record
            .pointer("/Sns/Message")
            .and_then(Value::as_str)
            .map(json::parse)
        {
            Some(Ok(inner)) => items(&inner, depth + 1),
            _ => vec![invalid("an SNS record whose Message is not JSON")],
        };
    }
    if record.get("eventSource").and_then(Value::as_str) != Some("aws:s3") {
        return vec![invalid(format!(
            "a record we do not recognise: {}",
            describe(record)
        ))];
    }
    let event_name = record
        .get("eventName")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !event_name.starts_with("ObjectCreated:") {
        return vec![invalid(format!(
            "an S3 `{}` event; only ObjectCreated events deploy",
            clip(event_name)
        ))];
    }
    let bucket = record.pointer("/s3/bucket/name").and_then(Value::as_str);
    let key = record.pointer("/s3/object/key").and_then(Value::as_str);
    let (Some(bucket), Some(key)) = (bucket, key) else {
        return vec![invalid(
            "an S3 notification without bucket name or object key",
        )];
    };
    // Notification keys are form-URL-encoded: `+` is a space, then %XX.
    let key = match decode_key(key) {
        Ok(key) => key,
        Err(reason) => return vec![invalid(reason)],
    };
    vec![upload_item(
        bucket,
        key,
        record
            .pointer("/s3/object/versionId")
            .and_then(Value::as_str),
        record.pointer("/s3/object/eTag").and_then(Value::as_str),
        record
            .pointer("/userIdentity/principalId")
            .and_then(Value::as_str),
    )]
}

fn eventbridge(object: &serde_json::Map<String, Value>) -> Item {
    let detail_type = object
        .get("detail-type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if detail_type != "Object Created" {
        return invalid(format!(
            "an EventBridge `{}` event from S3; only Object Created deploys",
            clip(detail_type)
        ));
    }
    let detail = object.get("detail");
    let get = |pointer: &str| {
        detail
            .and_then(|d| d.pointer(pointer))
            .and_then(Value::as_str)
    };
    match (get("/bucket/name"), get("/object/key")) {
        // EventBridge keys are not URL-encoded.
        (Some(bucket), Some(key)) => upload_item(
            bucket,
            key.to_string(),
            get("/object/version-id"),
            get("/object/etag"),
            get("/requester"),
        ),
        _ => invalid("an EventBridge S3 event without bucket name or object key"),
    }
}

fn upload_item(
    bucket: &str,
    key: String,
    version_id: Option<&str>,
    etag: Option<&str>,
    uploader: Option<&str>,
) -> Item {
    match object_ref(bucket, key, version_id, etag) {
        Ok(object) => Item::Upload(
            object,
            uploader
                .filter(|u| !u.is_empty())
                .map(|u| clip(u).to_string()),
        ),
        Err(reason) => invalid(reason),
    }
}

/// An object named by an event or a payload, its fields bounded (S3 writes "null" for an
/// unversioned object's version).
pub fn object_ref(
    bucket: &str,
    key: String,
    version_id: Option<&str>,
    etag: Option<&str>,
) -> Result<ObjectRef, String> {
    for (what, value) in [("bucket", bucket), ("key", key.as_str())] {
        if value.is_empty() || value.len() > MAX_FIELD {
            return Err(format!(
                "the S3 {what} is empty or longer than {MAX_FIELD} bytes"
            ));
        }
    }
    Ok(ObjectRef {
        bucket: bucket.to_string(),
        key,
        version_id: version_id
            .filter(|v| !v.is_empty() && *v != "null")
            .map(|v| clip(v).to_string()),
        etag: etag
            .filter(|e| !e.is_empty())
            .map(|e| clip(e).trim_matches('"').to_string()),
    })
}

/// `+` → space, then `%XX`; the result must be UTF-8.
pub fn decode_key(key: &str) -> Result<String, String> {
    let spaced = key.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .map(|k| k.into_owned())
        .map_err(|_| format!("the S3 key `{}` does not decode to UTF-8", clip(key)))
}

/// A short description of what was received, never the whole (possibly huge) value.
fn describe(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let keys: Vec<&str> = map.keys().take(8).map(String::as_str).collect();
            format!("an object with keys {}", clip(&keys.join(", ")))
        }
        Value::Array(a) => format!("an array of {} items", a.len()),
        Value::String(_) => "a string".into(),
        Value::Number(_) => "a number".into(),
        Value::Bool(_) => "a boolean".into(),
        Value::Null => "null".into(),
    }
}

/// At most 200 bytes of `text`, on a character boundary (`text::clip_bytes`).
pub fn clip(text: &str) -> &str {
    migrator_engine::text::clip_bytes(text, 200)
}

#[cfg(test)]
mod tests {
    use migrator_engine::engine::ResolveTarget;
    use migrator_engine::outcome::ResolveKind;
    use serde_json::json;

    use super::*;

    fn direct(event: Value) -> Vec<Item> {
        match parse(&event) {
            Envelope::Direct(items) => items,
            other => panic!("not direct: {other:?}"),
        }
    }

    fn s3_record(key: &str) -> Value {
        json!({"eventVersion":"2.1","eventSource":"aws:s3","awsRegion":"eu-west-1","eventName":"ObjectCreated:Put",
               "userIdentity":{"principalId":"X"},"s3":{"s3SchemaVersion":"1.0","bucket":{"name":"artifacts","arn":"arn:aws:s3:::artifacts"},
               "object":{"key":key,"size":1024,"eTag":"d41d8cd98f00b204e9800998ecf8427e","versionId":"v1","sequencer":"0A1B"}}})
    }

    #[test]
    fn s3_notifications_decode_keys() {
        let items = direct(json!({"Records":[s3_record("deploy/PROD/my+app/prisma%2B1.zip")]}));
        assert_eq!(
            items,
            [Item::Upload(
                ObjectRef {
                    bucket: "artifacts".into(),
                    key: "deploy/PROD/my app/prisma+1.zip".into(),
                    version_id: Some("v1".into()),
                    etag: Some("d41d8cd98f00b204e9800998ecf8427e".into()),
                },
                Some("X".into())
            )]
        );
    }

    #[test]
    fn moto_style_notifications_without_optional_fields() {
        let record = json!({"eventSource":"aws:s3","eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"deploy%2FCODE%2Fprisma.zip"}}});
        let items = direct(json!({"Records":[record]}));
        assert!(
            matches!(&items[0], Item::Upload(o, None) if o.key == "deploy/CODE/prisma.zip" && o.version_id.is_none())
        );
    }

    #[test]
    fn test_events_and_deletes() {
        assert_eq!(
            direct(json!({"Service":"Amazon S3","Event":"s3:TestEvent","Bucket":"b"})),
            [Item::TestEvent]
        );
        let mut record = s3_record("k");
        record["eventName"] = json!("ObjectRemoved:Delete");
        assert!(
            matches!(&direct(json!({"Records":[record]}))[0], Item::Invalid { reason: r, .. } if r.contains("ObjectRemoved"))
        );
    }

    #[test]
    fn eventbridge_events() {
        let event = json!({"version":"0","id":"1","detail-type":"Object Created","source":"aws.s3","account":"1","time":"t","region":"eu-west-1",
                           "resources":[],"detail":{"version":"0","bucket":{"name":"b"},"object":{"key":"deploy/PROD/a b/prisma.zip","size":1,"etag":"e","version-id":"v9"}}});
        assert_eq!(
            direct(event),
            [Item::Upload(
                ObjectRef {
                    bucket: "b".into(),
                    key: "deploy/PROD/a b/prisma.zip".into(),
                    version_id: Some("v9".into()),
                    etag: Some("e".into())
                },
                None
            )]
        );
    }

    #[test]
    fn sqs_batches_keep_message_ids_and_unwrap_sns() {
        let sns = json!({"Type":"Notification","MessageId":"m","TopicArn":"arn","Message": json!({"Records":[s3_record("k2")]}).to_string()});
        let event = json!({"Records":[
            {"messageId":"a","eventSource":"aws:sqs","body": json!({"Records":[s3_record("k1")]}).to_string()},
            {"messageId":"b","eventSource":"aws:sqs","body": sns.to_string()},
            {"messageId":"c","eventSource":"aws:sqs","body": "not json"}
        ]});
        let Envelope::Sqs(batch) = parse(&event) else {
            panic!("not sqs")
        };
        assert_eq!(batch.len(), 3);
        assert!(matches!(&batch[0].1[0], Item::Upload(o, _) if o.key == "k1"));
        assert!(matches!(&batch[1].1[0], Item::Upload(o, _) if o.key == "k2"));
        assert_eq!(batch[2].0, "c");
        assert!(
            matches!(&batch[2].1[0], Item::Invalid { reason: r, .. } if r.contains("not JSON"))
        );
    }

    #[test]
    fn sns_records_for_a_subscribed_lambda() {
        let event = json!({"Records":[{"EventSource":"aws:sns","Sns":{"Message": json!({"Records":[s3_record("k")]}).to_string()}}]});
        assert!(matches!(&direct(event)[0], Item::Upload(_, _)));
    }

    #[test]
    fn manual_payloads_inside_queues_and_topics_are_refused() {
        let deploy = json!({"action":"deploy","confirm":true,"artifact":"s3://b/deploy/x.zip"});
        let resolve = json!({"action":"resolve","confirm":true,"resolve":{"applied":"m"}});
        let sqs = |body: &Value| json!({"Records":[{"messageId":"a","eventSource":"aws:sqs","body": body.to_string()}]});
        let sns_in_sqs = |message: &Value| {
            sqs(&json!({"Type":"Notification","TopicArn":"arn","Message": message.to_string()}))
        };
        for (event, action) in [
            (sqs(&deploy), Action::Deploy),
            (sns_in_sqs(&resolve), Action::Resolve),
        ] {
            let Envelope::Sqs(batch) = parse(&event) else {
                panic!("not sqs")
            };
            assert!(
                matches!(&batch[0].1[0], Item::Invalid { action: a, reason } if *a == action && reason.contains("only as a direct invocation")),
                "{batch:?}"
            );
        }
        let sns =
            json!({"Records":[{"EventSource":"aws:sns","Sns":{"Message": deploy.to_string()}}]});
        assert!(
            matches!(&direct(sns)[0], Item::Invalid { reason, .. } if reason.contains("only as a direct invocation"))
        );
        // The same payload as the invocation itself is a person's request.
        assert!(matches!(&direct(deploy)[0], Item::Manual(_)));
    }

    #[test]
    fn duplicate_keys_are_refused_in_the_event_and_in_bodies() {
        let Envelope::Direct(items) =
            parse_text(br#"{"action":"plan","confirm":false,"action":"deploy","confirm":true}"#)
        else {
            panic!("not direct")
        };
        assert!(
            matches!(&items[0], Item::Invalid { reason, .. } if reason.contains("appears twice")),
            "{items:?}"
        );
        let body = r#"{"Records":[{"eventSource":"aws:s3","eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"k","key":"other"}}}]}"#;
        let event = json!({"Records":[{"messageId":"a","eventSource":"aws:sqs","body": body}]});
        let Envelope::Sqs(batch) = parse_text(event.to_string().as_bytes()) else {
            panic!("not sqs")
        };
        assert!(
            matches!(&batch[0].1[0], Item::Invalid { reason, .. } if reason.contains("appears twice")),
            "{batch:?}"
        );
    }

    #[test]
    fn events_that_are_not_exactly_one_json_value_are_refused_with_the_reason() {
        for (raw, fragment) in [
            (
                &b"\xEF\xBB\xBF{\"action\":\"deploy\"}"[..],
                "byte-order mark",
            ),
            (
                b"{\"action\":\"deploy\"} {\"action\":\"plan\"}",
                "not strict JSON",
            ),
            (b"{\"action\":\"deploy\"} // confirm", "not strict JSON"),
            (b"/* c */ {\"action\":\"deploy\"}", "not strict JSON"),
            (b"{\"action\":\"deploy\xff\"}", "not UTF-8"),
            (b"", "not strict JSON"),
        ] {
            let Envelope::Direct(items) = parse_text(raw) else {
                panic!("not direct")
            };
            assert!(
                matches!(&items[..], [Item::Invalid { reason, .. }] if reason.contains(fragment)),
                "{}: {items:?}",
                String::from_utf8_lossy(raw)
            );
        }
    }

    #[test]
    fn manual_payloads() {
        assert_eq!(
            direct(json!({"action":"deploy"})),
            [Item::Manual(Manual {
                action: Action::Deploy,
                confirm: false,
                artifact: None,
                resolve: None,
                plan_hash: None,
                accept: Vec::new(),
                by: None,
            })]
        );
        let items = direct(
            json!({"action":"resolve","confirm":true,"artifact":"s3://b/deploy/x.zip","versionId":"v","resolve":{"rolledBack":"20240101_x"}}),
        );
        let Item::Manual(m) = &items[0] else {
            panic!("{items:?}")
        };
        assert!(m.confirm);
        assert_eq!(
            m.artifact.as_ref().unwrap().version_id.as_deref(),
            Some("v")
        );
        assert_eq!(
            m.resolve,
            Some(ResolveTarget {
                name: "20240101_x".into(),
                kind: ResolveKind::RolledBack
            })
        );
    }

    #[test]
    fn bad_manual_payloads_say_why() {
        for (payload, fragment) in [
            (json!({"action":"drop"}), "unknown action"),
            (json!({"action":"deploy","confirm":"yes"}), "does not fit"),
            (json!({"action":"deploy","force":true}), "unknown field"),
            (json!({"action":"resolve"}), "exactly one"),
            (
                json!({"action":"resolve","resolve":{"applied":"a","rolledBack":"b"}}),
                "exactly one",
            ),
            (
                json!({"action":"deploy","resolve":{"applied":"a"}}),
                "only for the resolve",
            ),
            (
                json!({"action":"deploy","artifact":"https://b/k"}),
                "s3://bucket/key",
            ),
            (
                json!({"action":"deploy","versionId":"v"}),
                "needs `artifact`",
            ),
            (
                json!({"action":"deploy","artifact": format!("s3://b/{}", "k".repeat(5000))}),
                "longer than",
            ),
            (json!(42), "expected a JSON object"),
            (json!({"hello":"world"}), "do not recognise"),
        ] {
            let items = direct(payload.clone());
            assert!(
                matches!(&items[0], Item::Invalid { reason: r, .. } if r.contains(fragment)),
                "{payload}: {items:?}"
            );
        }
    }

    #[test]
    fn the_uploader_is_read_from_every_envelope() {
        let mut record = s3_record("k");
        record["userIdentity"]["principalId"] = json!("AWS:AIDAEXAMPLE:alice");
        let s3 = json!({"Records":[record]});
        let uploader = |item: &Item| match item {
            Item::Upload(_, uploader) => uploader.clone(),
            other => panic!("not an upload: {other:?}"),
        };
        let alice = Some("AWS:AIDAEXAMPLE:alice".to_string());
        // S3 → Lambda.
        assert_eq!(uploader(&direct(s3.clone())[0]), alice);
        // S3 → SQS → Lambda, and S3 → SNS → SQS → Lambda.
        let sns = json!({"Type":"Notification","TopicArn":"arn","Message": s3.to_string()});
        let sqs = json!({"Records":[
            {"messageId":"a","eventSource":"aws:sqs","body": s3.to_string()},
            {"messageId":"b","eventSource":"aws:sqs","body": sns.to_string()}
        ]});
        let Envelope::Sqs(batch) = parse(&sqs) else {
            panic!("not sqs")
        };
        assert_eq!(uploader(&batch[0].1[0]), alice);
        assert_eq!(uploader(&batch[1].1[0]), alice);
        // S3 → SNS → Lambda.
        let sns_record =
            json!({"Records":[{"EventSource":"aws:sns","Sns":{"Message": s3.to_string()}}]});
        assert_eq!(uploader(&direct(sns_record)[0]), alice);
        // EventBridge: `detail.requester` (the account or service that made the request).
        let eventbridge = json!({"detail-type":"Object Created","source":"aws.s3",
            "detail":{"bucket":{"name":"b"},"object":{"key":"k"},"requester":"123456789012"}});
        assert_eq!(
            uploader(&direct(eventbridge)[0]).as_deref(),
            Some("123456789012")
        );
        // No identity (moto), an empty one, a wrong type: nobody named.
        let mut empty = s3_record("k");
        empty["userIdentity"]["principalId"] = json!("");
        let mut number = s3_record("k");
        number["userIdentity"]["principalId"] = json!(7);
        for record in [empty, number] {
            assert_eq!(uploader(&direct(json!({"Records":[record]}))[0]), None);
        }
        // A huge one is clipped.
        let mut huge = s3_record("k");
        huge["userIdentity"]["principalId"] = json!("p".repeat(5000));
        let clipped = uploader(&direct(json!({"Records":[huge]}))[0]).unwrap();
        assert!(clipped.len() <= 200);
    }

    #[test]
    fn huge_inputs_are_clipped_in_messages() {
        let items = direct(json!({"action": "x".repeat(100_000)}));
        let Item::Invalid { reason, .. } = &items[0] else {
            panic!()
        };
        assert!(reason.len() < 400);
    }
}

/// Property tests: the parser never panics and always answers with items, whatever arrives.
#[cfg(test)]
mod properties {
    use serde_json::{Map, Value, json};

    use super::*;

    /// The workspace's seeded generator (`fastrand`), with the two draws the cases use.
    struct Rng(fastrand::Rng);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0.u64(..)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.0.u64(..n.max(1))
        }
        fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
            items[self.below(items.len() as u64) as usize]
        }
    }

    const KEYS: [&str; 24] = [
        "Records",
        "eventSource",
        "eventName",
        "s3",
        "bucket",
        "name",
        "object",
        "key",
        "versionId",
        "eTag",
        "body",
        "messageId",
        "Type",
        "Message",
        "Sns",
        "EventSource",
        "source",
        "detail-type",
        "detail",
        "action",
        "confirm",
        "artifact",
        "resolve",
        "Event",
    ];
    const STRINGS: [&str; 14] = [
        "aws:s3",
        "aws:sqs",
        "aws:sns",
        "ObjectCreated:Put",
        "Notification",
        "aws.s3",
        "Object Created",
        "deploy",
        "resolve",
        "s3://b/k",
        "%2E%2E%2F",
        "+",
        "s3:TestEvent",
        "{\"Records\":[]}",
    ];

    fn value(rng: &mut Rng, depth: u32) -> Value {
        match rng.below(if depth > 4 { 5 } else { 8 }) {
            0 => Value::Null,
            1 => json!(rng.below(2) == 1),
            2 => json!(rng.next() as i64),
            3 | 4 => json!(rng.pick(&STRINGS)),
            5 => {
                // A JSON string holding JSON (SQS bodies, SNS messages).
                json!(value(rng, depth + 1).to_string())
            }
            6 => Value::Array((0..rng.below(4)).map(|_| value(rng, depth + 1)).collect()),
            _ => {
                let mut map = Map::new();
                for _ in 0..rng.below(6) {
                    map.insert(rng.pick(&KEYS).to_string(), value(rng, depth + 1));
                }
                Value::Object(map)
            }
        }
    }

    #[test]
    fn any_json_parses_to_items_without_panicking() {
        let cases: u64 = std::env::var("PROPERTY_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(5_000);
        let seed: u64 = std::env::var("PROPERTY_SEED")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0x5EED_1234);
        let mut rng = Rng(fastrand::Rng::with_seed(seed));
        for case in 0..cases {
            let event = value(&mut rng, 0);
            let envelope = std::panic::catch_unwind(|| parse(&event))
                .unwrap_or_else(|_| panic!("seed {seed} case {case}: parse panicked on {event}"));
            let items: Vec<Item> = match envelope {
                Envelope::Direct(items) => items,
                Envelope::Sqs(batch) => batch.into_iter().flat_map(|(_, items)| items).collect(),
            };
            // Every event, and every SQS record, answers with at least one item.
            assert!(
                !items.is_empty(),
                "seed {seed} case {case}: no item for {event}"
            );
            for item in items {
                if let Item::Invalid { reason, .. } = item {
                    assert!(
                        !reason.is_empty() && reason.len() < 2_000,
                        "seed {seed} case {case}: {reason}"
                    );
                }
            }
        }
        println!("reliability: trigger-property-executions={cases} failures=0");
    }
}

//! Issue 24: deciding in the Slack channel, end to end and offline. The function publishes
//! to an SNS topic in moto, which posts the `https` rendering (the AWS Chatbot custom
//! notification) to a local endpoint standing where Chatbot would be. From that message the
//! test builds the exact command a button runs: the custom action's `CommandText`
//! (infra/lib/chat-actions.json, the definition the construct deploys) with its variables
//! substituted from `metadata.additionalContext`, and runs it.
//!
//! The door: cargo-lambda's emulator (1.9) routes `/functions/_/invocations` only (a
//! qualified name is a 404, `?Qualifier=` is ignored) and always hands the function the
//! invoked ARN `function-arn`. So a command *without* the qualifier runs through the emulator
//! (the real Lambda runtime path, which must refuse it), and a command *with*
//! `--qualifier apply` runs as `migrator handle-event` with the exact ARN Lambda would give
//! (`MIGRATOR_INVOKED_FUNCTION_ARN`, how the construct's state machine passes the door to the
//! ECS task) — the same handler, the same door check, the same ARN parsing.

use migrator_e2e::Migrations;
use migrator_e2e::local_aws::{ACCOUNT, ChatbotEndpoint, Emulator, REGION, s3_event};
use migrator_e2e::stage::{
    ButtonCommand, Stage, button, buttons, error_message, listed, stderr, stdout,
};
use serde_json::Value;

const USERS: (&str, &str) = (
    "20240101000000_users",
    "-- CreateTable\nCREATE TABLE \"User\" (\n    \"id\" SERIAL NOT NULL,\n    \"email\" TEXT NOT NULL,\n    CONSTRAINT \"User_pkey\" PRIMARY KEY (\"id\")\n);\n",
);
const POSTS: (&str, &str) = (
    "20240102000000_posts",
    "-- CreateTable\nCREATE TABLE \"Post\" (\n    \"id\" SERIAL NOT NULL,\n    CONSTRAINT \"Post_pkey\" PRIMARY KEY (\"id\")\n);\n",
);
const BAD: (&str, &str) = (
    "20240103000000_bad",
    "CREATE TABLE \"Ok\" (id int);\nINSERT INTO \"Missing\" VALUES (1);\n",
);
const FUNCTION: &str = "migrator-e2e-PROD";

fn with(list: &[(&str, &str)]) -> Migrations {
    let m = Migrations::new().with_lock("postgresql");
    for (name, sql) in list {
        m.add(name, sql);
    }
    m
}

fn names(list: &[(&str, &str)]) -> Vec<String> {
    list.iter().map(|(n, _)| n.to_string()).collect()
}

/// Runs a button's command (`lambda invoke --function-name F [--qualifier Q] --payload P`):
/// through the emulator when unqualified, else through `handle-event` with the qualified ARN
/// (see the module's note). Returns the outcome.
fn press(st: &Stage, emulator: &Emulator, env: &[(String, String)], command: &str) -> Value {
    let ButtonCommand {
        function,
        qualifier,
        payload,
    } = ButtonCommand::parse(command).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(function, FUNCTION, "{command}");
    match qualifier {
        None => st.invoke(emulator, &payload).body,
        Some(q) => {
            let mut env = env.to_vec();
            env.push((
                "MIGRATOR_INVOKED_FUNCTION_ARN".into(),
                format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:{FUNCTION}:{q}"),
            ));
            let out = st.run(
                &["handle-event", "--event-json", &payload.to_string()],
                &env,
            );
            st.see("handle-event", format!("{}{}", stdout(&out), stderr(&out)));
            serde_json::from_slice(&out.stdout)
                .unwrap_or_else(|_| panic!("{}{}", stdout(&out), stderr(&out)))
        }
    }
}

/// The same command without its `--qualifier …`: what a plain invoker could send.
fn unqualified(command: &str) -> String {
    let words: Vec<&str> = command.split_whitespace().collect();
    let at = words.iter().position(|w| *w == "--qualifier").unwrap();
    [&words[..at], &words[at + 2..]].concat().join(" ")
}

fn stage(tag: &str) -> (Stage, ChatbotEndpoint, Vec<(String, String)>) {
    let st = Stage::app(tag, "PROD");
    let chatbot = ChatbotEndpoint::start();
    st.aws.subscribe_https(&st.topic_arn, &chatbot.url);
    let env = st.env_with(&[
        ("AUTO_APPLY", "false"),
        ("CONFIRM_QUALIFIER", "apply"),
        ("AWS_LAMBDA_FUNCTION_NAME", FUNCTION),
    ]);
    (st, chatbot, env)
}

#[test]
fn a_plans_button_applies_exactly_that_plan_through_the_apply_alias_only() {
    let (st, chatbot, env) = stage("buttons");
    let emulator = Emulator::start(env.clone());
    let (v1, _) = st.put(&with(&[USERS]));

    // The upload plans; its Chatbot message carries the button's variables.
    let o = st.invoke_ok(&emulator, &s3_event(&v1), "planned");
    st.published(1);
    let plan = chatbot.take(1).remove(0);
    let context = &plan["metadata"]["additionalContext"];
    assert_eq!(context["migratorAction"], "apply-plan", "{plan:#}");
    assert_eq!(context["fn"], FUNCTION);
    let thread = plan["metadata"]["threadId"]
        .as_str()
        .expect("a thread")
        .to_string();
    assert_eq!(
        plan["metadata"]["summary"], "PROD: planned, 1 migration",
        "{plan:#}"
    );
    let apply = button(&plan, "Apply this plan");
    assert_eq!(buttons(&plan).len(), 1, "only the apply button: {plan:#}");
    let sent: Value = serde_json::from_str(context["p"].as_str().unwrap()).unwrap();
    assert_eq!(
        sent, o["confirmPayload"],
        "the button sends the plan's confirmPayload"
    );
    assert!(
        apply.starts_with(&format!(
            "lambda invoke --function-name {FUNCTION} --qualifier apply --payload {{"
        )),
        "{apply}"
    );

    // Through the plain function (what `grantInvoke` allows): refused, naming the door.
    let o = press(&st, &emulator, &env, &unqualified(&apply));
    assert_eq!(o["status"], "rejected", "{o:#}");
    assert!(
        error_message(&o).contains("confirm through the `apply` alias: --qualifier apply"),
        "{o:#}"
    );
    assert_eq!(st.db.tables(), Vec::<String>::new(), "nothing was written");
    st.published(1);
    chatbot.take(1);

    // The button's exact command: exactly that plan is applied, in the plan's thread, and the
    // message says through which door.
    let o = press(&st, &emulator, &env, &apply);
    assert_eq!(o["status"], "applied", "{o:#}");
    assert_eq!(listed(&o, "applied"), names(&[USERS]));
    assert_eq!(st.db.rows().len(), 1);
    st.published(1);
    let outcome = chatbot.take(1).remove(0);
    assert_eq!(
        outcome["metadata"]["threadId"],
        thread.as_str(),
        "{outcome:#}"
    );
    assert_eq!(outcome["metadata"]["additionalContext"]["door"], "apply");
    assert_eq!(outcome["metadata"]["summary"], "PROD: applied, 1 migration");
    assert!(buttons(&outcome).is_empty(), "nothing left to press");

    // Pressed twice: applies nothing more.
    let o = press(&st, &emulator, &env, &apply);
    assert_ne!(o["status"], "applied", "{o:#}");
    assert_eq!(o["applied"], serde_json::json!([]), "{o:#}");
    assert_eq!(st.db.rows().len(), 1, "applied once");
    st.published(1);
    chatbot.take(1);

    // A newer upload plans in its own thread; the older plan's button is stale and refused.
    let (v2, _) = st.put(&with(&[USERS, POSTS]));
    let (v3, _) = st.put(&with(&[
        USERS,
        POSTS,
        ("20240104000000_more", "CREATE TABLE \"More\" (id int);\n"),
    ]));
    let o = st.invoke_ok(&emulator, &s3_event(&v2), "planned");
    assert_eq!(listed(&o, "pending"), names(&[POSTS]));
    st.published(1);
    let plan2 = chatbot.take(1).remove(0);
    assert_ne!(plan2["metadata"]["threadId"], thread.as_str());
    let o = press(&st, &emulator, &env, &button(&plan2, "Apply this plan"));
    assert_eq!(o["status"], "rejected", "{o:#}");
    assert!(error_message(&o).contains("a stale confirmation"), "{o:#}");
    assert!(error_message(&o).contains(v3.version_id.as_str()), "{o:#}");
    assert_eq!(st.db.rows().len(), 1, "nothing applied");
    st.published(1);
    chatbot.take(1);
    st.finish(&[&emulator]);
}

#[test]
fn a_failed_migrations_resolve_button_records_it_and_the_next_deploy_applies() {
    let (st, chatbot, env) = stage("resolvebtn");
    let emulator = Emulator::start(env.clone());
    let (v1, _) = st.put(&with(&[USERS, BAD]));
    st.invoke_ok(&emulator, &s3_event(&v1), "planned");
    st.published(1);
    let plan = chatbot.take(1).remove(0);
    let thread = plan["metadata"]["threadId"].as_str().unwrap().to_string();
    let o = press(&st, &emulator, &env, &button(&plan, "Apply this plan"));
    assert_eq!(o["status"], "failed", "{o:#}");
    st.published(1);
    let failed = chatbot.take(1).remove(0);
    assert_eq!(failed["metadata"]["threadId"], thread.as_str());
    let shown: Vec<String> = buttons(&failed).into_iter().map(|(b, _)| b).collect();
    assert_eq!(shown, ["Mark rolled back", "Mark applied"], "{failed:#}");

    // The repair a person makes by hand (the failed statement's table), then the button.
    st.db.sql("DROP TABLE IF EXISTS \"Ok\"");
    let rolled_back = button(&failed, "Mark rolled back");
    // Not through the plain function.
    let o = press(&st, &emulator, &env, &unqualified(&rolled_back));
    assert_eq!(o["status"], "rejected", "{o:#}");
    st.published(1);
    chatbot.take(1);
    let o = press(&st, &emulator, &env, &rolled_back);
    assert_eq!(o["status"], "applied", "{o:#}");
    assert_eq!(o["resolved"]["name"], BAD.0, "{o:#}");
    st.published(1);
    let resolved = chatbot.take(1).remove(0);
    assert_eq!(
        resolved["metadata"]["threadId"],
        thread.as_str(),
        "the resolve lands in the thread"
    );
    assert!(
        st.db
            .rows()
            .iter()
            .any(|r| r["migration_name"] == BAD.0 && !r["rolled_back_at"].is_null()),
        "the row is resolved"
    );

    // Fixed and uploaded again: planned, and its button applies.
    let fixed = ("20240103000000_bad", "CREATE TABLE \"Ok\" (id int);\n");
    let (v2, _) = st.put(&with(&[USERS, fixed]));
    let o = st.invoke_ok(&emulator, &s3_event(&v2), "planned");
    assert_eq!(listed(&o, "pending"), names(&[fixed]));
    st.published(1);
    let plan = chatbot.take(1).remove(0);
    let o = press(&st, &emulator, &env, &button(&plan, "Apply this plan"));
    assert_eq!(o["status"], "applied", "{o:#}");
    assert_eq!(listed(&o, "applied"), names(&[fixed]));
    st.published(1);
    chatbot.take(1);
    st.finish(&[&emulator]);
}

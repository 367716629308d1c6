//! The Redis client against a real `redis-server`, started here on a free loopback port.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use session_core::codec::encryption::Keys;
use session_core::codec::{Codec, Compression, Encoding};
use session_core::redis::layout::{Bucket, Layout};
use session_core::redis::scripts::EXPIRY_RULE;
use session_core::redis::{
    limit_args, Announcement, Fetched, RedisPolicy, RedisSessions, RedisSettings,
};
use session_core::session::Loaded;
use session_core::writes::{Base, Outcome, Write, WriteTarget};
use session_core::{ExpiryPolicy, SessionId, StoreError};

/// The key of session `id` under the tests' prefix.
fn key(id: &str) -> String {
    Layout::new("t:").session(id)
}

/// The keys of the bucket that holds session `id`, under the tests' prefix.
fn in_bucket_of(id: &str) -> Bucket {
    Layout::new("t:").bucket_of(id).clone()
}

/// A `redis-server` of the test's own; a machine without one fails the test, loudly.
struct Server {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Server {
    fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = tempfile::tempdir().unwrap();
        let mut server = Self {
            child: Self::spawn(port, dir.path()),
            port,
            dir,
        };
        server.wait_until_up();
        server
    }

    fn spawn(port: u16, dir: &std::path::Path) -> Child {
        Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir)
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (apt-get install redis-server)")
    }

    fn wait_until_up(&mut self) {
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn restart(&mut self) {
        self.stop();
        self.child = Self::spawn(self.port, self.dir.path());
        self.wait_until_up();
    }

    fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

fn settings(server: &Server, prefix: &str) -> RedisSettings {
    RedisSettings {
        url: server.url(),
        key_prefix: prefix.into(),
        command_timeout: Duration::from_millis(500),
        connect_timeout: Duration::from_millis(500),
        max_session_bytes: 1 << 20,
        tls_ca: None,
        tls_insecure: false,
    }
}

fn sessions(server: &Server, prefix: &str) -> RedisSessions {
    RedisSessions::connect(settings(server, prefix), Codec::plain()).unwrap()
}

fn id(s: &str) -> SessionId {
    SessionId::parse(s).unwrap()
}

fn session_json(cookie: &str) -> String {
    format!(
        r#"{{"data":{{"createdAt":1,"lastUsed":2,"c":"{cookie}"}},"serializedCookieJar":"{{}}"}}"#
    )
}

fn loaded(json: &str, version: u64) -> Option<Loaded> {
    Some(Loaded {
        json: json.into(),
        version,
        encoding: Encoding::Plain,
        stored_len: json.len() as u64,
    })
}

/// Stores `json` based on `base`: the version stored (0: it had expired already).
fn write(store: &RedisSessions, name: &str, json: &str, base: Base) -> Result<u64, StoreError> {
    let write = Write {
        id: id(name),
        json: json.into(),
        base,
    };
    store.write_now(vec![write]).pop().unwrap()
}

fn save(store: &RedisSessions, name: &str, json: &str) -> Result<u64, StoreError> {
    write(store, name, json, Base::Any)
}

/// Writes a policy with only a stale timeout, as a store with `staleCleanupOptions` does.
fn write_stale_timeout(store: &RedisSessions, ms: f64) {
    let policy = RedisPolicy {
        stale_timeout: Some(ms),
        max_to_live: None,
    };
    store.check(Some(policy)).wait().unwrap();
}

fn dataset_of(store: &RedisSessions) -> String {
    store.check(None).wait().unwrap()
}

fn until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_secs(10), "never {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn stores_loads_lists_and_removes_exactly_the_json() {
    let server = Server::start();
    let store = sessions(&server, "t:");
    let json = session_json("a");
    assert_eq!(save(&store, "one", &json).unwrap(), 1);
    assert_eq!(store.load(&id("one")).unwrap(), loaded(&json, 1));
    assert_eq!(server.cli(&["GET", &key("one")]), json);
    assert_eq!(store.ids().unwrap(), vec!["one".to_string()]);
    assert!(store.remove(id("one")).unwrap());
    assert_eq!(store.load(&id("one")).unwrap(), None);
    assert!(store.ids().unwrap().is_empty());
}

#[test]
fn a_delete_asked_after_a_write_is_never_overtaken() {
    let server = Server::start();
    let store = sessions(&server, "t:");
    for round in 0..200 {
        let name = format!("s{round}");
        let written = store.start(vec![(
            round,
            Write {
                id: id(&name),
                json: session_json("x"),
                base: Base::New,
            },
        )]);
        assert!(store.remove(id(&name)).is_ok());
        assert!(matches!(store.finish(written)[..], [Outcome::Written(_)]));
        assert_eq!(store.load(&id(&name)).unwrap(), None, "round {round}");
    }
}

#[test]
fn changes_larger_than_a_pipeline_are_all_stored_in_order() {
    let server = Server::start();
    // 40 MB: far more than one pipeline sends within the time a reply is waited for (four
    // times the command timeout), which a pipeline of 1 MiB needs a small part of.
    let store = RedisSessions::connect(
        RedisSettings {
            command_timeout: Duration::from_millis(100),
            ..settings(&server, "t:")
        },
        Codec::plain(),
    )
    .unwrap();
    let padding = "x".repeat(100 * 1024);
    let save = |name: &str, cookie: &str| Write {
        id: id(name),
        json: session_json(cookie),
        base: Base::Any,
    };
    let mut writes: Vec<Write> = (0..400)
        .map(|i| save(&format!("big{i}"), &format!("{i}{padding}")))
        .collect();
    // The same id again at the end: it is stored after the first, so its copy is the one kept.
    writes.push(save("big0", "last"));
    let results = store.write_now(writes);
    assert_eq!(results.len(), 401);
    assert!(results.iter().all(|r| matches!(r, Ok(v) if *v > 0)));
    assert_eq!(store.ids().unwrap().len(), 400);
    assert_eq!(
        store.load(&id("big0")).unwrap().map(|copy| copy.json),
        Some(session_json("last"))
    );
}

#[test]
fn prefixes_keep_stores_apart() {
    let server = Server::start();
    let a = sessions(&server, "a:");
    let b = sessions(&server, "b:");
    save(&a, "same", &session_json("a")).unwrap();
    assert_eq!(b.load(&id("same")).unwrap(), None);
    assert!(b.ids().unwrap().is_empty());
}

#[test]
fn what_is_not_a_session_is_reported_as_such() {
    let server = Server::start();
    let store = sessions(&server, "t:");
    server.cli(&["SET", &key("bad"), "{\"data\":1}"]);
    let err = store.load(&id("bad")).unwrap_err();
    assert_eq!(err.code(), "ERR_CORRUPT_SESSION");
    server.cli(&["SETRANGE", &key("big"), &(2 << 20).to_string(), "x"]);
    assert_eq!(
        store.load(&id("big")).unwrap_err().code(),
        "ERR_SESSION_TOO_LARGE"
    );
    // Nor is one too large to be read back ever stored.
    let huge = session_json(&"y".repeat(2 << 20));
    assert_eq!(
        save(&store, "huge", &huge).unwrap_err().code(),
        "ERR_SESSION_TOO_LARGE"
    );
    assert_eq!(server.cli(&["EXISTS", &key("huge")]), "0");
    server.cli(&["HSET", &key("hash"), "a", "b"]);
    assert_eq!(store.load(&id("hash")).unwrap_err().code(), "ERR_REDIS");
    // Only an unchanged copy is deleted as corrupt.
    assert!(!store.remove_corrupt(id("bad"), Some("{}".into())).unwrap());
    // Without a copy, the one the last load found corrupt.
    assert!(store.remove_corrupt(id("bad"), None).unwrap());
}

#[test]
fn the_policy_in_redis_expires_sessions_of_every_store() {
    let server = Server::start();
    let master = sessions(&server, "t:");
    let worker = sessions(&server, "t:");
    write_stale_timeout(&master, 300.0);
    // The worker has no policy of its own: the one in Redis applies to what it stores.
    save(&worker, "w", &session_json("a")).unwrap();
    let ttl: i64 = server.cli(&["PTTL", &key("w")]).parse().unwrap();
    assert!(ttl > 0 && ttl <= 300, "ttl {ttl}");
    until("expired", || worker.load(&id("w")).unwrap().is_none());
    until("pruned", || worker.ids().unwrap().is_empty());
    assert_eq!(server.cli(&["ZCARD", &in_bucket_of("w").index]), "0");
}

#[test]
fn max_to_live_counts_from_creation_however_often_it_is_refreshed() {
    let server = Server::start();
    let store = sessions(&server, "t:");
    let policy = RedisPolicy {
        stale_timeout: Some(60_000.0),
        max_to_live: Some(400.0),
    };
    store.check(Some(policy)).wait().unwrap();
    let dataset = dataset_of(&store);
    save(&store, "m", &session_json("a")).unwrap();
    until("expired", || {
        let gone = store.refresh(vec![id("m")], dataset.clone()).wait();
        matches!(&gone, Ok(Some(ids)) if ids == &["m".to_string()])
    });
    // A session created long ago by the host's clock expires when first stored.
    let old = r#"{"data":{"createdAt":1,"lastUsed":1},"serializedCookieJar":"{}"}"#;
    assert_eq!(save(&store, "old", old).unwrap(), 0, "expired, not stored");
    assert_eq!(store.load(&id("old")).unwrap(), None);
}

#[test]
fn an_unreachable_server_fails_fast_and_is_reconnected() {
    let mut server = Server::start();
    let store = sessions(&server, "t:");
    save(&store, "keep", &session_json("a")).unwrap();
    let before = dataset_of(&store);
    server.stop();
    // The first call finds out; the ones after it do not wait.
    let _ = store.load(&id("keep"));
    until("unavailable", || !store.is_available());
    let start = Instant::now();
    assert_eq!(
        store.load(&id("keep")).unwrap_err().code(),
        "ERR_REDIS_UNAVAILABLE"
    );
    let failed = save(&store, "x", &session_json("b")).unwrap_err();
    assert_eq!(failed.code(), "ERR_REDIS_UNAVAILABLE");
    assert!(start.elapsed() < Duration::from_millis(400));
    server.restart();
    until("reconnected", || store.is_available());
    // Restarted empty: the data set has a new token, so holders know to write back.
    let refreshed = store.refresh(vec![id("keep")], before.clone()).wait();
    // Lost, not deleted: a refresh in the old data set's name says nothing is gone.
    assert_eq!(refreshed.unwrap(), None);
    assert_ne!(dataset_of(&store), before);
    assert_eq!(store.load(&id("keep")).unwrap(), None);
}

#[test]
fn a_hung_server_is_not_taken_for_one_that_is_back() {
    let server = Server::start();
    let store = sessions(&server, "t:");
    save(&store, "s", &session_json("a")).unwrap();
    let pid = server.child.id().to_string();
    let signal = |name: &str| {
        Command::new("kill").args([name, &pid]).status().unwrap();
    };
    signal("-STOP");
    assert_eq!(
        store.load(&id("s")).unwrap_err().code(),
        "ERR_REDIS_UNAVAILABLE"
    );
    let connects = store.connects();
    // Reconnection is tried every 250 ms; a stopped server accepts connections but never
    // answers, so none of them counts.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(store.connects(), connects);
    assert!(!store.is_available());
    signal("-CONT");
    until("reconnected", || store.is_available());
    assert!(store.load(&id("s")).unwrap().is_some());
}

#[test]
fn a_closed_store_neither_serves_nor_reconnects() {
    let mut server = Server::start();
    let store = sessions(&server, "t:");
    store.close();
    assert_eq!(
        store.load(&id("x")).unwrap_err().code(),
        "ERR_REDIS_UNAVAILABLE"
    );
    server.restart();
    std::thread::sleep(Duration::from_millis(600));
    assert!(!store.is_available());
}

#[test]
fn a_store_can_start_before_its_server() {
    let mut server = Server::start();
    server.stop();
    let store = sessions(&server, "t:");
    assert!(!store.is_available());
    server.restart();
    until("connected", || store.is_available());
    save(&store, "late", &session_json("a")).unwrap();
}

#[test]
fn after_a_data_loss_stores_without_a_policy_keep_the_last_one_seen() {
    let server = Server::start();
    let master = sessions(&server, "t:");
    let worker = sessions(&server, "t:");
    let check = |store: &RedisSessions, policy| store.check(policy).wait().unwrap();
    let stale = |ms| RedisPolicy {
        stale_timeout: Some(ms),
        max_to_live: None,
    };
    check(&master, Some(stale(60_000.0)));
    check(&worker, None);
    server.cli(&["FLUSHALL"]);
    // Before any store wrote the policy again, what the worker stores still expires.
    save(&worker, "x", &session_json("a")).unwrap();
    let ttl: i64 = server.cli(&["PTTL", &key("x")]).parse().unwrap();
    assert!(ttl > 0 && ttl <= 60_000, "ttl {ttl}");
    check(&worker, None);
    assert_eq!(
        server.cli(&["HGET", &in_bucket_of("x").policy, "staleTimeout"]),
        "60000"
    );
    // A policy in Redis is never overridden by one a store merely saw.
    check(&master, Some(stale(30_000.0)));
    check(&worker, None);
    assert_eq!(
        server.cli(&["HGET", &in_bucket_of("x").policy, "staleTimeout"]),
        "30000"
    );
    // Both limits disabled is a policy too: sessions then never expire.
    check(
        &master,
        Some(RedisPolicy {
            stale_timeout: None,
            max_to_live: None,
        }),
    );
    save(&worker, "y", &session_json("a")).unwrap();
    assert_eq!(server.cli(&["PTTL", &key("y")]), "-1");
}

fn fetch(store: &RedisSessions, name: &str, known: u64) -> Vec<Fetched> {
    fetched(store, vec![(id(name), known)]).unwrap()
}

/// `fetch`, waited for on this thread.
fn fetched(
    store: &RedisSessions,
    known: Vec<(SessionId, u64)>,
) -> Result<Vec<Fetched>, StoreError> {
    let (done, result) = std::sync::mpsc::channel();
    store.fetch(known, move |newer| done.send(newer).unwrap());
    result.recv().unwrap()
}

/// Whether `result` is a refusal for the newer stored copy `json`, stored as `version`.
fn is_conflict(result: Result<u64, StoreError>, version: u64, json: &str) -> bool {
    matches!(result, Err(StoreError::Conflict { version: v, json: ref j }) if v == version && j == json)
}

#[test]
fn a_write_based_on_an_older_version_is_refused_and_a_delete_sticks() {
    let server = Server::start();
    let (a, b) = (sessions(&server, "t:"), sessions(&server, "t:"));
    let (one, two, three) = (session_json("1"), session_json("2"), session_json("3"));
    assert_eq!(write(&a, "s", &one, Base::New).unwrap(), 1);
    assert_eq!(write(&b, "s", &two, Base::Version(1)).unwrap(), 2);
    assert!(is_conflict(
        write(&a, "s", &three, Base::Version(1)),
        2,
        &two
    ));
    assert_eq!(
        fetch(&a, "s", 1),
        vec![Fetched {
            id: "s".into(),
            version: 2,
            json: Some(two.clone())
        }]
    );
    assert!(fetch(&a, "s", 2).is_empty());
    b.remove(id("s")).unwrap();
    // A late write of a copy loaded before the delete does not bring it back.
    assert!(matches!(
        write(&a, "s", &three, Base::Version(2)),
        Err(StoreError::Deleted)
    ));
    assert_eq!(a.load(&id("s")).unwrap(), None);
    assert_eq!(
        fetch(&a, "s", 2),
        vec![Fetched {
            id: "s".into(),
            version: 3,
            json: None
        }]
    );
    // Created again here, it is a new session, with a version above every earlier one.
    assert_eq!(write(&a, "s", &one, Base::New).unwrap(), 4);
    assert_eq!(write(&b, "s", &two, Base::Any).unwrap(), 5);
}

#[test]
fn other_stores_hear_of_each_write_and_delete_but_not_of_their_own() {
    let server = Server::start();
    let (a, b) = (sessions(&server, "t:"), sessions(&server, "t:"));
    // Only a store that asks for announcements subscribes.
    a.on_announcements(Box::new(|| {}));
    b.on_announcements(Box::new(|| {}));
    until("subscribed", || {
        b.take_announcements().contains(&Announcement::Subscribed)
    });
    until("a subscribed", || {
        a.take_announcements().contains(&Announcement::Subscribed)
    });
    write(&a, "s", &session_json("1"), Base::New).unwrap();
    a.remove(id("s")).unwrap();
    let mut heard = Vec::new();
    until("heard", || {
        heard.extend(b.take_announcements());
        heard.len() >= 2
    });
    assert_eq!(
        heard,
        vec![
            Announcement::Changed {
                id: "s".into(),
                version: 1
            },
            Announcement::Deleted {
                id: "s".into(),
                version: 2
            }
        ]
    );
    assert!(a.take_announcements().is_empty());
}

#[test]
fn after_a_data_loss_a_write_back_is_merged_rather_than_overwritten() {
    let server = Server::start();
    let (a, b) = (sessions(&server, "t:"), sessions(&server, "t:"));
    for _ in 0..9 {
        write(&a, "s", &session_json("x"), Base::Any).unwrap();
    }
    server.cli(&["FLUSHALL"]);
    // Both hosts held version 9; the first to write back stores it, the second merges.
    let mine = session_json("a");
    assert_eq!(write(&a, "s", &mine, Base::Version(9)).unwrap(), 10);
    assert!(is_conflict(
        write(&b, "s", &session_json("b"), Base::Version(9)),
        10,
        &mine
    ));
}

#[test]
fn a_session_stored_without_a_version_is_versioned_and_its_delete_sticks() {
    let server = Server::start();
    let store = sessions(&server, "t:");
    let old = session_json("old");
    server.cli(&["SET", &key("s"), &old]);
    assert_eq!(store.load(&id("s")).unwrap(), loaded(&old, 0));
    assert_eq!(write(&store, "s", &old, Base::Version(0)).unwrap(), 1);
    server.cli(&["SET", &key("u"), &old]);
    store.remove(id("u")).unwrap();
    assert!(matches!(
        write(&store, "u", &old, Base::Version(0)),
        Err(StoreError::Deleted)
    ));
}

#[test]
fn tombstones_past_their_time_go_with_later_deletes() {
    let server = Server::start();
    let store = sessions(&server, "t:");
    write_stale_timeout(&store, 30.0);
    store.remove(id("first")).unwrap();
    assert_ne!(
        server.cli(&["ZSCORE", &in_bucket_of("first").tombstones, "first"]),
        ""
    );
    // Tombstones are kept per bucket: a delete in the same one forgets them.
    let bucket = Layout::bucket_number("first");
    let later = (0..)
        .map(|n| format!("later{n}"))
        .find(|later| Layout::bucket_number(later) == bucket)
        .unwrap();
    until("forgotten", || {
        store.remove(id(&later)).unwrap();
        server
            .cli(&["ZSCORE", &in_bucket_of("first").tombstones, "first"])
            .is_empty()
    });
    assert_eq!(
        server.cli(&["HGET", &in_bucket_of("first").versions, "first"]),
        ""
    );
}

#[test]
fn a_newer_copy_that_is_not_text_is_left_out_of_a_fetch_and_the_others_are_fetched() {
    let server = Server::start();
    let (a, b) = (sessions(&server, "t:"), sessions(&server, "t:"));
    for name in ["good", "bad"] {
        assert_eq!(write(&a, name, &session_json("1"), Base::New).unwrap(), 1);
        assert_eq!(
            write(&b, name, &session_json("2"), Base::Version(1)).unwrap(),
            2
        );
    }
    let set_bytes = "redis.call('SET', KEYS[1], string.char(123, 255, 254, 125))";
    server.cli(&["EVAL", set_bytes, "1", &key("bad")]);
    let newer = fetched(&a, vec![(id("bad"), 1), (id("good"), 1)]);
    assert_eq!(
        newer.unwrap(),
        vec![Fetched {
            id: "good".into(),
            version: 2,
            json: Some(session_json("2"))
        }]
    );
}

#[test]
fn a_newer_copy_above_the_size_limit_is_neither_merged_nor_fetched() {
    let server = Server::start();
    let small = RedisSessions::connect(
        RedisSettings {
            max_session_bytes: 200,
            ..settings(&server, "t:")
        },
        Codec::plain(),
    )
    .unwrap();
    let other = sessions(&server, "t:");
    assert_eq!(
        write(&small, "s", &session_json("a"), Base::New).unwrap(),
        1
    );
    let big = session_json(&"b".repeat(300));
    assert_eq!(write(&other, "s", &big, Base::Version(1)).unwrap(), 2);
    let refused = write(&small, "s", &session_json("c"), Base::Version(1));
    assert_eq!(refused.unwrap_err().code(), "ERR_SESSION_TOO_LARGE");
    assert!(fetch(&small, "s", 1).is_empty());
}

/// The expiry rule as the Lua scripts apply it, for each case of (created, last used, now,
/// stale timeout, max to live): true when expired. Times of None are passed as '' (nil in Lua).
fn lua_verdicts(server: &Server, cases: &[Case]) -> Vec<bool> {
    let script = format!(
        "{EXPIRY_RULE}
local verdicts = {{}}
for i = 1, #ARGV, 5 do
  local at = deadline(tonumber(ARGV[i + 1]), tonumber(ARGV[i + 3]), tonumber(ARGV[i]),
    tonumber(ARGV[i + 4]))
  verdicts[#verdicts + 1] = is_past(tonumber(ARGV[i + 2]), at) and 1 or 0
end
return verdicts"
    );
    let time = |t: Option<f64>| t.map_or(String::new(), |t| t.to_string());
    let mut args = vec!["EVAL".to_string(), script, "0".into()];
    for &(created, last_used, now, stale, max) in cases {
        let (stale, max) = limit_args(Some(RedisPolicy {
            stale_timeout: stale,
            max_to_live: max,
        }));
        args.extend([time(created), time(last_used), now.to_string(), stale, max]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    server
        .cli(&args)
        .lines()
        .map(|line| line.trim() == "1")
        .collect()
}

/// Created, last used, now, stale timeout, max to live.
type Case = (Option<f64>, Option<f64>, f64, Option<f64>, Option<f64>);

#[test]
fn the_lua_expiry_rule_agrees_with_the_core() {
    let server = Server::start();
    // Every boundary around a limit, with limits disabled (None, 0) and times missing, then a
    // spread of others from a fixed seed.
    let mut cases: Vec<Case> = Vec::new();
    let limits = [None, Some(0.0), Some(1.0), Some(1000.0), Some(1.5)];
    let now = 10_000.0;
    for stale in limits {
        for max in limits {
            for offset in [-1.0, -0.5, 0.0, 0.5, 1.0] {
                let too_old = Some(now - max.unwrap_or(0.0) + offset);
                let stale_at = Some(now - stale.unwrap_or(0.0) + offset);
                for (created, last_used) in [
                    (too_old, Some(now)),
                    (Some(0.0), stale_at),
                    (None, stale_at),
                    (too_old, None),
                ] {
                    cases.push((created, last_used, now, stale, max));
                }
            }
        }
    }
    let mut seed: u64 = 0x5eed;
    let mut next = |below: u64| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) % below
    };
    for _ in 0..2000 {
        let now = 1_000_000.0 + next(10_000) as f64;
        let created = now - next(20_000) as f64;
        let last_used = now - next(20_000) as f64;
        let mut limit = || match next(4) {
            0 => None,
            1 => Some(0.0),
            _ => Some(next(20_000) as f64),
        };
        let (stale, max) = (limit(), limit());
        cases.push((Some(created), Some(last_used), now, stale, max));
    }
    let lua: Vec<bool> = cases
        .chunks(400)
        .flat_map(|chunk| lua_verdicts(&server, chunk))
        .collect();
    assert_eq!(lua.len(), cases.len());
    for (case, lua) in cases.iter().zip(lua) {
        let &(created, last_used, now, stale, max) = case;
        let core = ExpiryPolicy::new(stale, max).is_expired(created, last_used, now);
        assert_eq!(lua, core, "{case:?}");
    }
}

#[test]
fn limits_of_a_fraction_of_a_millisecond_still_store_and_expire() {
    let server = Server::start();
    let store = sessions(&server, "t:");
    write_stale_timeout(&store, 1500.5);
    assert_eq!(save(&store, "f", &session_json("a")).unwrap(), 1);
    let ttl: i64 = server.cli(&["PTTL", &key("f")]).parse().unwrap();
    assert!(ttl > 0 && ttl <= 1501, "ttl {ttl}");
}

/// Gives the store a policy of a minute for both limits; the data set's token, and the JSON of
/// a session created now.
fn a_minute_to_live_and_a_session_of_now(store: &RedisSessions) -> (String, String) {
    let policy = RedisPolicy {
        stale_timeout: Some(60_000.0),
        max_to_live: Some(60_000.0),
    };
    store.check(Some(policy)).wait().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let fresh = format!(
        r#"{{"data":{{"createdAt":{now},"lastUsed":{now}}},"serializedCookieJar":"{{}}"}}"#
    );
    (dataset_of(store), fresh)
}

/// Sets `key` to `bytes` (any bytes, as redis-cli arguments cannot carry them), keeping its
/// expiry.
fn set_bytes(server: &Server, key: &str, bytes: &[u8]) {
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let script = "redis.call('SET', KEYS[1], (ARGV[1]:gsub('..', function(x) \
                  return string.char(tonumber(x, 16)) end)), 'KEEPTTL')";
    server.cli(&["EVAL", script, "1", key, &hex]);
}

#[test]
fn a_session_refreshed_without_a_recorded_creation_counts_from_its_encoded_header() {
    let server = Server::start();
    let codec = || Codec::new(Compression::Zstd, Keys::new(&[[3u8; 32]]).unwrap());
    let store = RedisSessions::connect(settings(&server, "t:"), codec()).unwrap();
    let (dataset, fresh) = a_minute_to_live_and_a_session_of_now(&store);
    save(&store, "m", &fresh).unwrap();
    save(&store, "n", &fresh).unwrap();
    // Created long ago as the readable header says, with no record of it: Lua reads the header.
    let old = r#"{"data":{"createdAt":1,"lastUsed":1},"serializedCookieJar":"{}"}"#;
    let encoded = codec().encode(&id("m"), old.as_bytes(), None).unwrap();
    set_bytes(&server, &key("m"), &encoded);
    for name in ["m", "n"] {
        server.cli(&["ZREM", &in_bucket_of(name).created, name]);
    }
    let gone = store
        .refresh(vec![id("m"), id("n")], dataset)
        .wait()
        .unwrap();
    assert_eq!(gone, Some(Vec::new()), "still there when refreshed");
    let ttl = |name: &str| -> i64 { server.cli(&["PTTL", &key(name)]).parse().unwrap() };
    assert!(
        ttl("m") <= 1,
        "expires at once, by its creation: ttl {}",
        ttl("m")
    );
    assert!(ttl("n") > 1000, "created now: ttl {}", ttl("n"));
}

#[test]
fn a_copy_this_store_cannot_decrypt_is_neither_served_merged_nor_fetched() {
    let server = Server::start();
    let with_key = |key: u8| {
        let codec = Codec::new(Compression::None, Keys::new(&[[key; 32]]).unwrap());
        RedisSessions::connect(settings(&server, "t:"), codec).unwrap()
    };
    let (a, b) = (with_key(1), with_key(2));
    assert_eq!(write(&a, "s", &session_json("a"), Base::New).unwrap(), 1);
    let digest = || {
        server.cli(&[
            "EVAL",
            "return redis.sha1hex(redis.call('GET', KEYS[1]))",
            "1",
            &key("s"),
        ])
    };
    let stored = digest();
    assert_eq!(
        b.load(&id("s")).unwrap_err().code(),
        "ERR_SESSION_UNDECRYPTABLE"
    );
    let refused = write(&b, "s", &session_json("b"), Base::New).unwrap_err();
    assert_eq!(refused.code(), "ERR_SESSION_UNDECRYPTABLE");
    assert!(fetch(&b, "s", 0).is_empty());
    assert_eq!(digest(), stored, "left as it was");
    assert_eq!(a.load(&id("s")).unwrap().unwrap().json, session_json("a"));
}

#[test]
fn a_session_refreshed_without_a_recorded_creation_counts_from_its_json() {
    let server = Server::start();
    let store = sessions(&server, "t:");
    let (dataset, fresh) = a_minute_to_live_and_a_session_of_now(&store);
    save(&store, "m", &fresh).unwrap();
    // As stored before creation times were recorded: created long ago, no record of it.
    let old = r#"{"data":{"createdAt":1,"lastUsed":1},"serializedCookieJar":"{}"}"#;
    server.cli(&["SET", &key("m"), old, "KEEPTTL"]);
    server.cli(&["ZREM", &in_bucket_of("m").created, "m"]);
    let gone = store.refresh(vec![id("m")], dataset).wait().unwrap();
    assert_eq!(gone, Some(Vec::new()), "still there when refreshed");
    let ttl: i64 = server.cli(&["PTTL", &key("m")]).parse().unwrap();
    assert!(ttl <= 1, "expires at once, by its creation: ttl {ttl}");
}

#[test]
fn a_large_reply_does_not_drop_the_subscription_or_the_commands() {
    let server = Server::start();
    // A subscribed connection is cut by the server once its output passes these limits.
    server.cli(&[
        "CONFIG",
        "SET",
        "client-output-buffer-limit",
        "pubsub 256kb 256kb 0",
    ]);
    let (a, b) = (sessions(&server, "t:"), sessions(&server, "t:"));
    a.on_announcements(Box::new(|| {}));
    until("subscribed", || {
        a.take_announcements().contains(&Announcement::Subscribed)
    });
    let large = session_json(&"x".repeat(512 << 10));
    save(&b, "big", &large).unwrap();
    assert_eq!(a.load(&id("big")).unwrap().unwrap().json, large);
    save(&b, "small", &session_json("1")).unwrap();
    let mut heard = Vec::new();
    until("heard", || {
        heard.extend(a.take_announcements());
        heard
            .iter()
            .any(|h| matches!(h, Announcement::Changed { id, .. } if id == "small"))
    });
    assert!(!heard
        .iter()
        .any(|h| matches!(h, Announcement::Unsubscribed { .. })));
}

#[test]
fn a_subscription_cut_by_the_server_is_made_again() {
    let server = Server::start();
    let (a, b) = (sessions(&server, "t:"), sessions(&server, "t:"));
    a.on_announcements(Box::new(|| {}));
    until("subscribed", || {
        a.take_announcements().contains(&Announcement::Subscribed)
    });
    server.cli(&["CLIENT", "KILL", "TYPE", "pubsub"]);
    let mut heard = Vec::new();
    until("subscribed again", || {
        heard.extend(a.take_announcements());
        heard.contains(&Announcement::Subscribed)
    });
    assert!(
        matches!(heard[0], Announcement::Unsubscribed { .. }),
        "{heard:?}"
    );
    save(&b, "s", &session_json("1")).unwrap();
    until("heard", || {
        a.take_announcements()
            .iter()
            .any(|h| matches!(h, Announcement::Changed { id, .. } if id == "s"))
    });
}

#[test]
fn certificate_checks_are_off_only_when_asked_and_only_for_rediss() {
    let refused = |url: &str, tls_ca: Option<&str>, tls_insecure: bool| {
        let settings = RedisSettings {
            url: url.into(),
            key_prefix: "t:".into(),
            command_timeout: Duration::from_millis(100),
            connect_timeout: Duration::from_millis(100),
            max_session_bytes: 1 << 20,
            tls_ca: tls_ca.map(|pem| pem.as_bytes().to_vec()),
            tls_insecure,
        };
        match RedisSessions::connect(settings, Codec::plain()) {
            Err(StoreError::InvalidUrl(why)) => why,
            Err(other) => panic!("{url}: refused for another reason: {other}"),
            Ok(_) => panic!("{url}: accepted"),
        }
    };
    assert!(refused("rediss://127.0.0.1:1/#insecure", None, false).contains("tlsInsecure"));
    assert!(refused("rediss://127.0.0.1:1/#insecure", None, true).contains("not in the URL"));
    assert!(refused("redis://127.0.0.1:1", None, true).contains("rediss://"));
    assert!(refused("rediss://127.0.0.1:1", Some("pem"), true).contains("not both"));
}

#[test]
fn sessions_of_the_flat_layout_are_served_and_moved_into_their_buckets() {
    let server = Server::start();
    // As an earlier version stored them: one kept with an expiry, one without, one deleted.
    let (kept, forever) = (session_json("kept"), session_json("forever"));
    server.cli(&["SET", "t:session:kept", &kept, "PX", "600000"]);
    server.cli(&["SET", "t:session:forever", &forever]);
    server.cli(&[
        "ZADD",
        "t:index",
        "+inf",
        "forever",
        "600000000000000",
        "kept",
    ]);
    server.cli(&["ZADD", "t:created", "1", "kept", "1", "forever"]);
    server.cli(&[
        "HSET",
        "t:versions",
        "kept",
        "7",
        "forever",
        "3",
        "gone",
        "5",
    ]);
    server.cli(&["ZADD", "t:tombstones", "99999999999999", "gone"]);
    server.cli(&["HSET", "t:policy", "set", "1", "staleTimeout", "600000"]);
    server.cli(&["SET", "t:dataset", "old"]);
    // Asked for before everything is moved: moved at once.
    let store = sessions(&server, "t:");
    assert_eq!(store.load(&id("kept")).unwrap(), loaded(&kept, 7));
    assert_eq!(server.cli(&["GET", &key("kept")]), kept);
    let ttl: i64 = server.cli(&["PTTL", &key("kept")]).parse().unwrap();
    assert!(ttl > 590_000, "the expiry moves with the key: {ttl}");
    assert_eq!(server.cli(&["EXISTS", "t:session:kept"]), "0");

    // Listing moves the rest, with versions and tombstones, and leaves no flat key.
    let mut ids = store.ids().unwrap();
    ids.sort();
    assert_eq!(ids, ["forever", "kept"]);
    assert_eq!(store.load(&id("forever")).unwrap(), loaded(&forever, 3));
    assert_eq!(server.cli(&["KEYS", "t:[^{]*"]), "");
    let stale = write(&store, "gone", &session_json("late"), Base::Version(4));
    assert!(matches!(stale, Err(StoreError::Deleted)), "{stale:?}");
    let next = write(&store, "forever", &session_json("next"), Base::Version(3)).unwrap();
    assert_eq!(next, 4);

    // A flat copy written afterwards by a host of an earlier version loses to the bucket's.
    server.cli(&["SET", "t:session:forever", &session_json("older host")]);
    server.cli(&["ZADD", "t:index", "+inf", "forever"]);
    let again = sessions(&server, "t:");
    assert_eq!(again.ids().unwrap().len(), 2);
    assert_eq!(
        again.load(&id("forever")).unwrap(),
        loaded(&session_json("next"), 4)
    );
    assert_eq!(server.cli(&["EXISTS", "t:session:forever"]), "0");
}

#[test]
fn sessions_of_the_flat_layout_loaded_at_once_by_several_stores_are_all_found() {
    let server = Server::start();
    let json = session_json("flat");
    for i in 0..100 {
        server.cli(&["SET", &format!("t:session:f{i}"), &json]);
        server.cli(&["ZADD", "t:index", "+inf", &format!("f{i}")]);
    }
    let (a, b) = (sessions(&server, "t:"), sessions(&server, "t:"));
    let (found, receiver) = std::sync::mpsc::channel();
    for store in [&a, &b, &a] {
        for i in 0..100 {
            let found = found.clone();
            store.load_later(id(&format!("f{i}")), move |loaded| {
                found.send(matches!(loaded, Ok(Some(_)))).unwrap()
            });
        }
    }
    let missing = (0..300).filter(|_| !receiver.recv().unwrap()).count();
    assert_eq!(
        missing, 0,
        "loads that found no session while it was being moved"
    );
}

#[test]
fn a_flat_delete_does_not_tombstone_a_session_imported_since_and_a_delete_moves_first() {
    let server = Server::start();
    // Deleted in the flat layout, then imported anew by this build.
    server.cli(&["HSET", "t:versions", "x", "5"]);
    server.cli(&["ZADD", "t:tombstones", "99999999999999", "x"]);
    server.cli(&["SET", "t:session:y", &session_json("y")]);
    server.cli(&["ZADD", "t:index", "+inf", "y"]);
    server.cli(&["HSET", "t:versions", "y", "2"]);
    let store = sessions(&server, "t:");
    store.import(id("x"), session_json("new")).unwrap();
    store.ids().unwrap();
    let version = store.load(&id("x")).unwrap().unwrap().version;
    let next = write(&store, "x", &session_json("next"), Base::Version(version));
    assert!(next.is_ok(), "{next:?}");

    // A delete of a session not moved yet deletes it, and says so.
    let other = sessions(&server, "t2:");
    server.cli(&["SET", "t2:session:z", &session_json("z")]);
    server.cli(&["ZADD", "t2:index", "+inf", "z"]);
    assert!(other.remove(id("z")).unwrap());
    assert_eq!(other.load(&id("z")).unwrap(), None);
    assert_eq!(server.cli(&["EXISTS", "t2:session:z"]), "0");
}

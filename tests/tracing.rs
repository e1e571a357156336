//! The `tracing` feature: a task's log lines carry its span (id, name, spawn location), on
//! whichever worker polls it; debug mode's reports are `warn!` events, and what the runtime
//! reports of its own failures (a hook that panicked) are `error!` events.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// The fields of a span, as text.
#[derive(Default, Clone, Debug)]
struct Fields(Vec<(String, String)>);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push((field.name().to_owned(), format!("{value:?}")));
    }
}

impl Fields {
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One recorded event: its message, level and target, and its span's name and fields.
#[derive(Clone, Debug)]
struct Recorded {
    level: tracing::Level,
    target: String,
    fields: Fields,
    span: Option<(String, Fields)>,
}

#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Recorded>>>);

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Recorder {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        ctx.span(id).unwrap().extensions_mut().insert(fields);
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let span = ctx.event_span(event).map(|span| {
            let ext = span.extensions();
            (
                span.name().to_owned(),
                ext.get::<Fields>().cloned().unwrap_or_default(),
            )
        });
        self.0.lock().unwrap().push(Recorded {
            level: *event.metadata().level(),
            target: event.metadata().target().to_owned(),
            fields,
            span,
        });
    }
}

/// The recorder of this test binary's global subscriber (global: the workers are other
/// threads), installed by the first test that asks. Each test picks out its own events.
fn recorder() -> Recorder {
    static RECORDER: OnceLock<Recorder> = OnceLock::new();
    RECORDER
        .get_or_init(|| {
            let recorder = Recorder::default();
            let subscriber = tracing_subscriber::registry().with(recorder.clone());
            tracing::subscriber::set_global_default(subscriber).unwrap();
            recorder
        })
        .clone()
}

#[test]
fn a_task_logs_inside_its_span_and_slow_polls_are_warnings() {
    let recorder = recorder();

    let rt = magpie::Runtime::builder()
        .worker_threads(2)
        .slow_poll_threshold(Duration::from_millis(20))
        .build()
        .unwrap();
    let builder = magpie::task::Builder::new().name("greeter");
    let greeter = async {
        tracing::info!("hello from a task");
        magpie::task::yield_now().await;
        tracing::info!("again, maybe on another worker");
        std::thread::sleep(Duration::from_millis(40)); // a slow poll
    };
    let rt_handle = rt.handle();
    let (handle, line) = (builder.spawn_on(greeter, &rt_handle), line!());
    let id = handle.id();
    rt.block_on(handle).unwrap();
    drop(rt);

    let events = recorder.0.lock().unwrap().clone();
    let task_events: Vec<_> = events
        .iter()
        .filter(|e| {
            e.fields
                .get("message")
                .is_some_and(|m| m.contains("from a task") || m.contains("again"))
        })
        .collect();
    assert_eq!(task_events.len(), 2, "{events:?}");
    for event in task_events {
        let (name, fields) = event.span.as_ref().expect("logged inside the task's span");
        assert_eq!(name, "task");
        assert_eq!(
            fields.get("task.id"),
            Some(id.as_u64().to_string().as_str())
        );
        assert_eq!(fields.get("task.name"), Some("\"greeter\""));
        let at = fields.get("task.spawned_at").unwrap();
        assert!(at.contains(&format!("{}:{line}", file!())), "{at}");
    }
    let slow = events
        .iter()
        .find(|e| e.fields.get("in_progress") == Some("false"))
        .expect("the slow poll is a warn! event");
    assert_eq!(slow.level, tracing::Level::WARN);
    assert_eq!(
        slow.fields.get("task.id"),
        Some(id.as_u64().to_string().as_str())
    );
    assert!(slow.fields.get("message").unwrap().contains("slow poll"));
}

/// A hook that panics is reported to the subscriber as an `error!` event with the target
/// `magpie` (on stderr it would miss a service's logs), and the runtime goes on.
#[test]
fn a_panicking_hook_is_reported_as_an_error_event() {
    let recorder = recorder();
    let rt = magpie::Runtime::builder()
        .worker_threads(1)
        .on_task_panic(|_| panic!("a bug in the hook"))
        .build()
        .unwrap();
    let failing = rt.spawn(async { panic!("a bug in the task") });
    assert!(rt.block_on(failing).unwrap_err().is_panic());
    assert_eq!(
        rt.block_on(rt.spawn(async { 7 })).unwrap(),
        7,
        "the runtime goes on"
    );
    drop(rt);

    let events = recorder.0.lock().unwrap().clone();
    let report = events
        .iter()
        .find(|e| {
            e.fields
                .get("message")
                .is_some_and(|m| m.contains("the on_task_panic hook panicked"))
        })
        .unwrap_or_else(|| panic!("no event for the hook's panic: {events:?}"));
    assert_eq!(report.level, tracing::Level::ERROR);
    assert_eq!(report.target, "magpie");
}

//! The `tracing` feature: a task's log lines carry its span (id, name, spawn location), on
//! whichever worker polls it; debug mode's reports are `warn!` events.

use std::sync::{Arc, Mutex};
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

/// One recorded event: its message and level, and its span's name and fields.
#[derive(Clone, Debug)]
struct Recorded {
    level: tracing::Level,
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
            fields,
            span,
        });
    }
}

#[test]
fn a_task_logs_inside_its_span_and_slow_polls_are_warnings() {
    let recorder = Recorder::default();
    let subscriber = tracing_subscriber::registry().with(recorder.clone());
    // Global: the workers are other threads.
    tracing::subscriber::set_global_default(subscriber).unwrap();

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

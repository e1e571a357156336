#!/usr/bin/env bash
# Proves the loom models have teeth: for each deliberate bug ("mutant", planted behind
# `cfg(magpie_mutant = "NAME")` in the real code), builds the workspace with that bug and runs
# the model that should catch it. A mutant is KILLED when its model fails, and SURVIVES when
# the model passes. Exits non-zero if any mutant survives (or cannot be built or run).
#
# Usage: loom-tests/mutants.sh [NAME...]   (no names: every mutant)
# Env:   MUTANTS_TARGET_DIR  where the per-mutant builds go (default: target/loom-mutants);
#        MUTANT_TIMEOUT      seconds allowed per model run (default: 900);
#        LOOM_MAX_PREEMPTIONS (default: 2, as in CI).
# See docs/loom.md for the table of mutants.
set -uo pipefail

cd "$(dirname "$0")/.."
root="${MUTANTS_TARGET_DIR:-$PWD/target/loom-mutants}"
limit="${MUTANT_TIMEOUT:-900}"
export LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-2}"

# name | test file (loom-tests/tests/<file>.rs, or lib:PACKAGE for a model beside its code in
# that package's library, or test:PACKAGE:FILE for an ordinary integration test, built without
# loom, for a race that needs what loom cannot model: a real clock, a shutdown timeout) |
# model (for lib: its full test path) | what the bug is
mutants=(
  "stale_noop_transition|task_state|concurrent_wakes_schedule_once|a state transition decides 'nothing to do' on a plain (possibly stale) load"
  "idle_ignores_notified|task_state|wake_during_poll_repolls_once|a wake that arrives during a poll is not re-queued when the poll ends"
  "join_waker_ignores_complete|task_state|wake_during_poll_repolls_once|a JoinHandle hands over its waker slot without checking COMPLETE"
  "join_read_not_recorded|task_state|abort_racing_completion|a JoinHandle that read its task's output does not record the read, so its drop takes the output out of the stage again"
  "join_drop_fast_not_atomic|task_state|join_handle_dropped_while_task_completes|a JoinHandle gives up its interest and its reference the fast way in two read-modify-writes, so a completion in between leaves the output to nobody"
  "join_drop_fast_ignores_complete|task_state|join_handle_dropped_after_its_task_completed|a JoinHandle dropped after its task completed gives up its interest the fast way, so the output stays in the stage and nobody drops it"
  "running_ignores_cancelled|task_state|abort_of_pending_task_cancels_without_polling|a worker polls an aborted task instead of cancelling it"
  "park_skips_recheck|scheduler|spawn_from_outside_while_workers_park|a parking worker skips its last look at the queues (step c)"
  "parked_not_counted|scheduler|spawn_from_outside_while_workers_park|a parking worker is not counted out of the awake workers (step a)"
  "push_remote_ignores_shutdown|scheduler|shutdown_racing_spawn_and_wake|a remote push after shutdown's final drain is left in the injector"
  "lock_cancel_keeps_handoff|sync_lock|cancelled_waiter_passes_the_lock_on|a cancelled Lock waiter that was handed the lock keeps it"
  "event_set_wakes_one|sync_event|set_racing_wait_leaves_no_waiter_behind|Event::set wakes only the first waiter"
  "queue_close_drops_parked_values|sync_queue|close_racing_puts_delivers_or_hands_back|Queue::close drops a parked putter's item instead of handing it back"
  "queue_settle_skips_look|sync_queue|woken_waiters_and_barging_lose_no_wakeup_locked_store|a getter that announces itself does not look at the queue again before it sleeps (an item pushed just before is left unseen)"
  "semaphore_cancel_loses_permits|sync_semaphore|permits_conserved_under_cancellation|permits handed to a cancelled Semaphore waiter are lost"
  "oneshot_drop_wakes_nobody|sync_oneshot|sender_dropped_while_receiving|a oneshot Sender dropped unsent does not wake the waiting receiver"
  "oneshot_publish_ignores_transition|sync_oneshot|send_racing_receive|a oneshot Receiver publishes its waker without checking that the value came meanwhile, so it waits for a wake-up nobody will send"
  "granted_cancel_loses_permits|sync_semaphore|starved_waiter_dropped_after_the_handoff_returns_the_permit|permits handed (by a starvation handoff) to a cancelled Semaphore waiter are lost"
  "release_skips_standby_wake|lib:magpie-reactor|turn::models::event_racing_the_hand_back_is_collected|a worker releasing the driving turn leaves the sleeping reactor thread asleep"
  "request_skips_notify|lib:magpie-reactor|turn::models::a_request_interrupts_the_reactor_and_is_granted|a worker asks for the driving turn without interrupting the reactor thread's wait"
  "consume_clears_before_draining|lib:magpie-reactor|notify_flag::models::a_notification_racing_the_consume_is_never_lost|the reactor's notifier re-arms its flag before draining the eventfd, so a notification in between is drained unseen and the flag stays set for good"
  "short_read_clear_ignores_tick|lib:magpie-reactor|source::status_models::a_short_read_never_clears_a_later_edge|a short read clears the direction's READY flag without checking that no edge came since it read the tick, wiping out that edge"
  "unpark_ignores_driving|lib:magpie-executor|runtime::park::models::shutdown_with_a_worker_in_the_poller_ends|an unpark of a worker sleeping in the poller does not interrupt the poller's wait"
  "yield_push_never_notifies|scheduler|a_yield_behind_a_full_lifo_slot_wakes_a_worker|a task that yields behind a full LIFO slot wakes no worker, so it waits behind the slot's task while another worker sleeps"
  "leaving_worker_keeps_credits|scheduler|block_on_completes_while_workers_park|a worker that leaves its loop keeps the strong counts of the runtime it took as credits, so the runtime is never freed"
  "self_wake_not_requeued|scheduler|a_yield_behind_a_full_lifo_slot_wakes_a_worker|a task's wake of itself during its poll, recorded on the worker's thread, is forgotten when the poll ends, so nothing queues the task again"
  "unpolled_entry_dropped_unlisted|scheduler|a_task_spawned_by_a_task_and_never_polled_is_cancelled_at_shutdown|a worker leaving at shutdown drops the queue entry of a task it spawned and never polled without listing it, so nothing cancels the task"
  "overflow_batches_left_at_shutdown|scheduler|tasks_in_an_overflow_batch_at_shutdown_are_cancelled|shutdown leaves the overflow batches queued, so the tasks in them that were spawned by a task and never polled are never cancelled"
  "resume_ignores_cancelled|scheduler|a_task_aborted_while_its_yield_waits_is_cancelled_not_polled|a worker resuming a yielded task's carried entry (which kept RUNNING) polls it without looking for an abort that came while it waited"
  "carried_drop_keeps_running|scheduler|a_yielding_task_is_cancelled_at_shutdown|a yielded task's carried entry dropped by a worker leaving at shutdown keeps the task's RUNNING bit, so shutdown takes the task for a running one and never cancels it"
  "plain_free_keeps_join_waker|test:magpie-executor:wake|a_join_waker_left_in_its_slot_is_dropped_when_the_task_is_freed_on_a_worker|a task freed on a worker the way that needs no drop glue (Header::drop_plain) takes a join waker left in its slot for an empty slot, so the waker leaks"
  "running_at_close_left|test:magpie-executor:shutdown|a_task_left_waiting_by_a_poll_that_outlasted_the_shutdown_is_cancelled_when_its_worker_leaves|a worker left running by a shutdown timeout leaves without cancelling the tasks the walk of the live-task list found it running, so a task its poll left waiting or queued again (woken, or yielding) is cancelled by nobody and its JoinHandle never resolves"
  "dead_worker_keeps_its_place|lib:magpie-executor|runtime::idle::models::a_worker_that_dies_parked_leaves_the_wake_up_to_the_live_one|a worker whose loop unwinds keeps its place in the idle bookkeeping: left on the list of sleepers, a producer wakes it instead of the live worker (or, taken off by one, it counts as a searcher for ever, and producers wake nobody)"
  "dead_sleeper_skips_its_look|lib:magpie-executor|runtime::idle::models::a_searcher_that_dies_parked_before_its_last_look_leaves_the_wake_up_to_the_live_one|a worker whose loop unwinds after registering as parked wakes nobody in its stead, as if it had made its last look at the queues: a task pushed while it was the last searcher (the producer woke nobody, counting on that look) waits while the live worker sleeps"
  "lifo_take_not_atomic|lib:magpie-executor|runtime::lifo::models::every_entry_comes_out_once_whoever_takes_it|a worker takes its LIFO slot's task with a load and a store, so the monitor can take the same task in between"
)

selected=("$@")
is_selected() {
  [[ ${#selected[@]} -eq 0 ]] && return 0
  local s
  for s in "${selected[@]}"; do [[ "$s" == "$1" ]] && return 0; done
  return 1
}

status=0
results=()
for entry in "${mutants[@]}"; do
  IFS='|' read -r name file model what <<<"$entry"
  is_selected "$name" || continue
  target="$root/$name"
  flags="--cfg loom --cfg magpie_mutant=\"$name\""
  log="$target/mutant.log"
  mkdir -p "$target"
  echo "== mutant $name -> $file::$model"
  if [[ "$file" == lib:* ]]; then
    target_args=(-p "${file#lib:}" --release --lib)
  elif [[ "$file" == test:* ]]; then
    spec="${file#test:}"
    flags="--cfg magpie_mutant=\"$name\""
    target_args=(-p "${spec%%:*}" --test "${spec#*:}")
  else
    target_args=(-p magpie-loom-tests --release --test "$file")
  fi
  if ! RUSTFLAGS="$flags" CARGO_TARGET_DIR="$target" \
      cargo test "${target_args[@]}" --no-run >"$log" 2>&1; then
    echo "   BUILD FAILED (see $log)"
    results+=("$name|$file::$model|build failed")
    status=1
    continue
  fi
  start=$(date +%s)
  RUSTFLAGS="$flags" CARGO_TARGET_DIR="$target" timeout "$limit" \
    cargo test "${target_args[@]}" -- --exact "$model" >>"$log" 2>&1
  rc=$?
  secs=$(( $(date +%s) - start ))
  if [[ $rc -eq 0 ]]; then
    echo "   SURVIVED: the model passed with the bug in (${secs}s)"
    results+=("$name|$file::$model|SURVIVED")
    status=1
  elif [[ $rc -eq 124 ]]; then
    echo "   TIMEOUT after ${limit}s: inconclusive (see $log)"
    results+=("$name|$file::$model|timeout")
    status=1
  else
    # Why the model failed: loom's verdict if it gave one, else the model's own assertion.
    reason=""
    for pattern in "deadlock" "Arc leaked" "Allocation leaked" "Causality violation" \
        "polled again without a new wake" "was accepted but lost" \
        "delivered and handed back" "lock state: .*" "assertion .*failed" "panicked at [^ ]*"; do
      reason=$(grep -m1 -oE "$pattern" "$log") && break
    done
    echo "   killed in ${secs}s: ${reason:-model failed}"
    results+=("$name|$file::$model|killed (${reason:-model failed})")
  fi
done

echo
echo "mutant | model | result"
for r in "${results[@]}"; do echo "$r" | sed 's/|/ | /g'; done
exit $status

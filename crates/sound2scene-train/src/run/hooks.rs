//! How a caller watches and steers a run: a stop flag and three optional hooks.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::control::{Control, Outcome};

/// Called with each batch before it enters the model, with the step it is for (1-based).
pub type BatchHook<B> = Box<dyn FnMut(u64, &mut B)>;
/// Called after each optimizer step with the loop's step report.
pub type StepHook<R> = Box<dyn FnMut(&R) -> Control>;
/// Called after each epoch with the loop's epoch report.
pub type EpochHook<E> = Box<dyn FnMut(&E) -> Control>;

/// Ways for the caller to watch and steer a run: `B` is the loop's batch, `R` its step report,
/// `E` its epoch report (loops without epochs never call [`on_epoch_end`](Self::on_epoch_end)).
pub struct Hooks<B, R, E = ()> {
    /// Set it (e.g. from a Ctrl-C handler) to make the loop write a checkpoint after the
    /// current step and return [`Outcome::Stopped`].
    pub stop: Arc<AtomicBool>,
    /// Inspect or modify each batch before the model sees it (tests poison it with NaN).
    pub on_batch: Option<BatchHook<B>>,
    /// Called after every optimizer step.
    pub on_step: Option<StepHook<R>>,
    /// Called after every epoch, after its checkpoint.
    pub on_epoch_end: Option<EpochHook<E>>,
}

impl<B, R, E> Default for Hooks<B, R, E> {
    fn default() -> Self {
        Self {
            stop: Arc::default(),
            on_batch: None,
            on_step: None,
            on_epoch_end: None,
        }
    }
}

impl<B, R, E> std::fmt::Debug for Hooks<B, R, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hooks")
            .field("stop", &self.stop.load(Ordering::Relaxed))
            .field("on_batch", &self.on_batch.is_some())
            .field("on_step", &self.on_step.is_some())
            .field("on_epoch_end", &self.on_epoch_end.is_some())
            .finish()
    }
}

impl<B, R, E> Hooks<B, R, E> {
    /// A clone of the stop flag, to hand to a signal handler (e.g.
    /// `ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst))`).
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.stop)
    }

    /// Whether a stop was requested (by the flag or a hook's [`Control::Stop`]).
    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Why a run at `step` (optimizer steps done) should end now: [`Outcome::Stopped`] when a
    /// stop was requested, [`Outcome::MaxSteps`] when `step` reached `max_steps`.
    pub fn stop_requested(&self, step: u64, max_steps: Option<u64>) -> Option<Outcome> {
        if self.stopping() {
            return Some(Outcome::Stopped);
        }
        max_steps
            .is_some_and(|max| step >= max)
            .then_some(Outcome::MaxSteps)
    }

    /// Hands `batch` of `step` to [`on_batch`](Self::on_batch), if set.
    pub fn before_batch(&mut self, step: u64, batch: &mut B) {
        if let Some(hook) = self.on_batch.as_mut() {
            hook(step, batch);
        }
    }

    /// Hands a step's report to [`on_step`](Self::on_step) and returns its answer
    /// ([`Control::Continue`] without a hook); [`Control::Stop`] also raises the stop flag.
    pub fn after_step(&mut self, report: &R) -> Control {
        let control = self
            .on_step
            .as_mut()
            .map_or(Control::Continue, |h| h(report));
        self.raise_on_stop(control)
    }

    /// Hands an epoch's report, made by `report` only when there is a hook, to
    /// [`on_epoch_end`](Self::on_epoch_end) and returns its answer; [`Control::Stop`] also
    /// raises the stop flag.
    pub fn after_epoch(&mut self, report: impl FnOnce() -> E) -> Control {
        let control = self
            .on_epoch_end
            .as_mut()
            .map_or(Control::Continue, |h| h(&report()));
        self.raise_on_stop(control)
    }

    fn raise_on_stop(&self, control: Control) -> Control {
        if control == Control::Stop {
            self.stop.store(true, Ordering::SeqCst);
        }
        control
    }
}

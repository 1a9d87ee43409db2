//! What every training loop shares with its caller: the [`Control`] a hook answers after a step
//! or an epoch, and the [`Outcome`] a run ends with. The alignment, IC-GAN, SwAV and selector
//! loops all speak these.

/// What a hook asks the loop to do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Control {
    /// Go on.
    #[default]
    Continue,
    /// Write a checkpoint and return (as Ctrl-C does).
    Stop,
    /// Return at once without writing anything, as if the process were killed (for tests of
    /// crash recovery).
    Abort,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// All epochs (or steps) the configuration asks for are done.
    Finished,
    /// `max_steps` reached.
    MaxSteps,
    /// The stop flag was set or a hook returned [`Control::Stop`]; a checkpoint was written.
    Stopped,
    /// A hook returned [`Control::Abort`]; nothing was written after the last checkpoint.
    Aborted,
}

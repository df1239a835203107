//! The dealer's tables: procedures, their registrations, and calls in flight.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use wamp_proto::message::Id;
use wamp_proto::random_id;

use crate::session::SessionHandle;
use crate::{CallLimits, IdMap};

/// One registration: a procedure and the callee that serves it.
pub struct Registration {
    /// The procedure URI.
    pub procedure: String,
    /// The session that registered it.
    pub callee: Arc<SessionHandle>,
    /// Most invocations of this registration in flight at once (`REGISTER.Options.concurrency`).
    pub concurrency: Option<usize>,
    /// Invocations of this registration in flight.
    pub in_flight: usize,
}

/// A call waiting for its callee's YIELD or ERROR.
pub struct PendingCall {
    /// Who called.
    pub caller: Arc<SessionHandle>,
    /// Who was invoked.
    pub callee: Arc<SessionHandle>,
    /// The caller's CALL request id (RESULT and ERROR mirror it).
    pub call_request: Id,
    /// The registration that was invoked.
    pub registration: Id,
}

/// Registrations and pending calls of one realm.
#[derive(Default)]
pub struct Dealer {
    by_procedure: HashMap<String, Id>,
    registrations: IdMap<Id, Registration>,
    /// Keyed by (callee session, INVOCATION request id).
    pending: IdMap<(Id, Id), PendingCall>,
}

/// Why a registration was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegisterError {
    /// Someone already registered the procedure.
    AlreadyExists,
}

/// Why a call could not be started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallRefused {
    /// The caller has as many calls in flight as it may.
    CallerBusy,
    /// The callee (or its registration) has as many invocations in flight as it may.
    CalleeBusy,
}

impl Dealer {
    /// Registers `procedure` for `callee`.
    pub fn register(
        &mut self,
        procedure: &str,
        callee: &Arc<SessionHandle>,
        concurrency: Option<usize>,
    ) -> Result<Id, RegisterError> {
        if self.by_procedure.contains_key(procedure) {
            return Err(RegisterError::AlreadyExists);
        }
        let id = loop {
            let candidate = random_id();
            if !self.registrations.contains_key(&candidate) {
                break candidate;
            }
        };
        self.by_procedure.insert(procedure.to_owned(), id);
        self.registrations.insert(
            id,
            Registration {
                procedure: procedure.to_owned(),
                callee: callee.clone(),
                concurrency,
                in_flight: 0,
            },
        );
        Ok(id)
    }

    /// Removes a registration held by `callee`. Returns whether it existed.
    pub fn unregister(&mut self, registration: Id, callee: Id) -> bool {
        match self.registrations.get(&registration) {
            Some(r) if r.callee.id == callee => {}
            _ => return false,
        }
        if let Some(r) = self.registrations.remove(&registration) {
            self.by_procedure.remove(&r.procedure);
        }
        true
    }

    /// The registration serving exactly `procedure`.
    pub fn lookup(&self, procedure: &str) -> Option<(Id, &Registration)> {
        let id = *self.by_procedure.get(procedure)?;
        self.registrations.get(&id).map(|r| (id, r))
    }

    /// Records a call in flight, unless a bound says no: the caller's and callee's
    /// in-flight limits (`limits`) and the registration's `concurrency`.
    pub fn start_call(
        &mut self,
        invocation: Id,
        call: PendingCall,
        limits: &CallLimits,
    ) -> Result<(), CallRefused> {
        let callee = &call.callee;
        let Some(reg) = self.registrations.get_mut(&call.registration) else {
            return Err(CallRefused::CalleeBusy);
        };
        if call.caller.calls_in_flight.load(Ordering::Relaxed) >= limits.per_caller {
            return Err(CallRefused::CallerBusy);
        }
        if callee.invocations_in_flight.load(Ordering::Relaxed) >= limits.per_callee
            || reg.concurrency.is_some_and(|max| reg.in_flight >= max)
        {
            return Err(CallRefused::CalleeBusy);
        }
        reg.in_flight += 1;
        call.caller.calls_in_flight.fetch_add(1, Ordering::Relaxed);
        callee.invocations_in_flight.fetch_add(1, Ordering::Relaxed);
        self.pending.insert((callee.id, invocation), call);
        Ok(())
    }

    /// Takes the pending call a callee's YIELD or ERROR answers.
    pub fn finish_call(&mut self, callee: Id, invocation: Id) -> Option<PendingCall> {
        let call = self.pending.remove(&(callee, invocation))?;
        self.release(&call);
        Some(call)
    }

    /// Undoes a started call's counts.
    fn release(&mut self, call: &PendingCall) {
        if let Some(reg) = self.registrations.get_mut(&call.registration) {
            reg.in_flight = reg.in_flight.saturating_sub(1);
        }
        call.caller.calls_in_flight.fetch_sub(1, Ordering::Relaxed);
        call.callee
            .invocations_in_flight
            .fetch_sub(1, Ordering::Relaxed);
    }

    /// Removes everything a leaving session held. Returns the calls that were waiting
    /// on it as callee (their callers must be told), and drops the calls it made as
    /// caller (late answers will be ignored).
    pub fn remove_session(&mut self, session: Id) -> Vec<PendingCall> {
        let procedures = &mut self.by_procedure;
        self.registrations.retain(|_, r| {
            let keep = r.callee.id != session;
            if !keep {
                procedures.remove(&r.procedure);
            }
            keep
        });
        let mut orphaned = Vec::new();
        let keys: Vec<(Id, Id)> = self
            .pending
            .iter()
            .filter(|((callee, _), call)| *callee == session || call.caller.id == session)
            .map(|(k, _)| *k)
            .collect();
        for key in keys {
            let Some(call) = self.pending.remove(&key) else {
                continue;
            };
            // A leaving caller's calls no longer count against their callee: its
            // answer will be dropped.
            self.release(&call);
            if key.0 == session && call.caller.id != session {
                orphaned.push(call);
            }
        }
        orphaned
    }

    /// Number of registrations.
    pub fn registration_count(&self) -> usize {
        self.registrations.len()
    }

    /// Number of calls in flight.
    pub fn pending_count(&self) -> usize {
        self.pending.len()
    }
}

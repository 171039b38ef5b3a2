//! Single-flight `get_or_set` for a thread-safe cache: callers that miss on
//! one key at once run one `factory()`; the others wait for its result or
//! its exception.
//!
//! The flights under way live in a dict of the cache, by key. Joining is
//! `dict.setdefault`, atomic in CPython (with or without the GIL), and runs
//! the key's `__hash__`/`__eq__` with no lock of ours held. A waiter blocks
//! on the flight's condition variable with the GIL released. The dict
//! compares keys with their own `==`, which for str subclasses is not
//! always the cache's text comparison: two such keys that the cache holds
//! as one may then run two factories, and the second store finds the
//! first's entry and returns it, as `get_or_set` always does.

use std::thread::ThreadId;

use parking_lot::{Condvar, Mutex};
use pyo3::exceptions::PyRuntimeError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// One `factory()` under way, and its outcome once it lands.
#[pyclass(frozen, name = "GetOrSetFlight", module = "flexcache._core")]
pub(crate) struct Flight {
    leader: ThreadId,
    outcome: Mutex<Option<PyResult<Py<PyAny>>>>,
    landed: Condvar,
}

impl std::fmt::Debug for Flight {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Flight")
            .field("leader", &self.leader)
            .field("landed", &self.outcome.lock().is_some())
            .finish_non_exhaustive()
    }
}

/// What joining a key's flight made of the caller.
pub(crate) enum Joined<'py> {
    /// Another caller computes: wait for its outcome.
    Waiter(Bound<'py, Flight>),
    /// This caller computes, and must land the flight.
    Leader(Leader<'py>),
}

impl Flight {
    /// Joins the flight for `key` in `in_flight`, starting one if there is
    /// none.
    pub(crate) fn join<'py>(
        in_flight: &Bound<'py, PyDict>,
        key: &Bound<'py, PyAny>,
    ) -> PyResult<Joined<'py>> {
        let py = in_flight.py();
        let flight = Bound::new(
            py,
            Flight {
                leader: std::thread::current().id(),
                outcome: Mutex::new(None),
                landed: Condvar::new(),
            },
        )?;
        let current = in_flight.call_method1(intern!(py, "setdefault"), (key, &flight))?;
        if current.is(&flight) {
            return Ok(Joined::Leader(Leader {
                in_flight: in_flight.clone(),
                key: key.clone(),
                flight,
                landed: false,
            }));
        }
        let current = current.cast_into::<Flight>()?;
        if current.get().leader == std::thread::current().id() {
            // The factory of this very flight asked for its key: waiting
            // would never end.
            return Err(PyRuntimeError::new_err(
                "get_or_set re-entered for the key whose factory is running in this thread",
            ));
        }
        Ok(Joined::Waiter(current))
    }

    /// Waits, with the GIL released, for the flight to land; its result,
    /// or its exception.
    pub(crate) fn outcome<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        py.detach(|| {
            let mut outcome = self.outcome.lock();
            while outcome.is_none() {
                self.landed.wait(&mut outcome);
            }
        });
        match &*self.outcome.lock() {
            Some(Ok(value)) => Ok(value.bind(py).clone()),
            Some(Err(error)) => Err(error.clone_ref(py)),
            None => unreachable!("waited until the flight landed"),
        }
    }
}

/// The computing caller's hold on its flight. Landing it (or dropping it
/// unlanded, on a panic) takes it out of the dict and wakes every waiter.
pub(crate) struct Leader<'py> {
    in_flight: Bound<'py, PyDict>,
    key: Bound<'py, PyAny>,
    flight: Bound<'py, Flight>,
    landed: bool,
}

impl Leader<'_> {
    /// Hands `outcome` to the waiters.
    ///
    /// # Errors
    /// What taking the flight out of the dict raised (the key's `__eq__`).
    pub(crate) fn land(mut self, outcome: &PyResult<Bound<'_, PyAny>>) -> PyResult<()> {
        let py = self.in_flight.py();
        let shared = match outcome {
            Ok(value) => Ok(value.clone().unbind()),
            Err(error) => Err(error.clone_ref(py)),
        };
        self.landed = true;
        let removed = self.take_out();
        self.publish(shared);
        removed
    }

    /// Takes the flight out of the dict, if it is still the key's.
    fn take_out(&self) -> PyResult<()> {
        let current = self.in_flight.get_item(&self.key)?;
        if current.is_some_and(|current| current.is(&self.flight)) {
            self.in_flight.del_item(&self.key)?;
        }
        Ok(())
    }

    fn publish(&self, outcome: PyResult<Py<PyAny>>) {
        let flight = self.flight.get();
        *flight.outcome.lock() = Some(outcome);
        flight.landed.notify_all();
    }
}

impl Drop for Leader<'_> {
    fn drop(&mut self) {
        if !self.landed {
            // Unwinding past the factory: the waiters must not wait forever.
            let _ = self.take_out();
            self.publish(Err(PyRuntimeError::new_err(
                "the get_or_set computation this call waited for did not finish",
            )));
        }
    }
}

impl std::fmt::Debug for Leader<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leader")
            .field("landed", &self.landed)
            .finish_non_exhaustive()
    }
}

//! Every argument rule of the Python API, each in one place: the type and
//! value checks of SPEC.md, with the exact exception types it names.

use pyo3::exceptions::{PyOSError, PyOverflowError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{
    PyBool, PyDateAccess, PyDateTime, PyDelta, PyDeltaAccess, PyDict, PyFloat, PyInt, PyString,
    PyTimeAccess, PyTzInfoAccess,
};
use pyo3::{intern, Borrowed};

use crate::clock::Clock;
use crate::engine::time::{deadline_after, seconds_to_nanos, Nanos, NANOS_PER_SECOND, NEVER};
use crate::engine::EvictionPolicy;

/// An optional argument that tells "not passed" from an explicit `None`,
/// so that `FlexCache(eviction_policy=None)` is a `TypeError` while leaving
/// it out means the default.
#[derive(Debug)]
pub(crate) enum Arg<'py> {
    Missing,
    Given(Bound<'py, PyAny>),
}

impl<'a, 'py> FromPyObject<'a, 'py> for Arg<'py> {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        Ok(Arg::Given(obj.to_owned()))
    }
}

/// Drops an error that is handled rather than returned, inside
/// `Python::attach`.
///
/// The rule of the fast bodies (src/py/fastcall.rs, module docs): they run
/// on a thread pyo3 does not count as attached, where dropping a `PyErr`
/// (the `Py` objects of a normalized one, or what a lazy one captured)
/// would send its objects to pyo3's deferred reference pool until some
/// later call through pyo3's wrapper drained it. Attaching counts the
/// thread, so the drop is immediate, and from an uncounted thread it also
/// drains the pool. Every error a body discards (`.ok()`, `unwrap_or`,
/// `is_ok_and`, an `Err(_)` arm) goes through here instead. Cold: the
/// attach (`PyGILState_Ensure`) stays out of the paths that do not fail.
#[cold]
#[inline(never)]
pub(crate) fn discard(error: PyErr) {
    Python::attach(|_| drop(error));
}

/// The name of `obj`'s type, for error messages.
pub(crate) fn type_name(obj: &Bound<'_, PyAny>) -> String {
    match obj.get_type().name() {
        Ok(name) => name.to_string(),
        Err(error) => {
            discard(error);
            "?".to_owned()
        }
    }
}

/// A duration given as int or float seconds (or, where allowed, a
/// `timedelta`), before the caller's own range rule is applied.
enum Duration {
    /// Non-negative, in nanoseconds, saturated at `u64::MAX`.
    Nanos(u64),
    Infinite,
    /// Negative or NaN.
    Invalid,
}

fn duration(obj: &Bound<'_, PyAny>, what: &str, accept_timedelta: bool) -> PyResult<Duration> {
    if obj.is_instance_of::<PyBool>() {
        return Err(PyTypeError::new_err(format!(
            "{what} must be a number of seconds, not bool"
        )));
    }
    if obj.is_instance_of::<PyInt>() {
        match obj.extract::<u64>() {
            Ok(seconds) => return Ok(Duration::Nanos(seconds.saturating_mul(NANOS_PER_SECOND))),
            // Out of u64: negative, or so large that it saturates.
            Err(error) => discard(error),
        }
        return Ok(if obj.lt(0)? {
            Duration::Invalid
        } else {
            Duration::Nanos(u64::MAX)
        });
    }
    if obj.is_instance_of::<PyFloat>() {
        let seconds: f64 = obj.extract()?;
        return Ok(if seconds.is_nan() || seconds < 0.0 {
            Duration::Invalid
        } else if seconds.is_infinite() {
            Duration::Infinite
        } else {
            Duration::Nanos(seconds_to_nanos(seconds))
        });
    }
    if accept_timedelta {
        if let Ok(delta) = obj.cast::<PyDelta>() {
            let micros = i128::from(delta.get_days()) * 86_400_000_000
                + i128::from(delta.get_seconds()) * 1_000_000
                + i128::from(delta.get_microseconds());
            return Ok(if micros < 0 {
                Duration::Invalid
            } else {
                Duration::Nanos(u64::try_from(micros * 1_000).unwrap_or(u64::MAX))
            });
        }
    }
    let accepted = if accept_timedelta {
        "int or float seconds or a timedelta"
    } else {
        "int or float seconds"
    };
    Err(PyTypeError::new_err(format!(
        "{what} must be {accepted}, not {}",
        type_name(obj)
    )))
}

pub(crate) fn eviction_policy(
    arg: Arg<'_>,
) -> PyResult<(EvictionPolicy, Option<Bound<'_, PyAny>>)> {
    let Arg::Given(obj) = arg else {
        return Ok((EvictionPolicy::Lru, None));
    };
    let choices = || {
        EvictionPolicy::ALL
            .map(|p| format!("'{}'", p.name()))
            .join(", ")
    };
    let Ok(text) = obj.cast::<PyString>() else {
        if super::policy::is_eviction_policy(&obj)? {
            return Ok((EvictionPolicy::External, Some(obj)));
        }
        return Err(PyTypeError::new_err(format!(
            "eviction_policy must be a str, one of {}, or a flexcache.EvictionPolicy; got {}",
            choices(),
            type_name(&obj)
        )));
    };
    let policy = text.to_str().ok().and_then(EvictionPolicy::from_name);
    let policy = policy.ok_or_else(|| {
        PyValueError::new_err(format!(
            "eviction_policy must be one of {}, not {}",
            choices(),
            obj.repr()
                .map_or_else(|_| "?".to_owned(), |r| r.to_string())
        ))
    })?;
    Ok((policy, None))
}

/// The scan interval in nanoseconds ([`NEVER`] for infinity) and as the
/// float seconds the user gave.
pub(crate) fn scan_interval(arg: Arg<'_>) -> PyResult<(Nanos, f64)> {
    let Arg::Given(obj) = arg else {
        return Ok((0, 0.0));
    };
    let nanos = match duration(&obj, "scan_interval", false)? {
        Duration::Nanos(nanos) => nanos,
        Duration::Infinite => NEVER,
        Duration::Invalid => {
            return Err(PyValueError::new_err(
                "scan_interval must be >= 0 (and not NaN)",
            ));
        }
    };
    // An int too large for a float is, in seconds, as good as infinite.
    let seconds: f64 = obj.extract().unwrap_or(f64::INFINITY);
    Ok((nanos, seconds))
}

/// `background_scan`: None (off), or seconds, an int or float `> 0` and
/// finite.
pub(crate) fn background_scan(arg: Option<&Bound<'_, PyAny>>) -> PyResult<Option<f64>> {
    let Some(obj) = arg.filter(|obj| !obj.is_none()) else {
        return Ok(None);
    };
    if obj.is_instance_of::<PyBool>()
        || !(obj.is_instance_of::<PyInt>() || obj.is_instance_of::<PyFloat>())
    {
        return Err(PyTypeError::new_err(format!(
            "background_scan must be seconds (an int or a float) or None, not {}",
            type_name(obj)
        )));
    }
    let seconds: f64 = obj.extract()?;
    if !(seconds.is_finite() && seconds > 0.0) {
        return Err(PyValueError::new_err(
            "background_scan must be > 0 seconds and finite",
        ));
    }
    Ok(Some(seconds))
}

/// `max_items` or `max_bytes`: an int in `0..=2**63-1`.
pub(crate) fn limit(arg: Arg<'_>, what: &str) -> PyResult<u64> {
    let Arg::Given(obj) = arg else {
        return Ok(0);
    };
    if obj.is_instance_of::<PyBool>() || !obj.is_instance_of::<PyInt>() {
        return Err(PyTypeError::new_err(format!(
            "{what} must be an int, not {}",
            type_name(&obj)
        )));
    }
    if obj.lt(0)? {
        return Err(PyValueError::new_err(format!(
            "{what} must be >= 0 (0 means unlimited)"
        )));
    }
    match obj.extract::<i64>() {
        Ok(value) => Ok(value as u64),
        Err(_) => Err(PyOverflowError::new_err(format!(
            "{what} must be at most 2**63-1"
        ))),
    }
}

/// `weigher=` or `on_remove=`: a callable, or None for none.
pub(crate) fn optional_callable(
    obj: Option<&Bound<'_, PyAny>>,
    what: &str,
) -> PyResult<Option<Py<PyAny>>> {
    match obj {
        None => Ok(None),
        Some(obj) if obj.is_none() => Ok(None),
        Some(obj) if obj.is_callable() => Ok(Some(obj.clone().unbind())),
        Some(obj) => Err(PyTypeError::new_err(format!(
            "{what} must be callable or None, not {}",
            type_name(obj)
        ))),
    }
}

/// A parsed `ttl`, before it is anchored to the clock.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Ttl {
    Never,
    After(u64),
    /// An absolute wall-clock expiry, in seconds since the Unix epoch.
    AtWallSeconds(f64),
}

impl Ttl {
    /// The deadline on the monotonic clock, reading the wall through the
    /// same clock as `now` so that a manual clock moves both.
    pub(crate) fn deadline(self, now: Nanos, clock: &Clock) -> Nanos {
        match self {
            Ttl::Never => NEVER,
            Ttl::After(nanos) => deadline_after(now, nanos),
            Ttl::AtWallSeconds(at) => {
                let remaining = at - clock.wall_seconds();
                if remaining > 0.0 {
                    deadline_after(now, seconds_to_nanos(remaining))
                } else {
                    now
                }
            }
        }
    }
}

/// Inline for the usual `None`; the rest is out of line.
#[inline(always)]
pub(crate) fn ttl(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Ttl> {
    match obj {
        None => Ok(Ttl::Never),
        Some(obj) if obj.is_none() => Ok(Ttl::Never),
        Some(obj) => ttl_of(obj),
    }
}

#[inline(never)]
fn ttl_of(obj: &Bound<'_, PyAny>) -> PyResult<Ttl> {
    if let Ok(moment) = obj.cast::<PyDateTime>() {
        return Ok(Ttl::AtWallSeconds(timestamp(moment)?));
    }
    match duration(obj, "ttl", true)? {
        Duration::Nanos(0) | Duration::Invalid => Err(PyValueError::new_err("ttl must be > 0")),
        Duration::Infinite => Err(PyValueError::new_err(
            "ttl must be finite (use None for no expiry)",
        )),
        Duration::Nanos(nanos) => Ok(Ttl::After(nanos)),
    }
}

/// Seconds since the epoch of a datetime, as `datetime.timestamp()` reads
/// it: naive means local time, and so does a tzinfo whose `utcoffset()` is
/// None (Python's own definition of naive, which `timestamp()` itself
/// rejects). The offset is read first, so a raising or invalid `utcoffset()`
/// propagates. Only in the first and last years of the datetime range, where
/// the conversion itself can overflow, does a fallback count whole days from
/// the epoch and ignore the zone's offset of at most a day.
fn timestamp(moment: &Bound<'_, PyDateTime>) -> PyResult<f64> {
    let py = moment.py();
    let mut moment = moment.clone();
    if moment.get_tzinfo().is_some() && moment.call_method0(intern!(py, "utcoffset"))?.is_none() {
        let kwargs = PyDict::new(py);
        kwargs.set_item(intern!(py, "tzinfo"), py.None())?;
        moment = moment
            .call_method(intern!(py, "replace"), (), Some(&kwargs))?
            .cast_into()?;
    }
    match moment.call_method0(intern!(py, "timestamp")) {
        Ok(seconds) => seconds.extract(),
        Err(error)
            if (moment.get_year() <= 1 || moment.get_year() >= 9999)
                && (error.is_instance_of::<PyOverflowError>(py)
                    || error.is_instance_of::<PyValueError>(py)
                    || error.is_instance_of::<PyOSError>(py)) =>
        {
            const EPOCH_ORDINAL: i64 = 719_163; // date(1970, 1, 1).toordinal()
            discard(error);
            let ordinal: i64 = moment.call_method0(intern!(py, "toordinal"))?.extract()?;
            let seconds_of_day = i64::from(moment.get_hour()) * 3_600
                + i64::from(moment.get_minute()) * 60
                + i64::from(moment.get_second());
            Ok(((ordinal - EPOCH_ORDINAL) * 86_400 + seconds_of_day) as f64)
        }
        Err(error) => Err(error),
    }
}

/// A `ManualClock.advance` step: seconds or a timedelta, finite, `>= 0`.
pub(crate) fn advance_step(obj: &Bound<'_, PyAny>) -> PyResult<u64> {
    match duration(obj, "advance() step", true)? {
        Duration::Nanos(nanos) => Ok(nanos),
        Duration::Infinite | Duration::Invalid => Err(PyValueError::new_err(
            "advance() step must be finite and >= 0: time does not go back",
        )),
    }
}

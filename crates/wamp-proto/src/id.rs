//! WAMP identifiers.
//!
//! WAMP IDs are integers in the closed range `[1, 2^53]` (`0` is reserved and
//! never a valid ID). The spec distinguishes three scopes:
//!
//! * **global** scope (session IDs, publication IDs): drawn uniformly at random
//!   over the whole range, see [`random_id`];
//! * **router** scope (subscription and registration IDs): the router may
//!   choose them freely; [`random_id`] is a fine choice;
//! * **session** scope (request IDs): start at 1, go up by 1 and wrap back to 1
//!   after `2^53`, separately for each direction of a session, see
//!   [`SessionScopeIds`].

/// The largest valid WAMP ID, `2^53` (9007199254740992).
///
/// This is the largest integer up to which every integer is exactly
/// representable as an IEEE 754 double, so IDs survive JavaScript peers.
pub const MAX_ID: u64 = 1 << 53;

/// Returns `true` if `id` is a valid WAMP ID, i.e. lies in `1..=MAX_ID`.
pub fn is_valid_id(id: u64) -> bool {
    (1..=MAX_ID).contains(&id)
}

/// Draws a global-scope ID uniformly at random from `1..=MAX_ID`.
///
/// Use this for session IDs and publication IDs, which the spec requires to
/// be random over the whole ID range. It uses the thread-local generator of
/// the `rand` crate.
pub fn random_id() -> u64 {
    rand::random_range(1..=MAX_ID)
}

/// Generator of session-scope IDs: 1, 2, 3, …, `MAX_ID`, then 1 again.
///
/// Keep one generator per direction of a session (e.g. a client uses one for
/// the request IDs of everything it sends; a router uses one per session for
/// INVOCATION request IDs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionScopeIds {
    /// The ID handed out last; `0` before the first call to [`Self::next`].
    last: u64,
}

impl SessionScopeIds {
    /// Creates a generator whose first [`next`](Self::next) returns 1.
    pub fn new() -> Self {
        Self::default()
    }

    /// Creates a generator that continues after `last`: the first
    /// [`next`](Self::next) returns `last + 1`, or 1 if `last >= MAX_ID`.
    ///
    /// `starting_after(0)` is the same as [`new`](Self::new). Useful for
    /// tests of the wrap-around and for resuming a sequence.
    pub fn starting_after(last: u64) -> Self {
        Self { last }
    }

    /// The ID returned by the last call to [`next`](Self::next), or `None`
    /// if none was handed out yet (and the generator was not created with
    /// [`starting_after`](Self::starting_after) a valid ID).
    pub fn last(&self) -> Option<u64> {
        is_valid_id(self.last).then_some(self.last)
    }

    /// Returns the next ID of the sequence: the previous one plus 1, wrapping
    /// from `MAX_ID` back to 1.
    #[allow(clippy::should_implement_trait)] // not an iterator: it never ends
    pub fn next(&mut self) -> u64 {
        self.last = if self.last >= MAX_ID {
            1
        } else {
            self.last + 1
        };
        self.last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_id_is_two_to_the_53() {
        assert_eq!(MAX_ID, 9_007_199_254_740_992);
    }

    #[test]
    fn valid_id_range() {
        assert!(!is_valid_id(0));
        assert!(is_valid_id(1));
        assert!(is_valid_id(MAX_ID));
        assert!(!is_valid_id(MAX_ID + 1));
        assert!(!is_valid_id(u64::MAX));
    }

    #[test]
    fn session_ids_start_at_one_and_count_up() {
        let mut ids = SessionScopeIds::new();
        assert_eq!(ids.last(), None);
        assert_eq!(ids.next(), 1);
        assert_eq!(ids.next(), 2);
        assert_eq!(ids.next(), 3);
        assert_eq!(ids.last(), Some(3));
    }

    #[test]
    fn default_equals_new() {
        assert_eq!(SessionScopeIds::default(), SessionScopeIds::new());
        assert_eq!(SessionScopeIds::starting_after(0), SessionScopeIds::new());
    }

    #[test]
    fn session_ids_wrap_after_max_id() {
        let mut ids = SessionScopeIds::starting_after(MAX_ID - 2);
        assert_eq!(ids.next(), MAX_ID - 1);
        assert_eq!(ids.next(), MAX_ID);
        assert_eq!(ids.next(), 1);
        assert_eq!(ids.next(), 2);
    }

    #[test]
    fn out_of_range_start_wraps_to_one() {
        let mut ids = SessionScopeIds::starting_after(u64::MAX);
        assert_eq!(ids.last(), None);
        assert_eq!(ids.next(), 1);
    }

    #[test]
    fn clones_are_independent() {
        let mut a = SessionScopeIds::new();
        a.next();
        let mut b = a.clone();
        assert_eq!(a.next(), 2);
        assert_eq!(b.next(), 2);
        assert_eq!(a.next(), 3);
    }

    #[test]
    fn random_ids_are_in_range() {
        let draws: Vec<u64> = (0..10_000).map(|_| random_id()).collect();
        assert!(draws.iter().all(|&id| is_valid_id(id)));
        // Uniform over 2^53 values: 10_000 draws are all distinct with
        // overwhelming probability, and about half lie in the upper half.
        let mut sorted = draws.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), draws.len());
        let upper = draws.iter().filter(|&&id| id > MAX_ID / 2).count();
        assert!((4_000..=6_000).contains(&upper), "upper half: {upper}");
        // The top bits are used too (not, say, a 32-bit value).
        assert!(draws.iter().any(|&id| id > 1 << 52));
    }
}

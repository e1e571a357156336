//! `Either`: the output of [`select`](fn@super::select), saying which side won.

/// One of two values: the output of [`select`](fn@super::select), `Left` when its first
/// future won, `Right` when its second did.
///
/// # Examples
///
/// ```
/// use magpie_executor::combinator::Either;
///
/// let won: Either<u8, &str> = Either::Right("timeout");
/// assert!(won.is_right());
/// assert_eq!(won.right(), Some("timeout"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Either<L, R> {
    /// The first (left) future won.
    Left(L),
    /// The second (right) future won.
    Right(R),
}

impl<L, R> Either<L, R> {
    /// Whether this is a `Left`.
    pub fn is_left(&self) -> bool {
        matches!(self, Either::Left(_))
    }

    /// Whether this is a `Right`.
    pub fn is_right(&self) -> bool {
        matches!(self, Either::Right(_))
    }

    /// The `Left` value, if this is one.
    pub fn left(self) -> Option<L> {
        match self {
            Either::Left(left) => Some(left),
            Either::Right(_) => None,
        }
    }

    /// The `Right` value, if this is one.
    pub fn right(self) -> Option<R> {
        match self {
            Either::Left(_) => None,
            Either::Right(right) => Some(right),
        }
    }
}

impl<T> Either<T, T> {
    /// The value, whichever side it is on.
    ///
    /// # Examples
    ///
    /// ```
    /// use magpie_executor::combinator::Either;
    ///
    /// assert_eq!(Either::<u8, u8>::Left(3).into_inner(), 3);
    /// ```
    pub fn into_inner(self) -> T {
        match self {
            Either::Left(value) | Either::Right(value) => value,
        }
    }
}

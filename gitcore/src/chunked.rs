//! An append-only vector in `Arc`-shared chunks: cloning it copies a few pointers, and pushing to
//! a clone copies at most one chunk. Snapshots of a growing structure (the layout after a reload)
//! share everything but their last chunk.

use std::sync::Arc;

const BITS: u32 = 12;
const SIZE: usize = 1 << BITS;

/// See the module documentation.
#[derive(Debug, Clone)]
pub struct ChunkedVec<T> {
    chunks: Vec<Arc<Vec<T>>>,
    len: usize,
}

impl<T> Default for ChunkedVec<T> {
    fn default() -> Self {
        ChunkedVec {
            chunks: Vec::new(),
            len: 0,
        }
    }
}

impl<T: Clone> ChunkedVec<T> {
    /// An empty vector.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Element `i`, if in range.
    pub fn get(&self, i: usize) -> Option<&T> {
        self.chunks.get(i >> BITS)?.get(i & (SIZE - 1))
    }

    /// Appends an element, copying the last chunk first if another snapshot shares it.
    pub fn push(&mut self, value: T) {
        if self.len.is_multiple_of(SIZE) {
            self.chunks.push(Arc::new(Vec::with_capacity(SIZE)));
        }
        if let Some(last) = self.chunks.last_mut() {
            Arc::make_mut(last).push(value);
        }
        self.len += 1;
    }

    /// Replaces element `i` (copying its chunk if shared). Out of range does nothing.
    pub fn set(&mut self, i: usize, value: T) {
        if let Some(slot) = self
            .chunks
            .get_mut(i >> BITS)
            .and_then(|c| Arc::make_mut(c).get_mut(i & (SIZE - 1)))
        {
            *slot = value;
        }
    }

    /// The elements in order.
    pub fn iter(&self) -> impl Iterator<Item = &T> + '_ {
        self.chunks.iter().flat_map(|c| c.iter())
    }

    /// Index of the first element for which `pred` is false, assuming the elements are
    /// partitioned (all `true` before all `false`), like `slice::partition_point`.
    pub fn partition_point(&self, mut pred: impl FnMut(&T) -> bool) -> usize {
        let (mut lo, mut hi) = (0, self.len);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.get(mid) {
                Some(v) if pred(v) => lo = mid + 1,
                _ => hi = mid,
            }
        }
        lo
    }

    /// Heap bytes held (shared chunks counted in full).
    pub fn heap_bytes(&self) -> usize {
        self.chunks.len() * std::mem::size_of::<Arc<Vec<T>>>()
            + self
                .chunks
                .iter()
                .map(|c| c.capacity() * std::mem::size_of::<T>())
                .sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_and_diverge() {
        let mut a = ChunkedVec::new();
        for i in 0..(SIZE * 2 + 5) {
            a.push(i);
        }
        let mut b = a.clone();
        b.push(99);
        b.set(0, 7);
        assert_eq!(a.len(), SIZE * 2 + 5);
        assert_eq!(b.len(), SIZE * 2 + 6);
        assert_eq!(a.get(0), Some(&0));
        assert_eq!(b.get(0), Some(&7));
        assert_eq!(b.get(SIZE * 2 + 5), Some(&99));
        assert_eq!(a.get(SIZE * 2 + 5), None);
        assert_eq!(a.partition_point(|&x| x < 100), 100);
        assert_eq!(a.iter().count(), a.len());
    }
}

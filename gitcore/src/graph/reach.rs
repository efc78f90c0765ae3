//! Which commits one commit reaches and another does not: `git rev-list A...B` split into its
//! two sides, for ahead/behind counts and the commits of each side.

use std::collections::BinaryHeap;

use super::{CommitGraph, CommitIdx};

const LEFT: u8 = 1;
const RIGHT: u8 = 2;
const BOTH: u8 = LEFT | RIGHT;

impl CommitGraph {
    /// The commits reachable from `left` but not `right`, and from `right` but not `left`, each
    /// newest first (graph order), as `git rev-list --left-right left...right` lists them.
    ///
    /// Walks down from the two tips in index order (every parent has a smaller index than its
    /// children, so a commit's marks are final when it is reached) and stops once everything
    /// still queued is reachable from both: the cost is the two sides and their shared
    /// frontier, not the history.
    pub fn exclusive(&self, left: CommitIdx, right: CommitIdx) -> (Vec<CommitIdx>, Vec<CommitIdx>) {
        let mut marks = vec![0u8; self.len()];
        let mut queued = vec![false; self.len()];
        let mut heap = BinaryHeap::new();
        // Queued commits not yet marked as reachable from both.
        let mut undecided = 0usize;
        for (tip, mark) in [(left, LEFT), (right, RIGHT)] {
            if tip as usize >= self.len() {
                continue;
            }
            marks[tip as usize] |= mark;
            if !queued[tip as usize] {
                queued[tip as usize] = true;
                heap.push(tip);
                undecided += 1;
            }
        }
        if left == right {
            undecided = 0;
        }
        let (mut only_left, mut only_right) = (Vec::new(), Vec::new());
        while undecided > 0 {
            let Some(c) = heap.pop() else {
                break;
            };
            let mark = marks[c as usize];
            if mark != BOTH {
                undecided -= 1;
            }
            match mark {
                LEFT => only_left.push(c),
                RIGHT => only_right.push(c),
                _ => {}
            }
            for &p in self.parents(c) {
                let before = marks[p as usize];
                let after = before | mark;
                if before == after {
                    continue;
                }
                marks[p as usize] = after;
                if !queued[p as usize] {
                    queued[p as usize] = true;
                    heap.push(p);
                    if after != BOTH {
                        undecided += 1;
                    }
                } else if after == BOTH {
                    // Queued as one side's, now both sides'.
                    undecided -= 1;
                }
            }
        }
        (only_left, only_right)
    }
}

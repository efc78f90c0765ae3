//! Where the lines an ignored commit changed came from: `git blame --ignore-rev`'s heuristic.
//!
//! A line's *fingerprint* is the multiset of its byte pairs, lowercased (ASCII), with whitespace
//! as 0 and pairs of whitespace left out; two lines are as similar as the size of the
//! intersection of their fingerprints. Within one hunk of the diff from the parent to the
//! ignored commit, each line of the commit is compared with the parent's lines near its
//! proportional position (ten on either side); the line matched with the most certainty (best
//! score doubled, minus the second best) is fixed first, its pairs are taken out of the parent
//! line's fingerprint, and both sides of it are matched again, so matches keep the lines'
//! order. A line left without a match is compared with every line of the parent and takes the
//! most similar one (similarity at least 10, ties to the nearest line), or stays with the
//! ignored commit. The scores, tie-breaks and order of work are git's, so the answers are too.

/// A line's byte pairs with their counts, sorted by pair.
#[derive(Debug, Clone, Default)]
pub(super) struct Fingerprint(Vec<(u32, i32)>);

/// git's own ctype: space is `\t`, `\n`, `\r` and ` `; only ASCII letters change case.
fn normalise(b: u8) -> u32 {
    match b {
        b' ' | b'\t' | b'\n' | b'\r' => 0,
        _ => u32::from(b.to_ascii_lowercase()),
    }
}

impl Fingerprint {
    /// The fingerprint of one line (its bytes, newline included).
    pub(super) fn of(line: &[u8]) -> Fingerprint {
        let mut pairs: Vec<u32> = Vec::with_capacity(line.len() + 1);
        let mut prev = 0u32;
        for next in line.iter().map(|&b| normalise(b)).chain(std::iter::once(0)) {
            let pair = prev | (next << 8);
            if pair != 0 {
                pairs.push(pair);
            }
            prev = next;
        }
        pairs.sort_unstable();
        let mut counted: Vec<(u32, i32)> = Vec::with_capacity(pairs.len());
        for p in pairs {
            match counted.last_mut() {
                Some((q, n)) if *q == p => *n += 1,
                _ => counted.push((p, 1)),
            }
        }
        Fingerprint(counted)
    }

    /// The size of the intersection of two multisets.
    pub(super) fn similarity(&self, other: &Fingerprint) -> i32 {
        let (mut i, mut j, mut sum) = (0, 0, 0);
        while i < self.0.len() && j < other.0.len() {
            let (a, b) = (self.0[i], other.0[j]);
            match a.0.cmp(&b.0) {
                std::cmp::Ordering::Less => i += 1,
                std::cmp::Ordering::Greater => j += 1,
                std::cmp::Ordering::Equal => {
                    sum += a.1.min(b.1);
                    i += 1;
                    j += 1;
                }
            }
        }
        sum
    }

    /// Takes `other`'s pairs out of this one.
    fn subtract(&mut self, other: &Fingerprint) {
        for &(pair, n) in &other.0 {
            if let Ok(k) = self.0.binary_search_by_key(&pair, |e| e.0) {
                if self.0[k].1 <= n {
                    self.0.remove(k);
                } else {
                    self.0[k].1 -= n;
                }
            }
        }
    }
}

/// The fingerprint of every line of `content`.
pub(super) fn fingerprints(content: &[u8]) -> Vec<Fingerprint> {
    content
        .split_inclusive(|&b| b == b'\n')
        .map(Fingerprint::of)
        .collect()
}

const NOT_CALCULATED: i64 = -1;
const NOTHING_MATCHES: i64 = -2;

/// One hunk's matching: lines `[start_b, start_b + len_b)` of the commit against
/// `[start_a, start_a + len_a)` of the parent (absolute line numbers).
struct Matcher<'a> {
    parent: &'a mut [Fingerprint],
    target: &'a [Fingerprint],
    hunk_a: (i64, i64),
    hunk_b: (i64, i64),
    /// Distance in parent lines searched on either side of a line's proportional position.
    reach_a: i64,
    /// How far apart two commit lines can be and still be compared with one parent line.
    reach_b: i64,
    /// Per commit line of the hunk: `2 * reach_a + 1` similarities around its position.
    similarities: Vec<i64>,
    certainties: Vec<i64>,
    second_best: Vec<i64>,
    result: Vec<i64>,
}

impl Matcher<'_> {
    /// The parent line proportionally where commit line `b` is (rounding to the middle).
    fn closest_a(&self, b: i64) -> i64 {
        let (start_a, len_a) = self.hunk_a;
        let (start_b, len_b) = self.hunk_b;
        ((b - start_b) * 2 + 1) * len_a / (len_b * 2) + start_a
    }

    fn similarity_slot(&self, a: i64, b: i64) -> usize {
        let row = (b - self.hunk_b.0) * (2 * self.reach_a + 1);
        (row + a - self.closest_a(b) + self.reach_a) as usize
    }

    /// Scores commit line `b` against the parent lines within reach in `[start_a, end_a)`.
    fn best_matches(&mut self, b: i64, start_a: i64, end_a: i64) {
        let k = (b - self.hunk_b.0) as usize;
        if self.certainties[k] != NOT_CALCULATED {
            return;
        }
        let closest = self.closest_a(b);
        let from = (closest - self.reach_a).max(start_a);
        let to = (closest + self.reach_a + 1).min(end_a);
        let (mut best, mut second, mut best_at, mut second_at) = (0i64, 0i64, 0i64, 0i64);
        for a in from..to {
            let slot = self.similarity_slot(a, b);
            if self.similarities[slot] == -1 {
                // Nearer lines win ties.
                self.similarities[slot] =
                    i64::from(self.target[b as usize].similarity(&self.parent[a as usize]))
                        * (1000 - (a - closest).abs());
            }
            let s = self.similarities[slot];
            if s > best {
                (second, second_at) = (best, best_at);
                (best, best_at) = (s, a - start_a);
            } else if s > second {
                (second, second_at) = (s, a - start_a);
            }
        }
        if best == 0 {
            self.certainties[k] = NOTHING_MATCHES;
            self.result[k] = -1;
        } else {
            self.certainties[k] = best * 2 - second;
            self.result[k] = start_a + best_at;
            self.second_best[k] = start_a + second_at;
        }
    }

    /// Matches commit lines `[start_b, start_b + len_b)` within parent lines
    /// `[start_a, start_a + len_a)`, most certain first, then each side of it.
    fn recurse(&mut self, start_a: i64, start_b: i64, len_a: i64, len_b: i64) {
        let mut most: Option<(i64, i64)> = None; // (certainty, b)
        for b in start_b..start_b + len_b {
            self.best_matches(b, start_a, start_a + len_a);
            let c = self.certainties[(b - self.hunk_b.0) as usize];
            if c > most.map_or(-1, |m| m.0) {
                most = Some((c, b));
            }
        }
        let Some((_, most_b)) = most else {
            return;
        };
        let kb = |b: i64, hb: i64| (b - hb) as usize;
        let most_a = self.result[kb(most_b, self.hunk_b.0)];
        let taken = self.target[most_b as usize].clone();
        self.parent[most_a as usize].subtract(&taken);
        let local_b = most_b - start_b;
        let lo = (local_b - self.reach_b).max(0) + start_b;
        let hi = (local_b + self.reach_b + 1).min(len_b) + start_b;
        // The parent line's fingerprint changed: forget its similarities.
        for b in lo..hi {
            if (most_a - self.closest_a(b)).abs() > self.reach_a {
                continue;
            }
            let slot = self.similarity_slot(most_a, b);
            self.similarities[slot] = -1;
        }
        // Forget matches that would cross the fixed one.
        for b in (lo..most_b).rev() {
            let k = kb(b, self.hunk_b.0);
            if self.certainties[k] >= 0
                && (self.result[k] >= most_a || self.second_best[k] >= most_a)
            {
                self.certainties[k] = NOT_CALCULATED;
            }
        }
        for b in most_b + 1..hi {
            let k = kb(b, self.hunk_b.0);
            if self.certainties[k] >= 0
                && (self.result[k] <= most_a || self.second_best[k] <= most_a)
            {
                self.certainties[k] = NOT_CALCULATED;
            }
        }
        if local_b > 0 {
            self.recurse(start_a, start_b, most_a + 1 - start_a, local_b);
        }
        if local_b + 1 < len_b {
            self.recurse(
                most_a,
                most_b + 1,
                len_a + start_a - most_a,
                len_b - local_b - 1,
            );
        }
    }
}

/// For each commit line of one hunk (`start_b`, `len_b` lines, from parent lines `start_a`,
/// `len_a`), the parent line it most likely came from. `parent`'s fingerprints lose the pairs
/// matched, as git's do, for the later hunks of the same diff.
pub(super) fn guess_hunk(
    parent: &mut [Fingerprint],
    target: &[Fingerprint],
    start_a: usize,
    len_a: usize,
    start_b: usize,
    len_b: usize,
) -> Vec<Option<u32>> {
    let (start_a, len_a, start_b, len_b) =
        (start_a as i64, len_a as i64, start_b as i64, len_b as i64);
    let mut fuzzy = vec![-1i64; len_b as usize];
    if len_a > 0 && len_b > 0 {
        let reach_a = 10.min(len_a - 1);
        let mut m = Matcher {
            parent: &mut *parent,
            target,
            hunk_a: (start_a, len_a),
            hunk_b: (start_b, len_b),
            reach_a,
            reach_b: ((2 * reach_a + 1) * len_b - 1) / len_a,
            similarities: vec![-1; (len_b * (2 * reach_a + 1)) as usize],
            certainties: vec![NOT_CALCULATED; len_b as usize],
            second_best: vec![-1; len_b as usize],
            result: vec![-1; len_b as usize],
        };
        m.recurse(start_a, start_b, len_a, len_b);
        fuzzy = m.result;
    }
    (0..len_b)
        .map(|i| {
            let found = fuzzy[i as usize];
            if found >= 0 {
                return Some(found as u32);
            }
            scan_parent(parent, &target[(start_b + i) as usize], start_b + i)
        })
        .collect()
}

/// The parent line most similar to commit line `t` (at least 10; ties go to the nearest).
fn scan_parent(parent: &[Fingerprint], line: &Fingerprint, t: i64) -> Option<u32> {
    let mut best = 10;
    let mut best_at: Option<i64> = None;
    for (p, fp) in parent.iter().enumerate() {
        let p = p as i64;
        let sim = line.similarity(fp);
        if sim < best {
            continue;
        }
        if sim == best && best_at.is_some_and(|b| (b - t).abs() < (p - t).abs()) {
            continue;
        }
        best = sim;
        best_at = Some(p);
    }
    best_at.map(|p| p as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_count_pairs_and_ignore_whitespace_pairs() {
        // "cat mat" and "father rather" share "at" twice.
        let a = Fingerprint::of(b"cat mat\n");
        let b = Fingerprint::of(b"father rather\n");
        assert_eq!(a.similarity(&b), 2);
        assert_eq!(
            Fingerprint::of(b"tim").similarity(&Fingerprint::of(b"mit")),
            0
        );
        // "abab" is {0a, ab, ab, ba, b0}; taking "ab" ({0a, ab, b0}) leaves {ab, ba}.
        let mut c = Fingerprint::of(b"abab");
        c.subtract(&Fingerprint::of(b"ab"));
        assert_eq!(c.similarity(&Fingerprint::of(b"abab")), 2);
    }
}

//! Lane layout of a commit graph, for drawing.
//!
//! Commits are laid out bottom-up (oldest first), each at a *height* (row 0 is the top, the
//! newest commit). A commit continues the lane of its first parent when that lane is still free
//! above the parent, so branches are straight lines; the first-parent chain of the main branch
//! always takes lane 0, which nothing else uses. Every edge runs in one lane (its *track*): the
//! child's own lane for a first-parent edge, for a merge edge the parent's lane when free, else a
//! free lane. Lanes past [`LayoutOptions::max_lanes`] become [`OVERFLOW`]: forge mirrors with
//! thousands of open pull-request branches keep a bounded width.
//!
//! Each commit also gets a colour, one of [`COLORS`]: the main chain has colour 0, a commit that
//! continues its first parent's lane keeps the parent's colour, and every other chain takes the
//! next colour in rotation, so a branch keeps one colour from fork to tip however lanes are reused.
//! A first-parent edge has its child's colour, a merge edge its parent's.
//!
//! A view may keep only a [`Subset`] of the commits (a search's hits: "show only matches"): each
//! kept commit is then drawn to its nearest kept ancestors, found through the commits left out
//! (git's parent rewriting, over every parent), so the hits keep the history that connects them.
//!
//! Because a commit's lane depends only on older commits, commits added on top
//! ([`Layout::extend`]) never move existing ones. Each lane keeps its edges sorted by height, so
//! the edges passing through any window are found with one binary search per lane: a window costs
//! O(lanes * log n + rows), independent of the history's size.

use crate::chunked::ChunkedVec;
use crate::graph::{CommitGraph, CommitIdx, RefKind};
use crate::refs::Head;

mod filters;

use filters::Rewrite;
pub(crate) use filters::glob_match;
pub use filters::{RefFilter, Subset, branches_containing, is_remote_head};

/// The lane of a commit or edge that did not fit under the lane cap.
pub const OVERFLOW: u16 = u16::MAX;
const HIDDEN: u32 = u32::MAX;
/// Number of distinct colours handed out (colour 0 is the main chain's).
pub const COLORS: u8 = 12;

/// Layout settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayoutOptions {
    /// Lanes drawn; more become [`OVERFLOW`]. Lane 0 is the main branch.
    pub max_lanes: u16,
    /// Follow first parents only (merge edges are not drawn).
    pub first_parent_only: bool,
    /// Leave merge commits out: a child of a merge is drawn straight to the merge's first
    /// parent (through a chain of merges, to the first non-merge), like `git log --no-merges`.
    pub hide_merges: bool,
    /// Which refs are shown.
    pub filter: RefFilter,
    /// The branch whose first-parent chain takes lane 0 (full ref name); `None` picks HEAD's
    /// branch, else `refs/heads/main`, else `refs/heads/master`, else HEAD's commit.
    pub main_ref: Option<String>,
    /// Keep only these commits (of those the filter shows), each drawn to its nearest kept
    /// ancestors; the main branch's kept commits take lane 0.
    pub subset: Option<Subset>,
}

/// Every ref shown (the whole of `git log --all`); the page's default view is
/// [`LayoutOptions::standard`].
impl Default for LayoutOptions {
    fn default() -> Self {
        LayoutOptions {
            max_lanes: 64,
            first_parent_only: false,
            hide_merges: false,
            filter: RefFilter::default(),
            main_ref: None,
            subset: None,
        }
    }
}

impl LayoutOptions {
    /// The view a page opens with: [`RefFilter::standard`].
    pub fn standard() -> Self {
        LayoutOptions {
            filter: RefFilter::standard(),
            ..LayoutOptions::default()
        }
    }
}

/// Why a layout could not be extended in place (build a new one instead).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    /// Commits were removed or the main branch moved somewhere other than forward.
    #[error("the history was rewritten; the layout must be rebuilt")]
    Rewritten,
}

/// One edge from a commit to a parent, as drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EdgeOut {
    /// The parent.
    pub parent: CommitIdx,
    /// The parent's row.
    pub parent_row: usize,
    /// The parent's lane.
    pub parent_lane: u16,
    /// The lane the edge runs in between the two rows.
    pub track: u16,
    /// Its colour: the child's for a first-parent edge, the parent's for a merge edge.
    pub color: u8,
}

/// A row of a window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowRow {
    /// Row number (0 is the top).
    pub row: usize,
    /// The commit.
    pub commit: CommitIdx,
    /// Its lane.
    pub lane: u16,
    /// Its colour (below [`COLORS`]).
    pub color: u8,
    /// Its edges to its (shown) parents, in parent order; at most [`MAX_DRAWN_EDGES`].
    pub edges: Vec<EdgeOut>,
    /// Edges to further parents that are not drawn (a merge of thousands of branches).
    pub more_parents: usize,
}

/// Most edges drawn from one commit: the first parent and 63 more (an octopus merge of more
/// branches than that draws those and says how many more there are). Bounds what one row costs
/// in a window, and what passes through a window below it.
pub const MAX_DRAWN_EDGES: usize = 64;

/// An edge from a commit above a window that reaches into it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PassEdge {
    /// The child (above the window).
    pub child: CommitIdx,
    /// The child's row.
    pub child_row: usize,
    /// The child's lane.
    pub child_lane: u16,
    /// The edge.
    pub edge: EdgeOut,
}

/// Rows `start..start + rows.len()` and everything needed to draw them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// The rows.
    pub rows: Vec<WindowRow>,
    /// Edges from above the window into or through it.
    pub through: Vec<PassEdge>,
    /// Lanes in use anywhere in the layout (excluding [`OVERFLOW`]).
    pub width: u16,
}

/// A laid-out view of a [`CommitGraph`]. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Layout {
    options: LayoutOptions,
    /// The main branch's ref name and the commit its chain was laid out up to.
    main: Option<(Option<String>, CommitIdx)>,
    /// Number of graph commits considered (shown or hidden).
    graph_len: usize,
    /// Height -> commit.
    commits: ChunkedVec<u32>,
    /// Commit -> height ([`HIDDEN`] when not shown).
    height_of: ChunkedVec<u32>,
    /// Height -> lane.
    lanes: ChunkedVec<u16>,
    /// Height -> colour.
    colors: ChunkedVec<u8>,
    /// Chains started so far (picks the next colour).
    chains: u32,
    /// Height -> end of its edges in `edges`.
    edge_end: ChunkedVec<u32>,
    /// (parent height, track) per edge.
    edges: ChunkedVec<(u32, u16)>,
    /// Per lane: (child height, parent height) of the edges spanning rows in it, by child height.
    lane_edges: Vec<ChunkedVec<(u32, u32)>>,
    /// Per lane: one more than the highest height in use.
    top: Vec<u32>,
    width: u16,
}

/// The ref whose first-parent chain is lane 0.
fn main_ref_name(graph: &CommitGraph, options: &LayoutOptions) -> Option<String> {
    if let Some(name) = &options.main_ref {
        return Some(name.clone());
    }
    if let Some(Head::Branch { name, .. }) = graph.head() {
        return Some(name.clone());
    }
    ["refs/heads/main", "refs/heads/master"]
        .into_iter()
        .find(|n| graph.refs().iter().any(|r| r.name == *n))
        .map(str::to_string)
}

fn main_tip(graph: &CommitGraph, name: &Option<String>) -> Option<CommitIdx> {
    match name {
        Some(n) => graph.refs().iter().find(|r| &r.name == n).map(|r| r.commit),
        None => graph.head_commit(),
    }
}

/// Whether a stash entry (`refs/stash` or one of its reflog entries) points at `c`.
fn is_stash(graph: &CommitGraph, c: CommitIdx) -> bool {
    graph.refs_at(c).iter().any(|r| r.kind == RefKind::Stash)
}

impl Layout {
    /// Lays out the whole graph.
    pub fn build(graph: &CommitGraph, options: LayoutOptions) -> Layout {
        let lanes = usize::from(options.max_lanes.max(1));
        let mut layout = Layout {
            options,
            main: None,
            graph_len: 0,
            commits: ChunkedVec::new(),
            height_of: ChunkedVec::new(),
            lanes: ChunkedVec::new(),
            colors: ChunkedVec::new(),
            chains: 0,
            edge_end: ChunkedVec::new(),
            edges: ChunkedVec::new(),
            lane_edges: vec![ChunkedVec::new(); lanes],
            top: vec![0; lanes],
            width: 0,
        };
        let name = main_ref_name(graph, &layout.options);
        let visible = layout.visible_from(graph, 0);
        let mut on_main = vec![false; graph.len()];
        let hidden_merge = |c: CommitIdx| {
            layout.options.hide_merges && graph.parents(c).len() >= 2 && !visible[c as usize]
        };
        // In a subset view the main chain runs through the commits left out.
        let subset = layout.options.subset.is_some();
        let tip =
            main_tip(graph, &name).filter(|&t| visible[t as usize] || hidden_merge(t) || subset);
        if let Some(t) = tip {
            for c in graph.first_parent_chain(t) {
                if !visible[c as usize] {
                    if hidden_merge(c) || subset {
                        continue;
                    }
                    break;
                }
                on_main[c as usize] = true;
            }
            layout.main = Some((name, t));
        }
        let mut rewrite = subset.then(|| Rewrite::new(&layout, graph, &visible));
        for c in 0..graph.len() as u32 {
            layout.add(
                graph,
                c,
                visible[c as usize],
                on_main[c as usize],
                rewrite.as_mut().map(|rw| (rw, visible.as_slice())),
            );
        }
        layout
    }

    /// Lays out the commits `graph` gained on top since this layout was built (after
    /// [`CommitGraph::reload`] with a delta that was not `rewritten`). Existing commits keep their
    /// lanes and heights.
    pub fn extend(&self, graph: &CommitGraph) -> Result<Layout, LayoutError> {
        // A subset is of one graph: new commits need a new subset.
        if graph.len() < self.graph_len || self.options.subset.is_some() {
            return Err(LayoutError::Rewritten);
        }
        let mut next = self.clone();
        let from = self.graph_len;
        let visible = next.visible_from(graph, from as u32);
        // A shown new commit whose parent was hidden makes old commits visible: relayout.
        for (k, &shown) in visible.iter().enumerate() {
            let c = (from + k) as u32;
            if shown
                && graph.parents(c).iter().any(|&p| {
                    (p as usize) < from && self.height_of.get(p as usize) == Some(&HIDDEN)
                })
            {
                return Err(LayoutError::Rewritten);
            }
        }
        // New commits on the main chain: first parents from the new tip down to the old tip.
        let mut on_main = vec![false; graph.len() - from];
        if let Some((name, old_tip)) = &self.main {
            let new_tip = main_tip(graph, name).unwrap_or(*old_tip);
            if new_tip != *old_tip {
                let mut reached_old = false;
                for c in graph.first_parent_chain(new_tip) {
                    if (c as usize) < from {
                        reached_old = c == *old_tip;
                        break;
                    }
                    on_main[c as usize - from] = true;
                }
                if !reached_old {
                    return Err(LayoutError::Rewritten);
                }
                next.main = Some((name.clone(), new_tip));
            }
        }
        for c in from as u32..graph.len() as u32 {
            let k = (c as usize) - from;
            next.add(graph, c, visible[k], on_main[k], None);
        }
        Ok(next)
    }

    /// The parents of `c` the layout follows: the first only with first-parent history, and for
    /// a stash entry (its index and untracked-files commits are part of the one stash row, as
    /// Git Graph shows them; the diff still reads them).
    fn followed<'g>(&self, graph: &'g CommitGraph, c: CommitIdx) -> &'g [CommitIdx] {
        let parents = graph.parents(c);
        if self.options.first_parent_only || is_stash(graph, c) {
            &parents[..parents.len().min(1)]
        } else {
            parents
        }
    }

    /// Which of the commits `from..` are shown: reachable from a ref the filter includes, or
    /// from HEAD. Older commits keep their earlier visibility.
    fn visible_from(&self, graph: &CommitGraph, from: u32) -> Vec<bool> {
        let n = graph.len() - from as usize;
        if self.options.filter.is_empty()
            && !self.options.first_parent_only
            && !self.options.hide_merges
            && self.options.subset.is_none()
            && !graph.refs().iter().any(|r| r.kind == RefKind::Stash)
        {
            return vec![true; n];
        }
        let mut seen = vec![false; n];
        let mut stack: Vec<u32> = graph
            .refs()
            .iter()
            .filter(|r| self.options.filter.includes(r))
            .map(|r| r.commit)
            .chain(graph.head_commit().filter(|_| {
                self.options.filter.only.is_none() && self.options.filter.only_set.is_none()
            }))
            .filter(|&c| c >= from)
            .collect();
        while let Some(c) = stack.pop() {
            let k = (c - from) as usize;
            if std::mem::replace(&mut seen[k], true) {
                continue;
            }
            stack.extend(
                self.followed(graph, c)
                    .iter()
                    .copied()
                    .filter(|&p| p >= from),
            );
        }
        if self.options.hide_merges {
            for (k, shown) in seen.iter_mut().enumerate() {
                *shown &= self.followed(graph, from + k as u32).len() < 2;
            }
        }
        if let Some(subset) = &self.options.subset {
            for (k, shown) in seen.iter_mut().enumerate() {
                *shown &= subset.contains(from + k as u32);
            }
        }
        seen
    }

    /// `p`, or with [`LayoutOptions::hide_merges`] the first non-merge down its first-parent
    /// chain.
    fn resolve(&self, graph: &CommitGraph, mut p: CommitIdx) -> CommitIdx {
        if self.options.hide_merges {
            while let [first, _, ..] = self.followed(graph, p) {
                p = *first;
            }
        }
        p
    }

    /// Lowest lane (other than the main lane) whose last use is at or below `height - 1`.
    fn free_lane(&self, height: u32) -> u16 {
        self.top
            .iter()
            .enumerate()
            .skip(1)
            .find(|&(_, &t)| t <= height)
            .map_or(OVERFLOW, |(l, _)| l as u16)
    }

    fn occupy(&mut self, lane: u16, up_to: u32) {
        if let Some(t) = self.top.get_mut(usize::from(lane)) {
            *t = up_to;
            self.width = self.width.max(lane + 1);
        }
    }

    /// Lays out commit `c` on top; `rewrite` (a subset view) says where the commits left out
    /// lead, with which commits are shown.
    fn add(
        &mut self,
        graph: &CommitGraph,
        c: CommitIdx,
        visible: bool,
        on_main: bool,
        rewrite: Option<(&mut Rewrite, &[bool])>,
    ) {
        self.graph_len = self.graph_len.max(c as usize + 1);
        if !visible {
            self.height_of.push(HIDDEN);
            return;
        }
        let h = self.commits.len() as u32;
        self.commits.push(c);
        self.height_of.push(h);
        let shown = self.followed(graph, c);
        let mut resolved: Vec<CommitIdx> = match &rewrite {
            Some((rw, visible)) if shown.len() <= MAX_DRAWN_EDGES => {
                let mut out = Vec::with_capacity(shown.len());
                for &p in shown {
                    rw.extend(&mut out, p, visible, MAX_DRAWN_EDGES);
                }
                out
            }
            // An octopus of thousands: each parent's own answer, then one pass to drop repeats.
            Some((rw, visible)) => {
                let mut out = Vec::with_capacity(shown.len());
                for &p in shown {
                    let mut one = Vec::new();
                    rw.extend(&mut one, p, visible, MAX_DRAWN_EDGES);
                    out.extend(one);
                }
                let mut seen = std::collections::HashSet::with_capacity(out.len());
                out.retain(|c| seen.insert(*c));
                out
            }
            None => shown.iter().map(|&p| self.resolve(graph, p)).collect(),
        };
        if let Some((rw, visible)) = rewrite {
            rw.reduce(self, graph, visible, &mut resolved);
        }
        if self.options.hide_merges && self.options.subset.is_none() {
            let mut seen = Vec::with_capacity(resolved.len());
            resolved.retain(|p| {
                let new = !seen.contains(p);
                seen.push(*p);
                new
            });
        }
        let parents: Vec<(u32, u16)> = resolved
            .iter()
            .filter_map(|&p| {
                let hp = *self.height_of.get(p as usize)?;
                (hp != HIDDEN).then(|| (hp, self.lanes.get(hp as usize).copied().unwrap_or(0)))
            })
            .collect();

        // (lane, colour inherited from the first parent when the chain continues)
        let (lane, inherited) = if on_main {
            (0, Some(0))
        } else {
            match parents.first() {
                // An overflowed chain stays in overflow unless a lane is free for it.
                Some(&(hp, lp)) if lp == OVERFLOW => (self.free_lane(hp + 1), None),
                Some(&(hp, lp)) if lp != 0 && self.top[usize::from(lp)] == hp + 1 => {
                    (lp, self.colors.get(hp as usize).copied())
                }
                Some(&(hp, _)) => (self.free_lane(hp + 1), None),
                None => (self.free_lane(h), None),
            }
        };
        let color = inherited.unwrap_or_else(|| {
            self.chains += 1;
            1 + ((self.chains - 1) % u32::from(COLORS - 1)) as u8
        });
        self.lanes.push(lane);
        self.colors.push(color);
        self.occupy(lane, h + 1);

        for (k, &(hp, lp)) in parents.iter().enumerate() {
            let track = if k == 0 {
                lane
            } else if hp + 1 == h {
                lp
            } else if lp != 0 && lp != OVERFLOW && self.top[usize::from(lp)] == hp + 1 {
                self.occupy(lp, h);
                lp
            } else {
                let t = self.free_lane(hp + 1);
                self.occupy(t, h);
                t
            };
            self.edges.push((hp, track));
            if hp + 1 < h
                && track != OVERFLOW
                && let Some(list) = self.lane_edges.get_mut(usize::from(track))
            {
                list.push((h, hp));
            }
        }
        self.edge_end.push(self.edges.len() as u32);
    }

    /// Number of rows (shown commits).
    pub fn len(&self) -> usize {
        self.commits.len()
    }

    /// Whether nothing is shown.
    pub fn is_empty(&self) -> bool {
        self.commits.is_empty()
    }

    /// Lanes in use (excluding [`OVERFLOW`]).
    pub fn width(&self) -> u16 {
        self.width
    }

    /// The options this layout was built with.
    pub fn options(&self) -> &LayoutOptions {
        &self.options
    }

    /// The commit at `row`.
    pub fn commit_at(&self, row: usize) -> Option<CommitIdx> {
        let h = self.len().checked_sub(row + 1)?;
        self.commits.get(h).copied()
    }

    /// The row of commit `c`, if shown.
    pub fn row_of(&self, c: CommitIdx) -> Option<usize> {
        let h = *self.height_of.get(c as usize)?;
        (h != HIDDEN).then(|| self.len() - 1 - h as usize)
    }

    /// The lane of commit `c`, if shown.
    pub fn lane_of(&self, c: CommitIdx) -> Option<u16> {
        let h = *self.height_of.get(c as usize)?;
        self.lanes.get(h as usize).copied()
    }

    /// The colour of commit `c`, if shown.
    pub fn color_of(&self, c: CommitIdx) -> Option<u8> {
        let h = *self.height_of.get(c as usize)?;
        self.colors.get(h as usize).copied()
    }

    /// The range of commit `h`'s edges in `edges`.
    fn edge_range(&self, h: u32) -> std::ops::Range<usize> {
        let end = self.edge_end.get(h as usize).copied().unwrap_or(0) as usize;
        let start = if h == 0 {
            0
        } else {
            self.edge_end.get(h as usize - 1).copied().unwrap_or(0) as usize
        };
        start..end.max(start)
    }

    /// Commit `h`'s drawn edges (the first [`MAX_DRAWN_EDGES`]) and how many more it has.
    fn edges_at(&self, h: u32) -> (Vec<EdgeOut>, usize) {
        let own = self.colors.get(h as usize).copied().unwrap_or(0);
        let range = self.edge_range(h);
        let start = range.start;
        let more = range.len().saturating_sub(MAX_DRAWN_EDGES);
        let drawn = range
            .take(MAX_DRAWN_EDGES)
            .filter_map(|e| {
                let &(hp, track) = self.edges.get(e)?;
                Some(EdgeOut {
                    parent: *self.commits.get(hp as usize)?,
                    parent_row: self.len() - 1 - hp as usize,
                    parent_lane: *self.lanes.get(hp as usize)?,
                    track,
                    color: if e == start {
                        own
                    } else {
                        *self.colors.get(hp as usize)?
                    },
                })
            })
            .collect();
        (drawn, more)
    }

    /// Rows `start..start + limit` (clamped) with their edges and the edges passing into them from
    /// above. Costs O(rows + lanes * log n).
    pub fn window(&self, start: usize, limit: usize) -> Window {
        let n = self.len();
        let start = start.min(n);
        let end = start.saturating_add(limit).min(n);
        let rows: Vec<WindowRow> = (start..end)
            .filter_map(|row| {
                let h = (n - 1 - row) as u32;
                let (edges, more_parents) = self.edges_at(h);
                Some(WindowRow {
                    row,
                    commit: *self.commits.get(h as usize)?,
                    lane: *self.lanes.get(h as usize)?,
                    color: *self.colors.get(h as usize)?,
                    edges,
                    more_parents,
                })
            })
            .collect();
        let mut through = Vec::new();
        if start > 0 && start < n {
            // `top` is the window's top height; edges start above it and end at or below it.
            let top = (n - 1 - start) as u32;
            // Each child's edges are added once, however many lanes lead to it (a set, not a
            // scan of what was added: a merge of thousands of parents made that quadratic).
            let mut children = std::collections::HashSet::new();
            let mut push_from = |hc: u32, through: &mut Vec<PassEdge>| {
                let Some(&child) = self.commits.get(hc as usize) else {
                    return;
                };
                if !children.insert(hc) {
                    return;
                }
                let child_lane = self.lanes.get(hc as usize).copied().unwrap_or(0);
                for edge in self.edges_at(hc).0 {
                    let hp = (n - 1 - edge.parent_row) as u32;
                    if hp <= top {
                        through.push(PassEdge {
                            child,
                            child_row: n - 1 - hc as usize,
                            child_lane,
                            edge,
                        });
                    }
                }
            };
            // The row just above the window: all its edges reach in.
            push_from(top + 1, &mut through);
            // Longer edges occupy height top + 1 in exactly one lane each.
            for list in &self.lane_edges {
                let i = list.partition_point(|&(hc, _)| hc < top + 2);
                if let Some(&(hc, hp)) = list.get(i)
                    && hp < top + 1
                {
                    push_from(hc, &mut through);
                }
            }
        }
        Window {
            rows,
            through,
            width: self.width,
        }
    }

    /// Approximate heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.commits.heap_bytes()
            + self.height_of.heap_bytes()
            + self.lanes.heap_bytes()
            + self.colors.heap_bytes()
            + self.edge_end.heap_bytes()
            + self.edges.heap_bytes()
            + self
                .lane_edges
                .iter()
                .map(ChunkedVec::heap_bytes)
                .sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn globs() {
        assert!(glob_match("dependabot/*", "dependabot/npm/x"));
        assert!(!glob_match("dependabot/*", "main"));
        assert!(glob_match("*", ""));
        assert!(glob_match("a*b*c", "aXXbYYc"));
        assert!(!glob_match("a*b*c", "aXXbYY"));
        assert!(glob_match(&"*a".repeat(20), &"a".repeat(40)));
    }
}

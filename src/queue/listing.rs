//! Listings of the `recent` and `failed` indexes: the query, the page, the cursor, and the
//! parsing of the `list` script's reply.
//!
//! A page is filtered inside Redis: the script examines at most [`scan_budget`] index entries,
//! reads only `status`, `type` and `priority` of each to filter, and whole records only for the
//! matches, so a request costs a bounded amount of work whatever the index holds. A page can
//! therefore be short, or even empty, and still have a next cursor: the budget ran out first.

use std::fmt;

use super::QueueError;
use crate::task::{Priority, TaskRecord, TaskStatus, TaskType};

/// Most records one page returns; a larger `limit` is capped to this.
pub const LIST_LIMIT_MAX: usize = 1_000;
/// Index entries a page may examine per record asked for (see [`scan_budget`]).
pub const SCAN_PER_ROW: usize = 10;
/// Index entries a page may always examine, however small its `limit`.
pub const SCAN_MIN: usize = 100;
/// Longest task id a cursor may carry, in bytes (ids in the API are at most 128 characters).
const CURSOR_ID_MAX: usize = 512;

/// How many index entries one page examines at most: `max(limit * 10, 100)`.
pub fn scan_budget(limit: usize) -> usize {
    limit.saturating_mul(SCAN_PER_ROW).max(SCAN_MIN)
}

/// The index a listing walks, newest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListIndex {
    /// `recent`: tasks by last change, the last [`super::RECENT_MAX`] changes.
    Recent,
    /// `failed`: the dead-letter set, by failure time.
    Failed,
}

impl ListIndex {
    /// The key name after the queue's base.
    pub fn key_name(self) -> &'static str {
        match self {
            ListIndex::Recent => "recent",
            ListIndex::Failed => "failed",
        }
    }
}

/// One page request: an index, filters (all optional, combined with AND) and where to go on.
#[derive(Debug, Clone, PartialEq)]
pub struct ListQuery {
    /// Which index to walk.
    pub index: ListIndex,
    /// Records wanted at most (1 ..= [`LIST_LIMIT_MAX`]; out-of-range values are clamped).
    pub limit: usize,
    /// Continue after this position (`None`: from the newest entry).
    pub cursor: Option<Cursor>,
    /// Only records in this status.
    pub status: Option<TaskStatus>,
    /// Only records of this type.
    pub task_type: Option<TaskType>,
    /// Only records at this priority.
    pub priority: Option<Priority>,
    /// Only ids starting with this text (case-sensitive; stored ids are lower-case UUIDs).
    pub id_prefix: Option<String>,
}

impl ListQuery {
    /// The first page of `index`, unfiltered.
    pub fn new(index: ListIndex, limit: usize) -> Self {
        ListQuery {
            index,
            limit,
            cursor: None,
            status: None,
            task_type: None,
            priority: None,
            id_prefix: None,
        }
    }
}

/// A position in an index: the score and the raw id of the last entry a page examined. The next
/// page starts at the first entry that sorts after it (score descending, then id descending), so
/// entries added at the head meanwhile neither shift nor repeat what follows, and the position
/// holds even when its own entry has since left the index.
#[derive(Debug, Clone, PartialEq)]
pub struct Cursor {
    /// The entry's score (epoch ms for both indexes; any double a hand-written entry holds).
    pub score: f64,
    /// The entry's member, as stored (not necessarily UTF-8).
    pub id: Vec<u8>,
}

impl Cursor {
    /// Read a cursor written by [`Cursor`]'s `Display`; `None` when it is not one.
    pub fn parse(text: &str) -> Option<Cursor> {
        // A score's text is at most ~330 characters (the largest doubles, written out in full).
        if text.len() > 2 * CURSOR_ID_MAX + 400 {
            return None;
        }
        let (score, id) = text.split_once('_')?;
        let score: f64 = score.parse().ok().filter(|s: &f64| !s.is_nan())?;
        // An empty id is valid: `""` is a member a hand-written entry can have.
        if id.len() > 2 * CURSOR_ID_MAX || id.len() % 2 != 0 {
            return None;
        }
        if !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let id = (0..id.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&id[i..i + 2], 16).ok())
            .collect::<Option<Vec<u8>>>()?;
        Some(Cursor { score, id })
    }
}

/// The opaque text form: `<score>_<id in hex>`; URL-safe, and exact for any stored id.
impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}_", self.score)?;
        self.id.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskPage {
    /// The matching records, newest first, decoded lossily (at most the query's limit).
    pub tasks: Vec<TaskRecord>,
    /// Where the next page starts; `None` when the index holds nothing after this page.
    pub next: Option<Cursor>,
    /// Index entries this page examined (at most [`scan_budget`] of the limit).
    pub examined: usize,
}

fn protocol(what: &str) -> QueueError {
    QueueError::Protocol(format!("list: {what}"))
}

fn bytes(v: &redis::Value) -> Option<&[u8]> {
    match v {
        redis::Value::BulkString(b) => Some(b),
        redis::Value::SimpleString(s) => Some(s.as_bytes()),
        _ => None,
    }
}

/// Parse the `list` script's `{examined, next, matches}` reply. Ids and fields that are not
/// UTF-8 are decoded lossily, so one corrupt byte never fails the page.
pub(super) fn parse_page(reply: redis::Value) -> Result<TaskPage, QueueError> {
    let redis::Value::Array(parts) = reply else {
        return Err(protocol("the reply is not an array"));
    };
    let [examined, after, matches] =
        <[redis::Value; 3]>::try_from(parts).map_err(|_| protocol("expected 3 parts"))?;
    let examined = match examined {
        redis::Value::Int(n) => usize::try_from(n).map_err(|_| protocol("negative count"))?,
        _ => return Err(protocol("the count is not an integer")),
    };
    let next = match after {
        redis::Value::Array(p) if p.is_empty() => None,
        redis::Value::Array(p) => Some(parse_cursor(&p)?),
        _ => return Err(protocol("the cursor is not an array")),
    };
    let redis::Value::Array(matches) = matches else {
        return Err(protocol("the matches are not an array"));
    };
    let tasks = matches
        .iter()
        .map(parse_match)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(TaskPage {
        tasks,
        next,
        examined,
    })
}

fn parse_cursor(pair: &[redis::Value]) -> Result<Cursor, QueueError> {
    let [score, id] = pair else {
        return Err(protocol("the cursor is not a (score, id) pair"));
    };
    let score = bytes(score)
        .and_then(|s| std::str::from_utf8(s).ok())
        .and_then(|s| s.parse::<f64>().ok())
        .ok_or_else(|| protocol("the cursor's score is not a number"))?;
    let id = bytes(id).ok_or_else(|| protocol("the cursor's id is not a string"))?;
    Ok(Cursor {
        score,
        id: id.to_vec(),
    })
}

/// One `{id, flat record}` match. A record without its own `task_id` shows the index's id.
fn parse_match(v: &redis::Value) -> Result<TaskRecord, QueueError> {
    let redis::Value::Array(pair) = v else {
        return Err(protocol("a match is not an array"));
    };
    let [id, flat] = pair.as_slice() else {
        return Err(protocol("a match is not an (id, record) pair"));
    };
    let id = bytes(id).ok_or_else(|| protocol("a match's id is not a string"))?;
    let mut map = super::lossy_map(flat);
    crate::task::with_key_id(&mut map, &String::from_utf8_lossy(id));
    Ok(TaskRecord::from_fields_lossy(&map))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_any_score_and_any_bytes() {
        for (score, id) in [
            (
                1_764_745_620_123.0,
                b"6a3f0c2e-0000-4000-8000-000000000001".to_vec(),
            ),
            (f64::INFINITY, vec![0xff, 0xfe, b'_', 0]),
            (f64::NEG_INFINITY, b"x".to_vec()),
            (0.0, Vec::new()),
            (-0.5, b"a_b".to_vec()),
            (1.7e300, b"big".to_vec()),
        ] {
            let c = Cursor { score, id };
            let text = c.to_string();
            assert!(text.bytes().all(|b| b.is_ascii_graphic()), "{text}");
            assert_eq!(Cursor::parse(&text), Some(c), "{text}");
        }
    }

    #[test]
    fn malformed_cursors_are_refused() {
        let long = format!("1_{}", "ab".repeat(CURSOR_ID_MAX + 1));
        for bad in [
            "", "abc", "_6162", "NaN_6162", "x_6162", "1_616", "1_+f61", "1_zz", &long,
        ] {
            assert_eq!(Cursor::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_scan_budget_is_ten_per_row_and_at_least_a_hundred() {
        assert_eq!(scan_budget(1), 100);
        assert_eq!(scan_budget(10), 100);
        assert_eq!(scan_budget(100), 1_000);
        assert_eq!(scan_budget(usize::MAX), usize::MAX);
    }

    #[test]
    fn replies_with_the_wrong_shape_are_protocol_errors() {
        use redis::Value::{Array, BulkString, Int};
        let ok = Array(vec![
            Int(3),
            Array(vec![BulkString(b"5".to_vec()), BulkString(vec![0xff])]),
            Array(vec![Array(vec![
                BulkString(vec![b'i', 0xff]),
                Array(vec![
                    BulkString(b"status".to_vec()),
                    BulkString(b"pending".to_vec()),
                ]),
            ])]),
        ]);
        let page = parse_page(ok).unwrap();
        assert_eq!(page.examined, 3);
        assert_eq!(page.next.unwrap().id, vec![0xff]);
        assert!(
            page.tasks[0]
                .error
                .as_deref()
                .unwrap()
                .contains("i\u{fffd}")
        );
        for bad in [
            Int(1),
            Array(vec![Int(1), Array(vec![])]),
            Array(vec![Int(-1), Array(vec![]), Array(vec![])]),
        ] {
            assert!(matches!(parse_page(bad), Err(QueueError::Protocol(_))));
        }
    }
}

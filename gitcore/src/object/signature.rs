//! Author, committer and tagger lines.

/// `Name <email> 1700000000 +0100`, borrowed from the object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Signature<'a> {
    /// The name, without surrounding spaces.
    pub name: &'a [u8],
    /// The address between `<` and `>`.
    pub email: &'a [u8],
    /// Seconds since the epoch; 0 when the line has no valid time (as git shows it).
    pub time: i64,
    /// The offset from UTC in minutes, as git computes it from the `+hhmm` digits (odd values such
    /// as `+051800` are accepted and saturate rather than fail).
    pub tz_minutes: i32,
}

impl<'a> Signature<'a> {
    /// Parses the part of a header line after `author `/`committer `/`tagger `. Never fails: a
    /// line git would display is displayed, with missing parts left empty.
    pub fn parse(line: &'a [u8]) -> Signature<'a> {
        let Some(lt) = line.iter().position(|&b| b == b'<') else {
            return Signature {
                name: trim(line),
                ..Signature::default()
            };
        };
        let name = trim(&line[..lt]);
        let after = &line[lt + 1..];
        let Some(gt) = after.iter().position(|&b| b == b'>') else {
            return Signature {
                name,
                email: after,
                ..Signature::default()
            };
        };
        let email = &after[..gt];
        let mut rest = &after[gt + 1..];
        // git takes the time from after the last '>' so that '>' inside the email is tolerated.
        if let Some(last) = rest.iter().rposition(|&b| b == b'>') {
            rest = &rest[last + 1..];
        }
        let mut fields = rest
            .split(|b| b.is_ascii_whitespace())
            .filter(|f| !f.is_empty());
        let time = fields.next().and_then(parse_time).unwrap_or(0);
        let tz_minutes = fields.next().map_or(0, parse_tz);
        Signature {
            name,
            email,
            time,
            tz_minutes,
        }
    }
}

fn trim(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &s[start..end.max(start)]
}

fn parse_time(digits: &[u8]) -> Option<i64> {
    if digits.is_empty() || digits.len() > 18 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(
        digits
            .iter()
            .fold(0i64, |n, &d| n * 10 + i64::from(d - b'0')),
    )
}

fn parse_tz(tz: &[u8]) -> i32 {
    let (sign, digits) = match tz.first() {
        Some(b'-') => (-1, &tz[1..]),
        Some(b'+') => (1, &tz[1..]),
        _ => (1, tz),
    };
    let digits: &[u8] = &digits[..digits.iter().take_while(|b| b.is_ascii_digit()).count()];
    let n = digits
        .iter()
        .take(9)
        .fold(0i64, |n, &d| n * 10 + i64::from(d - b'0'));
    let minutes = (n / 100) * 60 + n % 100;
    (sign * minutes).clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_usual_and_odd_lines() {
        let s = Signature::parse(b"A U Thor <a@example.com> 1700000000 +0130");
        assert_eq!(s.name, b"A U Thor");
        assert_eq!(s.email, b"a@example.com");
        assert_eq!(s.time, 1_700_000_000);
        assert_eq!(s.tz_minutes, 90);
        let odd = Signature::parse(b"X <x@y> 1 +051800");
        assert_eq!(odd.time, 1);
        assert_eq!(odd.tz_minutes, 518 * 60);
        let broken = Signature::parse(b"Nobody");
        assert_eq!(broken.name, b"Nobody");
        assert_eq!(broken.time, 0);
        assert_eq!(Signature::parse(b"N <e> notatime -0500").time, 0);
    }
}

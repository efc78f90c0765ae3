//! Regions: where this node runs ([`Regions`], from `GITVISTA_REGION` or Fly's `FLY_REGION`,
//! and `FLY_MACHINE_ID`), whether its web layer answers `fly-replay` for another region's
//! repositories (`GITVISTA_FLY_REPLAY`), which region holds the writable database
//! (`GITVISTA_PRIMARY_REGION`), and which region with a worker is [`nearest`] to one without.

use gitvista_store::jobs::NodePlace;

/// Where this node runs, and how it routes across regions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Regions {
    /// This node's region and machine, as registered in the `nodes` table.
    pub place: NodePlace,
    /// `GITVISTA_FLY_REPLAY=1`: behind Fly's proxy, a web node answers a read or WebSocket of a
    /// repository owned in another region with `fly-replay: region=...` instead of forwarding
    /// it there itself.
    pub fly_replay: bool,
    /// `GITVISTA_PRIMARY_REGION`: the region next to the writable database. A web node
    /// elsewhere replays the requests that change state to it.
    pub primary: Option<String>,
}

impl Regions {
    /// The regions settings read from `get` (the environment, values trimmed and empty ones
    /// dropped); a malformed one is refused with a sentence.
    pub fn from_settings(get: impl Fn(&str) -> Option<String>) -> Result<Regions, String> {
        let region = match get("GITVISTA_REGION") {
            Some(r) => Some(region_code(&r, "GITVISTA_REGION")?),
            None => get("FLY_REGION")
                .map(|r| region_code(&r, "FLY_REGION"))
                .transpose()?,
        };
        let machine_id = get("FLY_MACHINE_ID")
            .map(|m| {
                let ok = m.len() <= 64 && m.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
                if ok {
                    Ok(m)
                } else {
                    Err(format!(
                        "FLY_MACHINE_ID must be letters, digits and '-' (at most 64; got {m:?})"
                    ))
                }
            })
            .transpose()?;
        let fly_replay = match get("GITVISTA_FLY_REPLAY").as_deref() {
            None | Some("0" | "false" | "no" | "off") => false,
            Some("1" | "true" | "yes" | "on") => true,
            Some(other) => {
                return Err(format!(
                    "GITVISTA_FLY_REPLAY must be 1 or 0 (got {other:?})"
                ));
            }
        };
        if fly_replay && region.is_none() {
            return Err(
                "GITVISTA_FLY_REPLAY=1 routes requests by region: set GITVISTA_REGION (Fly sets FLY_REGION)"
                    .into(),
            );
        }
        let primary = get("GITVISTA_PRIMARY_REGION")
            .map(|r| region_code(&r, "GITVISTA_PRIMARY_REGION"))
            .transpose()?;
        if primary.is_some() && !fly_replay {
            return Err(
                "GITVISTA_PRIMARY_REGION replays writes through Fly's proxy: set GITVISTA_FLY_REPLAY=1 as well"
                    .into(),
            );
        }
        Ok(Regions {
            place: NodePlace { region, machine_id },
            fly_replay,
            primary,
        })
    }

    /// This node's region.
    pub fn region(&self) -> Option<&str> {
        self.place.region.as_deref()
    }

    /// Whether requests that change state are replayed from here to the primary region.
    pub fn replays_writes(&self) -> bool {
        self.fly_replay
            && self
                .primary
                .as_deref()
                .is_some_and(|p| Some(p) != self.region())
    }
}

/// `value` as a region code (`ams`, `us-east-1`): 1 to 32 lowercase letters, digits and '-'.
pub fn region_code(value: &str, name: &str) -> Result<String, String> {
    let value = value.trim().to_ascii_lowercase();
    let ok = !value.is_empty()
        && value.len() <= 32
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(value)
    } else {
        Err(format!(
            "{name} must be a region code such as ams or iad: lowercase letters, digits and '-' (got {value:?})"
        ))
    }
}

/// Fly's regions and where they are (degrees of latitude and longitude of their airports).
const FLY_REGIONS: [(&str, f64, f64); 35] = [
    ("ams", 52.31, 4.76),
    ("arn", 59.65, 17.93),
    ("atl", 33.64, -84.43),
    ("bog", 4.70, -74.14),
    ("bom", 19.09, 72.87),
    ("bos", 42.36, -71.01),
    ("cdg", 49.01, 2.55),
    ("den", 39.86, -104.67),
    ("dfw", 32.90, -97.04),
    ("ewr", 40.69, -74.17),
    ("eze", -34.82, -58.54),
    ("fra", 50.03, 8.57),
    ("gdl", 20.52, -103.31),
    ("gig", -22.81, -43.25),
    ("gru", -23.43, -46.47),
    ("hkg", 22.31, 113.91),
    ("iad", 38.95, -77.46),
    ("jnb", -26.14, 28.25),
    ("lax", 33.94, -118.41),
    ("lhr", 51.47, -0.45),
    ("mad", 40.47, -3.56),
    ("mia", 25.79, -80.29),
    ("nrt", 35.76, 140.39),
    ("ord", 41.97, -87.91),
    ("otp", 44.57, 26.10),
    ("phx", 33.43, -112.01),
    ("qro", 20.62, -100.19),
    ("scl", -33.39, -70.79),
    ("sea", 47.45, -122.31),
    ("sin", 1.36, 103.99),
    ("sjc", 37.36, -121.93),
    ("syd", -33.95, 151.18),
    ("waw", 52.17, 20.97),
    ("yul", 45.47, -73.74),
    ("yyz", 43.68, -79.63),
];

/// Where region `code` is, if it is one of Fly's.
fn location(code: &str) -> Option<(f64, f64)> {
    FLY_REGIONS
        .iter()
        .find(|(c, _, _)| *c == code)
        .map(|&(_, lat, lon)| (lat, lon))
}

/// The great-circle distance between two places, in kilometres.
fn distance_km((lat1, lon1): (f64, f64), (lat2, lon2): (f64, f64)) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = p2 - p1;
    let dl = (lon2 - lon1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * 6371.0 * a.sqrt().asin()
}

/// Of the regions `have` (those with a live worker), the one to place a repository asked for in
/// `wanted`: `wanted` itself when it is among them, else the nearest of Fly's regions, else (a
/// region we cannot locate) the first by name. `None` when `have` is empty.
pub fn nearest<'a>(wanted: Option<&str>, have: &'a [String]) -> Option<&'a str> {
    if let Some(w) = wanted
        && let Some(same) = have.iter().find(|h| *h == w)
    {
        return Some(same);
    }
    let by_name = || have.iter().min().map(String::as_str);
    let Some(from) = wanted.and_then(location) else {
        return by_name();
    };
    have.iter()
        .filter_map(|h| location(h).map(|at| (distance_km(from, at), h.as_str())))
        .min_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(b.1)))
        .map(|(_, h)| h)
        .or_else(by_name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::tests::env;

    fn have(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_region_defaults_to_fly_s_and_ours_wins() {
        let r = Regions::from_settings(env(&[("FLY_REGION", "iad"), ("FLY_MACHINE_ID", "e82d")]))
            .expect("valid");
        assert_eq!(r.region(), Some("iad"));
        assert_eq!(r.place.machine_id.as_deref(), Some("e82d"));
        assert!(!r.fly_replay && !r.replays_writes());
        let r = Regions::from_settings(env(&[("FLY_REGION", "iad"), ("GITVISTA_REGION", "AMS")]))
            .expect("valid");
        assert_eq!(r.region(), Some("ams"));
        assert_eq!(
            Regions::from_settings(env(&[])).expect("none"),
            Regions::default()
        );
    }

    #[test]
    fn malformed_or_incomplete_settings_are_refused_with_a_sentence() {
        for (pairs, says) in [
            (&[("GITVISTA_REGION", "a b")][..], "GITVISTA_REGION"),
            (&[("FLY_MACHINE_ID", "x;y")][..], "FLY_MACHINE_ID"),
            (&[("GITVISTA_FLY_REPLAY", "1")][..], "GITVISTA_REGION"),
            (
                &[("GITVISTA_REGION", "ams"), ("GITVISTA_FLY_REPLAY", "maybe")][..],
                "1 or 0",
            ),
            (
                &[
                    ("GITVISTA_REGION", "ams"),
                    ("GITVISTA_PRIMARY_REGION", "iad"),
                ][..],
                "GITVISTA_FLY_REPLAY=1",
            ),
        ] {
            let e = Regions::from_settings(env(pairs)).expect_err("refused");
            assert!(e.contains(says), "{e}");
        }
    }

    #[test]
    fn writes_are_replayed_only_outside_the_primary_region() {
        let at = |region| {
            Regions::from_settings(env(&[
                ("GITVISTA_REGION", region),
                ("GITVISTA_FLY_REPLAY", "1"),
                ("GITVISTA_PRIMARY_REGION", "iad"),
            ]))
            .expect("valid")
        };
        assert!(!at("iad").replays_writes());
        assert!(at("ams").replays_writes());
    }

    #[test]
    fn a_region_without_a_worker_gets_the_nearest_that_has_one() {
        let both = have(&["iad", "ams"]);
        assert_eq!(nearest(Some("ams"), &both), Some("ams"));
        assert_eq!(nearest(Some("lhr"), &both), Some("ams"));
        assert_eq!(nearest(Some("yyz"), &both), Some("iad"));
        assert_eq!(
            nearest(Some("syd"), &have(&["sin", "lax", "fra"])),
            Some("sin")
        );
        // Regions we cannot place on the map: the first by name, always the same.
        assert_eq!(nearest(Some("mars"), &both), Some("ams"));
        assert_eq!(nearest(Some("lhr"), &have(&["zz-2", "zz-1"])), Some("zz-1"));
        assert_eq!(nearest(None, &both), Some("ams"));
        assert_eq!(nearest(Some("ams"), &[]), None);
    }

    #[test]
    fn the_table_s_distances_are_the_map_s() {
        let d = distance_km(location("lhr").expect("lhr"), location("iad").expect("iad"));
        assert!((5800.0..6000.0).contains(&d), "{d}");
        let d = distance_km(location("ams").expect("ams"), location("lhr").expect("lhr"));
        assert!((350.0..380.0).contains(&d), "{d}");
    }
}
